"""Training, scoring, early stopping, checkpoints and forecasts with time stamps."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from recycle_ts.config import ForecastConfig
from recycle_ts.data import Scaler, split_cycles, to_cycles
from recycle_ts.forecaster import CheckpointError, Forecaster
from recycle_ts.training import EarlyStopping, choose_baseline, fit

from shared_hpc import UserError

SMALL = {"history": 7, "horizon": 2, "epochs": 3, "width": 16, "heads": 2, "cycle": "24"}


@pytest.fixture
def series(load_frame):
    return to_cycles(load_frame, "time", ["load"], cycle=24)


def test_early_stopping_restores_a_copy_of_the_best_weights():
    network = torch.nn.Linear(3, 1)
    stopper = EarlyStopping(patience=1)
    assert not stopper.update(1.0, network, epoch=1)
    best = {k: v.clone() for k, v in network.state_dict().items()}
    with torch.no_grad():
        network.weight.add_(1.0)  # an optimizer step changes the live tensors in place
    assert not stopper.update(2.0, network, epoch=2)
    assert stopper.update(3.0, network, epoch=3)  # patience exhausted
    stopper.restore(network)
    assert torch.equal(network.weight, best["weight"]) and stopper.best_epoch == 1


def test_fit_scores_the_model_beside_every_baseline_and_ets(series):
    result = fit(series, ForecastConfig(target=["load"], **SMALL))
    assert set(result.test) == {"recycle", "persistence", "mean", "day_type", "seasonal_naive",
                                "ets"}  # fmt: skip
    for scores in result.test.values():
        assert scores["mae"] > 0 and np.isfinite(scores["mase"])
    # the synthetic load has a weekend dip: the day-type profile beats persistence
    assert result.test["day_type"]["mae"] < result.test["persistence"]["mae"]
    assert result.forecaster.config.baseline in ("day_type", "seasonal_naive")
    assert 1 <= result.best_epoch <= len(result.history) <= 3
    frame = result.test_forecasts
    assert frame["timestamp"].diff().dropna().isin([pd.Timedelta("1h"), pd.Timedelta("-47h"),
                                                    pd.Timedelta("-23h")]).all()  # fmt: skip
    first = frame.iloc[0]
    assert first["timestamp"] == first["origin"]
    split = split_cycles(series.cycles, 7, 2, 0.15, 0.15)
    assert first["origin"] == series.starts[split.test[0]]
    np.testing.assert_allclose(
        frame["load_actual"].to_numpy()[:24], series.values[split.test[0], :, 0]
    )
    assert result.headline().value == result.test["recycle"]["mae"]
    assert json.dumps(result.metrics())  # a run record can hold it


def test_the_scaler_sees_the_training_span_only(series):
    # The authors fitted a normaliser on validation and test data too.
    config = ForecastConfig(target=["load"], **SMALL)
    values = series.values.copy()
    split = split_cycles(series.cycles, 7, 2, 0.15, 0.15)
    values[split.validation_start :] += 500.0  # a level shift after the training span
    shifted = type(series)(**{**vars(series), "values": values})
    scaler = fit(shifted, config, references=False).forecaster.target_scaler
    train = series.values[: split.validation_start]
    np.testing.assert_allclose(scaler.mean, [train.mean()])
    np.testing.assert_allclose(scaler.std, [train.std()])


def test_quantile_forecasts_train_and_give_ordered_intervals(series):
    config = ForecastConfig(target=["load"], quantiles=[0.1, 0.5, 0.9], **SMALL)
    result = fit(series, config, references=False)
    scores = result.test["recycle"]
    assert 0 <= scores["coverage"] <= 1 and scores["pinball"] > 0
    frame = result.test_forecasts
    assert (frame["load_q0.1"] <= frame["load_q0.5"]).all()
    assert (frame["load_q0.5"] <= frame["load_q0.9"]).all()
    np.testing.assert_array_equal(frame["load"], frame["load_q0.5"])


def test_save_and_load_give_identical_forecasts(tmp_path, load_frame, series):
    result = fit(series, ForecastConfig(target=["load"], date_column="time", **SMALL),
                 data={"name": "synthetic"}, references=False)  # fmt: skip
    result.forecaster.save(tmp_path / "model")
    loaded = Forecaster.load(tmp_path / "model")
    recent = load_frame.iloc[-24 * 20 :]
    before = result.forecaster.predict(recent)
    after = loaded.predict(recent)
    pd.testing.assert_frame_equal(before, after)
    assert len(after) == 2 * 24 and after["lead"].tolist() == [1] * 24 + [2] * 24
    last = pd.Timestamp(load_frame["time"].iloc[-1])
    assert after["timestamp"].iloc[0] == last + pd.Timedelta("1h")
    assert after["load_actual"].isna().all()
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["cycle"] == 24 and meta["data"] == {"name": "synthetic"}
    assert meta["target_scaler"]["mean"] == result.forecaster.target_scaler.mean.tolist()


def test_a_profile_alone_is_a_forecaster(series, load_frame):
    config = ForecastConfig(target=["load"], date_column="time", baseline="persistence", **SMALL)
    split = split_cycles(series.cycles, 7, 2, 0.15, 0.15)
    scalers = Scaler.fit(series.values[: split.validation_start]), Scaler.fit(series.covariates)
    forecaster = Forecaster(config, None, *scalers, 24, series.step, {})
    out = forecaster.predict(load_frame)
    np.testing.assert_allclose(out["load"].to_numpy()[:24], series.values[-1, :, 0])
    np.testing.assert_array_equal(out["load"], out["load_baseline"])


def test_covariates_are_needed_ahead(load_frame):
    series = to_cycles(load_frame, "time", ["load"], ["temperature"], cycle=24)
    config = ForecastConfig(target=["load"], covariates=["temperature"], date_column="time",
                            **SMALL)  # fmt: skip
    forecaster = fit(series, config, references=False).forecaster
    history, ahead = load_frame.iloc[:-48], load_frame.iloc[-48:]
    with pytest.raises(UserError, match="covariates"):
        forecaster.predict(history)
    out = forecaster.predict(history, future=ahead[["time", "temperature"]])
    assert out["timestamp"].tolist() == ahead["time"].tolist()
    with pytest.raises(UserError, match="miss the time step"):
        forecaster.predict(history, future=ahead.iloc[:30])


def test_future_covariates_may_name_the_same_instants_in_another_zone(load_frame):
    utc = load_frame.assign(time=load_frame["time"].dt.tz_localize("UTC"))
    series = to_cycles(utc, "time", ["load"], ["temperature"], cycle=24)
    config = ForecastConfig(target=["load"], covariates=["temperature"], date_column="time",
                            **SMALL)  # fmt: skip
    forecaster = fit(series, config, references=False).forecaster
    history, ahead = utc.iloc[:-48], utc.iloc[-48:][["time", "temperature"]]
    berlin = ahead["time"].dt.tz_convert("Europe/Berlin").dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    out = forecaster.predict(history, future=ahead.assign(time=berlin))
    pd.testing.assert_frame_equal(out, forecaster.predict(history, future=ahead))


def test_forecasts_need_enough_history_and_the_same_step(series, load_frame):
    config = ForecastConfig(target=["load"], date_column="time", **SMALL)
    forecaster = fit(series, config, references=False).forecaster
    with pytest.raises(UserError, match="needs 8 whole cycles"):
        forecaster.predict(load_frame.iloc[: 24 * 6])
    half_hourly = load_frame.assign(time=pd.date_range("2024-01-01", periods=len(load_frame),
                                                       freq="30min"))  # fmt: skip
    with pytest.raises(UserError, match="steps of"):
        forecaster.predict(half_hourly)


def test_corrupt_or_foreign_checkpoints_are_refused(tmp_path, series):
    forecaster = fit(series, ForecastConfig(target=["load"], **SMALL), references=False).forecaster
    forecaster.save(tmp_path)
    (tmp_path / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        Forecaster.load(tmp_path)
    (tmp_path / "model.json").write_text('{"format": "other"}')
    with pytest.raises(CheckpointError, match="not a recycle-ts forecaster"):
        Forecaster.load(tmp_path)
    with pytest.raises(CheckpointError, match=r"holds no model\.json"):
        Forecaster.load(tmp_path / "missing")


def test_the_residual_reference_is_chosen_before_the_test_span(series):
    split = split_cycles(series.cycles, 7, 2, 0.15, 0.15)
    chosen = choose_baseline(series, ForecastConfig(target=["load"], **SMALL), split.validation)
    assert chosen in ("day_type", "seasonal_naive")  # weekly structure, not persistence


def test_one_model_across_many_series_beside_one_per_series(make_load):
    from recycle_ts.many import fit_many, split_by_series

    frame = pd.concat(
        [make_load(days=60, seed=i).assign(site=f"s{i}", load=lambda f, i=i: f["load"] * (i + 1))
         for i in range(2)]
    )  # fmt: skip
    parts = split_by_series(frame, "site")
    collection = {k: to_cycles(p, "time", ["load"], cycle=24) for k, p in parts.items()}
    config = ForecastConfig(target=["load"], **{**SMALL, "epochs": 2})
    result = fit_many(collection, config)
    assert set(result.test) == {"s0", "s1"}
    networks = {id(f.network) for f in result.forecasters.values()}
    assert len(networks) == 1  # one network shared by every series
    means = [f.target_scaler.mean[0] for f in result.forecasters.values()]
    assert means[0] < means[1]  # each series keeps its own scaler
    metrics = result.metrics()
    assert metrics["mean_test_mase"]["global"] > 0 and metrics["mean_test_mase"]["local"] > 0
    assert result.headline().value == metrics["mean_test_mase"]["global"]
    with pytest.raises(UserError, match="at least 2"):
        split_by_series(frame[frame["site"] == "s0"], "site")
    with pytest.raises(UserError, match="cannot name a folder"):
        split_by_series(frame.assign(site="../up"), "site")
