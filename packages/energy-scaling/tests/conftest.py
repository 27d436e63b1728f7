"""Fixtures: a small ERA5-style netCDF file and an ImageFolder of PNGs, in the real formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from energy_scaling.analysis import PointRecord

torch.set_num_threads(1)  # small models on a shared 2-core machine: more threads only spin


def write_era5(path: Path, times: int = 24, nlat: int = 12, nlon: int = 24) -> Path:
    """An ERA5-like file: ``z`` and ``t`` on two pressure levels, ``t2m`` at the surface, a
    static ``lsm``, latitude descending, time at 6-hourly steps, as the CDS writes them."""
    import xarray as xr

    rng = np.random.default_rng(0)
    lat = np.linspace(87.5, -87.5, nlat)
    lon = np.arange(nlon) * 360.0 / nlon
    time = np.datetime64("2000-01-01T00") + np.arange(times) * np.timedelta64(6, "h")
    phase = np.arange(times)[:, None, None] * 0.3 + np.deg2rad(lon)[None, None, :]
    wave = np.sin(phase) * np.cos(np.deg2rad(lat))[None, :, None]
    level = np.array([500, 850])
    z = 5.5e4 + 800 * wave[:, None] * (1 + level[None, :, None, None] / 1000)
    t = 250 + 10 * wave[:, None] + rng.normal(0, 0.5, (times, 2, nlat, nlon))
    ds = xr.Dataset(
        {
            "z": (("time", "level", "latitude", "longitude"), z.astype(np.float32)),
            "t": (("time", "level", "latitude", "longitude"), t.astype(np.float32)),
            "t2m": (("time", "latitude", "longitude"), (280 + 5 * wave).astype(np.float32)),
            "lsm": (("latitude", "longitude"), (rng.random((nlat, nlon)) > 0.7).astype("f4")),
        },
        coords={"time": time, "level": level, "latitude": lat, "longitude": lon},
    )
    ds.to_netcdf(path, engine="netcdf4")
    return path


@pytest.fixture(scope="session")
def era5_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_era5(tmp_path_factory.mktemp("era5") / "era5.nc")


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three classes of 20 PNGs each, told apart by their colour."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog", "owl"]):
        (root / name).mkdir()
        for i in range(20):
            pixels = rng.integers(0, 80, (12, 12, 3)).astype(np.uint8)
            pixels[..., c] += 150
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def _point(ranks, g, seconds, joules, metric=0.9, target=None, hit=None, **extra):
    hours = ranks * seconds / 3600
    samples, updates = 1000 * g, 1000
    return PointRecord(
        "resnet18",
        "test-cpu",
        {
            "point": f"r{ranks}-g{g}-l{g // ranks}", "ranks": ranks, "global_batch": g,
            "local_batch": g // ranks, "accumulation": 1, "lr": 0.1, "metric": "accuracy",
            "higher_is_better": True, "final_metric": metric, "best_metric": metric,
            "target": target, "wall_time_s": seconds,
            "time_to_target_s": None if hit is None else hit * seconds,
            "energy_to_target_j": None if hit is None else hit * joules,
            "device": "cpu", "device_hours": hours, "energy_j": joules,
            "energy_by_device_j": {"cpu": joules}, "energy_methods": {"cpu": "estimated"},
            "energy_measured": False, "samples": samples, "updates": updates,
            "samples_per_device_hour": samples / hours, "updates_per_device_hour": updates / hours,
            "throughput_samples_per_s": samples / seconds, **extra,
        },
    )  # fmt: skip


@pytest.fixture
def make_point():
    """``make_point(ranks, g, seconds, joules, metric=, target=, hit=)``: a finished point's
    record as ``training.PointResult.metrics`` writes it (``hit``: share of the run at which
    the target was met)."""
    return _point


@pytest.fixture
def sweep_points():
    """Five points, four of which met the target 0.9."""
    # (ranks, batch, seconds, joules, fraction of the run at which the target was met)
    table = [(1, 32, 400, 40e3, 0.5), (2, 32, 240, 52e3, 0.5), (4, 64, 100, 60e3, 0.8),
             (8, 128, 80, 100e3, 0.9), (8, 256, 90, 110e3, None)]  # fmt: skip
    return [_point(r, g, s, j, target=0.9, hit=h) for r, g, s, j, h in table]
