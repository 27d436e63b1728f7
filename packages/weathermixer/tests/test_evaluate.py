"""Scoring a trained run on other data (``evaluate --data``), the baselines (damped
persistence, a climatology of a separate record), and every setting as a flag."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import xarray as xr
from weathermixer.baselines import DampedPersistence
from weathermixer.cli import _parser, main
from weathermixer.config import RunConfig
from weathermixer.data import Era5Store
from weathermixer.metrics import Climatology
from weathermixer.simulate import SimulationConfig, generate

from shared_hpc import config_from_args


def test_damped_persistence_recovers_the_decay_of_an_ar1_anomaly(write_nc, make_era5):
    ds = make_era5(times=1200, nlat=4)
    rng = np.random.default_rng(0)
    anomaly = np.zeros(ds.t2m.shape)
    for t in range(1, anomaly.shape[0]):  # AR(1) with coefficient 0.8 per 6 h
        anomaly[t] = 0.8 * anomaly[t - 1] + rng.normal(size=anomaly.shape[1:])
    ds["t2m"] = (ds.t2m.dims, (285.0 + anomaly).astype(np.float32))
    store = Era5Store(write_nc(ds))
    store.preload()
    clim = Climatology.fit(store, range(store.times.size))
    t2m = store.variables.state_channels.index("t2m")
    damped = DampedPersistence.fit(store, range(store.times.size), clim, 1, 3)
    rows = np.ones((1, 4))
    np.testing.assert_allclose(
        damped.coefficients[:, t2m], [[0.8], [0.64], [0.512]] * rows, atol=0.03
    )
    # two lead steps of 2 time steps each: the coefficients of 12 and 24 h
    coarse = DampedPersistence.fit(store, range(store.times.size), clim, 2, 2)
    np.testing.assert_allclose(coarse.coefficients[:, t2m], [[0.64], [0.41]] * rows, atol=0.03)
    c0 = clim.at(store.times[:1])[0]
    c = clim.at(store.times[1:4])
    fc = damped.forecast(store.read(0), c0, c)
    expected = c + damped.coefficients[..., None] * (store.read(0) - c0)[None]
    np.testing.assert_allclose(fc, expected, rtol=1e-6)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A quick demo run and files to score it on."""
    folder = tmp_path_factory.mktemp("evaluate")
    assert main(["demo", "--output", str(folder / "demo"), "--quick", "--threads", "1"]) == 0
    quick = SimulationConfig(nlat=16, days=12.0, spinup_days=5.0, seed=4242)
    generate(folder / "other.nc", quick)
    record = dataclasses.replace(quick, days=90.0, seed=7, start="1990-01-01T00:00")
    generate(folder / "record.nc", record)
    return folder


def test_evaluate_scores_another_file_with_the_runs_statistics(trained, capsys):
    out = trained / "other-eval"
    args = ["--run", str(trained / "demo" / "run"), "--output", str(out), "--leads-h", "6,12"]
    other = str(trained / "other.nc")
    period = ["--period", "2000-01-02:2000-01-08"]
    assert main(["evaluate", *args, "--data", other, *period, "--threads", "1"]) == 0
    skill = json.loads((out / "skill.json").read_text())
    assert skill["data"] == other
    assert skill["test_period"] == ["2000-01-02T00:00:00", "2000-01-08T00:00:00"]
    assert skill["n_forecasts"] == 7  # daily initial times of the period
    assert skill["climatology_source"].startswith("the run's training period (2000-01-01 to")
    for kind in ("model", "persistence", "damped_persistence", "climatology"):
        assert np.isfinite(skill[kind]["z500"]["rmse"]).all(), kind
    assert np.isfinite(skill["damped_persistence"]["t850"]["acc"]).all()
    # the same data scored through the run's own file differs: another seed's weather
    own = trained / "own-eval"
    assert main(["evaluate", *args[:2], "--output", str(own), "--leads-h", "6,12"]) == 0
    own_skill = json.loads((own / "skill.json").read_text())
    assert own_skill["data"].startswith("the run's data")
    assert own_skill["model"]["z500"]["rmse"] != skill["model"]["z500"]["rmse"]
    assert "damped_persistence" in capsys.readouterr().out


def test_climatology_of_a_separate_record_is_named(trained):
    out = trained / "record-eval"
    args = ["--run", str(trained / "demo" / "run"), "--output", str(out), "--leads-h", "6"]
    record = str(trained / "record.nc")
    assert main(["evaluate", *args, "--climatology", record, "--threads", "1"]) == 0
    skill = json.loads((out / "skill.json").read_text())
    assert skill["climatology_source"].startswith(f"a separate record, {record} (1990-01-01")
    assert skill["climatology_terms"] == ["mean", "diurnal x2"]  # 90 days: no annual terms
    training = json.loads((trained / "own-eval" / "skill.json").read_text())
    assert skill["climatology"]["z500"]["rmse"] != training["climatology"]["z500"]["rmse"][:1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("drop", "variable(s) ['msl'] not found"),
        ("grid", "has a 8 x 16 grid, the model 16 x 32"),
        ("period", "period '1999-01-01:1999-01-02' holds no time steps"),
    ],
)
def test_data_the_model_cannot_use_is_refused_in_one_line(change, message, trained, capsys):
    ds = xr.open_dataset(trained / "other.nc")
    period = []
    if change == "drop":
        ds = ds.drop_vars("msl")
    elif change == "grid":
        ds = ds.isel(latitude=slice(None, None, 2), longitude=slice(None, None, 2))
    else:
        period = ["--period", "1999-01-01:1999-01-02"]
    path = trained / f"bad-{change}.nc"
    ds.to_netcdf(path)
    out = trained / f"bad-{change}-eval"
    args = ["evaluate", "--run", str(trained / "demo" / "run"), "--output", str(out)]
    assert main([*args, "--data", str(path), *period]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("weathermixer evaluate: error: ")
    assert message in err
    assert not (out / "skill.json").exists()


def test_every_run_setting_is_a_flag():
    """Issue 19, point 5: min_lr, finetune_lr, val_batches and every other field of the train,
    model and data tables are reachable from the command line."""
    parser = _parser()
    flags = [
        "--train.min-lr", "2e-5", "--train.finetune-lr", "3e-4", "--train.val-batches", "7",
        "--data.lead-time-h", "12", "--model.depth", "3",
    ]  # fmt: skip
    args = parser.parse_args(["train", *flags])
    cfg = config_from_args(args)
    assert (cfg.train.min_lr, cfg.train.finetune_lr, cfg.train.val_batches) == (2e-5, 3e-4, 7)
    assert (cfg.data.lead_time_h, cfg.model.depth) == (12.0, 3)
    train_help = parser._subparsers._group_actions[0].choices["train"].format_help()
    for table in ("data", "model", "train"):
        for field in dataclasses.fields(getattr(RunConfig(), table)):
            assert f"--{table}.{field.name.replace('_', '-')}" in train_help, field.name
