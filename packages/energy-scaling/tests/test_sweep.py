"""Sweep expansion and validation: every point checked before anything runs."""

import math

import pytest
from energy_scaling.config import SweepConfig, TrainConfig
from energy_scaling.runner import load_sweep
from energy_scaling.sweep import expand, find_point

from shared_hpc import UserError


def test_expansion_names_points_and_scales_the_learning_rate():
    sweep = SweepConfig(
        ranks=[2, 1],
        global_batch=[256, 64],
        local_batch=[32],
        train=TrainConfig(base_lr=0.1, base_batch=64, lr_rule="linear"),
    )
    points = expand(sweep)
    assert [p.id for p in points] == ["r1-g64-l32", "r1-g256-l32", "r2-g64-l32", "r2-g256-l32"]
    assert [p.accumulation for p in points] == [2, 8, 1, 4]
    assert [p.lr for p in points] == pytest.approx([0.1, 0.4, 0.1, 0.4])
    sqrt = expand(SweepConfig(ranks=[1], global_batch=[256], train=TrainConfig(
        base_lr=0.1, base_batch=64, lr_rule="sqrt")))  # fmt: skip
    assert sqrt[0].lr == pytest.approx(0.1 * math.sqrt(4))
    assert sqrt[0].local_batch == 256  # no local batch given: global / ranks


def test_an_indivisible_global_batch_names_the_point():
    sweep = SweepConfig(ranks=[1, 3], global_batch=[64], local_batch=[16])
    with pytest.raises(UserError, match=r"global batch 64 is not divisible by .* 3 x 16 = 48"):
        expand(sweep)
    with pytest.raises(UserError, match="3 x 21"):
        expand(SweepConfig(ranks=[3], global_batch=[64]))


def test_find_point_and_unknown_point():
    sweep = SweepConfig(ranks=[1, 2], global_batch=[32])
    assert find_point(sweep, "r2-g32-l16").ranks == 2
    with pytest.raises(UserError, match="has no point 'r4-g32-l8'; it has r1-g32-l32, r2-g32-l16"):
        find_point(sweep, "r4-g32-l8")


def test_a_toml_sweep_loads_with_nested_tables(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(
        'name = "afno"\nranks = [1, 2]\nglobal_batch = [8]\nlocal_batch = [2, 4]\n'
        '[model]\nname = "afno"\npatch = 4\n[data]\nsource = "era5"\npath = "x.nc"\n'
        '[train]\nepochs = 2\nlr_rule = "sqrt"\ntarget = 0.5\n'
    )
    sweep = load_sweep(path)
    assert (sweep.model.name, sweep.data.source, sweep.train.lr_rule) == ("afno", "era5", "sqrt")
    assert [p.id for p in expand(sweep)] == ["r1-g8-l2", "r1-g8-l4", "r2-g8-l2", "r2-g8-l4"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ranks": [0]}, "ranks must hold numbers >= 1"),
        ({"global_batch": [32, 32]}, "global_batch repeats a value"),
        ({"model": {"name": "afno"}}, "model 'afno' needs weather data"),
        ({"train": {"lr_rule": "cubic"}}, "train.lr_rule must be 'linear' or 'sqrt'"),
        ({"data": {"source": "era5"}}, "data.source 'era5' needs data.path"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    from shared_hpc import load_config

    with pytest.raises(UserError, match=message):
        load_config(SweepConfig, settings)
