"""Jigsaw's layout and process-grid checks (no processes needed)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from weathermixer.grid import GridSpec, check_grid
from weathermixer.jigsaw import Layout
from weathermixer.model import WeatherMixer


@pytest.mark.parametrize("grid", ["1x1", "4x1", "1x4", "2x2", "2x4"])
def test_shards_partition_every_parameter_once(tiny_cfg, grid):
    spec = GridSpec.parse(grid)
    layout = Layout(tiny_cfg, spec)
    full = dict(WeatherMixer(tiny_cfg).named_parameters())
    total = sum(p.numel() for p in full.values())
    stored = 0
    for p in layout.params:
        shards = {
            (d, m): layout.shard(full[p.name].detach(), p, d, m)
            for d in range(spec.domain)
            for m in range(spec.tensor)
        }
        stored += sum(s.numel() for s in shards.values())
        torch.testing.assert_close(layout.assemble(p, shards), full[p.name].detach())
    padding = stored - total
    assert 0 <= padding < len(layout.params) * spec.size  # less than one element per shard


def test_data_layout_covers_grid_and_channels(tiny_cfg):
    layout = Layout(tiny_cfg, GridSpec(2, 2))
    assert [layout.rows(d) for d in range(2)] == [slice(0, 8), slice(8, 16)]
    assert [list(layout.state_channels(m)) for m in range(2)] == [[0, 1], [2, 3]]
    feats = layout.in_features(1)
    # rank m=1: state channels 2, 3 at both history steps (4 + 2, 4 + 3), extras 10, 11
    assert sorted({f // 4 for f in feats}) == [2, 3, 6, 7, 10, 11]


def test_grid_parsing_and_impossible_grids(tiny_cfg):
    assert GridSpec.parse("2x4") == GridSpec(2, 4)
    assert str(GridSpec.parse(" 3 X 1 ")) == "3x1"
    for bad in ("2", "2x", "0x1", "axb"):
        with pytest.raises(ValueError, match=r"DxM|>= 1"):
            GridSpec.parse(bad)
    assert check_grid(GridSpec(2, 2), 8, tiny_cfg) == 2
    with pytest.raises(ValueError, match="world size 6 is not divisible"):
        check_grid(GridSpec(2, 2), 6, tiny_cfg)
    with pytest.raises(ValueError, match="patch rows"):
        check_grid(GridSpec(3, 1), 3, tiny_cfg)
    with pytest.raises(ValueError, match="channel_hidden 16 is not divisible by M = 3"):
        check_grid(GridSpec(1, 3), 3, replace(tiny_cfg, embed_dim=9, state_channels=6))
    with pytest.raises(ValueError, match="state channels cannot be split"):
        check_grid(GridSpec(1, 8), 8, tiny_cfg)
