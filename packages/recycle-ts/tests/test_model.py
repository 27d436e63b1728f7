"""The networks: residual scheme, shapes, quantiles, calendar of the forecast cycles."""

import numpy as np
import pytest
import torch
from recycle_ts.config import ForecastConfig
from recycle_ts.data import Scaler, calendar_features, to_cycles
from recycle_ts.model import Residual, Shape, Window, build_network, pinball_loss
from recycle_ts.windows import prepare, windows


@pytest.fixture
def series(load_frame):
    return to_cycles(load_frame, "time", ["load"], ["temperature"], cycle=24)


def _batch(series, config, origins=(30, 31, 40), fit_until=60):
    target = Scaler.fit(series.values[:fit_until])
    covariate = Scaler.fit(series.covariates[:fit_until])
    prep = prepare(series, config, target, covariate)
    return prep, windows(prep, np.array(origins), config.history)


def _shape(series, config):
    return Shape(config.history, config.horizon, 24, 1, 1, 10, len(config.levels))


@pytest.mark.parametrize("model", ["recycle", "mlp", "lstm", "transformer"])
def test_a_zero_network_forecasts_the_baseline_exactly(series, model):
    config = ForecastConfig(target=["load"], covariates=["temperature"], history=7, horizon=2,
                            model=model, baseline="day_type")  # fmt: skip
    _, batch = _batch(series, config)
    network = build_network(_shape(series, config), config).eval()
    assert isinstance(network, Residual)
    with torch.no_grad():
        assert torch.equal(network(batch)[..., 0], batch.future_base)  # starts at zero
        network.head.bias.fill_(0.5)
        assert not torch.equal(network(batch)[..., 0], batch.future_base)
        network.head.weight.normal_()
        network.head.bias.zero_()
        assert not torch.equal(network(batch)[..., 0], batch.future_base)
        network.head.weight.zero_()
        assert torch.equal(network(batch)[..., 0], batch.future_base)


@pytest.mark.parametrize("model", ["recycle", "mlp", "lstm", "transformer", "dlinear"])
def test_every_network_gives_one_output_per_step_and_quantile(series, model):
    config = ForecastConfig(
        target=["load"], covariates=["temperature"], history=7, horizon=3, model=model,
        quantiles=[0.1, 0.5, 0.9], baseline="day_type",
    )  # fmt: skip
    _, batch = _batch(series, config)
    out = build_network(_shape(series, config), config)(batch)
    assert out.shape == (3, 3, 24, 1, 3)
    loss = pinball_loss(out, batch.target, torch.tensor(config.levels))
    loss.backward()  # the authors' quantile loss raised here
    assert torch.isfinite(loss)


def test_pinball_loss_at_the_median_is_half_the_l1_loss():
    forecast, target = torch.randn(5, 4, 1), torch.randn(5, 4)
    l1 = (forecast[..., 0] - target).abs().mean()
    assert torch.allclose(pinball_loss(forecast, target, torch.tensor([0.5])), l1 / 2)


def test_forecast_cycles_get_their_own_calendar_features(series):
    # The authors' code sliced the forecast calendar with the history window's slice.
    config = ForecastConfig(target=["load"], covariates=["temperature"], history=7, horizon=3,
                            baseline="day_type")  # fmt: skip
    _, batch = _batch(series, config, origins=(30,))
    own = calendar_features(series.starts[30:33], "")
    np.testing.assert_array_equal(batch.future_cal[0].numpy(), own.astype(np.float32))
    history = calendar_features(series.starts[23:30], "")
    np.testing.assert_array_equal(batch.past_cal[0].numpy(), history.astype(np.float32))


def test_windows_see_nothing_after_their_origin(series):
    config = ForecastConfig(target=["load"], history=7, horizon=2, baseline="mean")
    _, batch = _batch(series, config, origins=(30,), fit_until=30)
    changed = series.values.copy()
    changed[30:] += 1000.0  # the future changes; the inputs must not
    later = type(series)(**{**vars(series), "values": changed})
    _, batch2 = _batch(later, config, origins=(30,), fit_until=30)
    for name in ("past", "past_base", "future_base"):
        assert torch.equal(getattr(batch, name), getattr(batch2, name)), name
    assert not torch.equal(batch.target, batch2.target)


def test_window_indexing_selects_samples(series):
    config = ForecastConfig(target=["load"], history=7, horizon=2, baseline="persistence")
    _, batch = _batch(series, config)
    part = batch[torch.tensor([2, 0])]
    assert isinstance(part, Window) and len(part) == 2
    assert torch.equal(part.past[1], batch.past[0])
