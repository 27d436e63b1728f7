"""Shared fixtures: small ERA5-style files written by the tests, and a directory all MPI ranks
see."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from weathermixer.model import ModelConfig


def era5_like(
    times: int = 24,
    nlat: int = 8,
    start: str = "2000-01-01",
    seed: int = 0,
    ascending: bool = False,
) -> xr.Dataset:
    """A tiny dataset with the layout the reader expects (values are smooth random fields)."""
    rng = np.random.default_rng(seed)
    lat = 90.0 - (np.arange(nlat) + 0.5) * 180.0 / nlat
    if ascending:
        lat = lat[::-1]
    lon = np.arange(2 * nlat) * 360.0 / (2 * nlat)
    time = np.datetime64(start, "h") + np.arange(times) * np.timedelta64(6, "h")

    def field(*shape: int) -> np.ndarray:
        return rng.normal(size=shape).astype(np.float32)

    shape4, shape3 = (times, 2, nlat, 2 * nlat), (times, nlat, 2 * nlat)
    ds = xr.Dataset(
        {
            "z": (("time", "level", "latitude", "longitude"), 50000 + 500 * field(*shape4)),
            "t": (("time", "level", "latitude", "longitude"), 260 + 5 * field(*shape4)),
            "u": (("time", "level", "latitude", "longitude"), 5 * field(*shape4)),
            "v": (("time", "level", "latitude", "longitude"), 5 * field(*shape4)),
            "t2m": (("time", "latitude", "longitude"), 280 + 5 * field(*shape3)),
            "u10": (("time", "latitude", "longitude"), 3 * field(*shape3)),
            "v10": (("time", "latitude", "longitude"), 3 * field(*shape3)),
            "msl": (("time", "latitude", "longitude"), 101000 + 500 * field(*shape3)),
            "geopotential_at_surface": (("latitude", "longitude"), 1000 * field(nlat, 2 * nlat)),
            "land_sea_mask": (("latitude", "longitude"), (field(nlat, 2 * nlat) > 0) * 1.0),
        },
        coords={"time": time, "level": [500, 850], "latitude": lat, "longitude": lon},
    )
    return ds.astype(np.float32)


@pytest.fixture
def make_era5():
    """The ``era5_like`` factory."""
    return era5_like


@pytest.fixture
def write_nc(tmp_path):
    """Write a dataset to a netCDF file under tmp_path and return the path."""

    def write(ds: xr.Dataset, name: str = "data.nc") -> Path:
        path = tmp_path / name
        ds.to_netcdf(path, engine="netcdf4")
        return path

    return write


@pytest.fixture
def tiny_cfg() -> ModelConfig:
    """A model small enough for MPI tests, with every dimension divisible by 1, 2 and 4."""
    return ModelConfig(
        state_channels=4,
        extra_channels=4,
        history=2,
        grid=(16, 32),
        patch=2,
        embed_dim=8,
        token_hidden=8,
        channel_hidden=16,
        depth=2,
        seed=3,
    )
