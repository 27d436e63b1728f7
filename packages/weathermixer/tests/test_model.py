"""The single-process WeatherMixer: shapes, rollout, initialisation and linear cost."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from weathermixer.grid import GridSpec, check_grid
from weathermixer.model import (
    ModelConfig,
    WeatherMixer,
    flops_per_sample,
    parameter_count,
    patchify,
    unpatchify,
)

from shared_hpc import UserError


def test_forward_and_rollout_shapes(tiny_cfg):
    model = WeatherMixer(tiny_cfg)
    states = torch.randn(3, 2, 4, 16, 32)
    extras = torch.randn(3, 5, 4, 16, 32)
    assert model(states, extras[:, 0]).shape == (3, 4, 16, 32)
    out = model.rollout(states, extras)
    assert out.shape == (3, 5, 4, 16, 32)
    # The rollout feeds forecasts back: step 2 equals a step from (state_t, forecast_1).
    second = model(torch.stack([states[:, 1], out[:, 0]], dim=1), extras[:, 1])
    torch.testing.assert_close(out[:, 1], second)


def test_patchify_round_trip_and_feature_order():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    tokens = patchify(x, 2)
    assert tokens.shape == (2, 6, 12)
    # token 1 is patch row 0, column 1; features run channel-major over the 2×2 patch
    assert tokens[0, 1, :4].tolist() == x[0, 0, 0:2, 2:4].reshape(-1).tolist()
    torch.testing.assert_close(unpatchify(tokens, 3, 2, 3, 2), x)


def test_initialisation_depends_only_on_seed_and_name(tiny_cfg):
    a, b = WeatherMixer(tiny_cfg), WeatherMixer(tiny_cfg)
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name
    c = WeatherMixer(replace(tiny_cfg, seed=4))
    assert not torch.equal(a.embed.weight, c.embed.weight)
    assert sum(p.numel() for p in a.parameters()) == parameter_count(tiny_cfg)


def test_untrained_forecast_stays_near_persistence(tiny_cfg):
    model = WeatherMixer(tiny_cfg)
    states = torch.randn(2, 2, 4, 16, 32)
    out = model(states, torch.randn(2, 4, 16, 32))
    assert (out - states[:, -1]).abs().mean() < 0.2 * states.abs().mean()


def _counted_flops(cfg: ModelConfig) -> int:
    model = WeatherMixer(cfg)
    states = torch.randn(1, cfg.history, cfg.state_channels, *cfg.grid)
    extras = torch.randn(1, cfg.extra_channels, *cfg.grid)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(states, extras)
    return counter.get_total_flops()


@pytest.mark.parametrize("rows", [16, 32, 64])
def test_analytic_flops_equal_counted_flops(tiny_cfg, rows):
    cfg = replace(tiny_cfg, grid=(rows, 2 * rows))
    assert _counted_flops(cfg) == flops_per_sample(cfg)["forward"]


def test_cost_is_linear_in_grid_points(tiny_cfg):
    """Fixed token hidden size: 4× the grid points is exactly 4× the FLOPs and token weights."""
    small = replace(tiny_cfg, grid=(16, 32))
    large = replace(tiny_cfg, grid=(32, 64))
    assert _counted_flops(large) == 4 * _counted_flops(small)
    token_params = {
        cfg.grid: sum(p.numel() for n, p in WeatherMixer(cfg).named_parameters() if "token_fc" in n)
        for cfg in (small, large)
    }
    assert token_params[(32, 64)] == pytest.approx(4 * token_params[(16, 32)], rel=0.01)


def test_bad_model_shapes_are_refused(tiny_cfg):
    with pytest.raises(UserError, match="not divisible by the patch size"):
        WeatherMixer(replace(tiny_cfg, grid=(15, 32)))
    with pytest.raises(UserError, match="depth must be >= 1"):
        WeatherMixer(replace(tiny_cfg, depth=0))
    with pytest.raises(UserError, match="extra_channels must be >= 0"):
        replace(tiny_cfg, extra_channels=-1)


def test_the_shape_comes_from_the_data_and_a_contradiction_is_refused():
    size = ModelConfig(patch=4, embed_dim=16, token_hidden=16, channel_hidden=32, depth=1)
    with pytest.raises(UserError, match=r"model\.state_channels, model\.extra_channels"):
        WeatherMixer(size)
    with pytest.raises(UserError, match=r"model\.state_channels"):
        check_grid(GridSpec(), 1, size)
    fitted = size.for_data(12, 4, (32, 64))
    assert (fitted.state_channels, fitted.extra_channels, fitted.grid) == (12, 4, (32, 64))
    assert replace(fitted, state_channels=None) == replace(size, extra_channels=4, grid=(32, 64))
    assert fitted.for_data(12, 4, (32, 64)) == fitted  # a matching value is fine
    assert WeatherMixer(fitted).cfg == fitted
    with pytest.raises(UserError, match=r"model\.grid is \(16, 32\) but the data has \(32, 64\)"):
        replace(size, grid=(16, 32)).for_data(12, 4, (32, 64))
    with pytest.raises(UserError, match=r"model\.state_channels is 5 but the data has 12"):
        replace(size, state_channels=5).for_data(12, 4, (32, 64))
