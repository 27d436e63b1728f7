"""Fixtures: synthetic hourly load tables in the format users have (a time stamp column)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

torch.set_num_threads(1)  # the test machine's cores are shared


def make_load(days: int = 120, seed: int = 0, start: str = "2024-01-01") -> pd.DataFrame:
    """Hourly load with a daily shape, a weekend dip, a slow trend and noise; a temperature."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(start, periods=days * 24, freq="1h")
    hour = stamps.hour.to_numpy()
    weekend = stamps.day_of_week.to_numpy() >= 5
    daily = 10 * np.sin(2 * np.pi * (hour - 6) / 24) + 5 * np.sin(4 * np.pi * hour / 24)
    load = (
        100 + daily - 15 * weekend + 0.02 * np.arange(len(stamps)) + rng.normal(0, 1, len(stamps))
    )
    temperature = 10 + 5 * np.sin(2 * np.pi * hour / 24) + rng.normal(0, 0.5, len(stamps))
    return pd.DataFrame({"time": stamps, "load": load, "temperature": temperature})


@pytest.fixture(name="make_load")
def make_load_fixture():
    """``make_load(days, seed, start)``: another synthetic table."""
    return make_load


@pytest.fixture
def load_frame() -> pd.DataFrame:
    return make_load()


@pytest.fixture
def load_csv(tmp_path, load_frame):
    path = tmp_path / "load.csv"
    load_frame.to_csv(path, index=False)
    return path
