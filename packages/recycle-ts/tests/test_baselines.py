"""The profiles: each forecasts from the past alone, as documented."""

import numpy as np
import pandas as pd
import pytest
from recycle_ts.baselines import profile_forecast, profile_table
from recycle_ts.data import day_types

from shared_hpc import UserError


def _days(count: int) -> np.ndarray:
    """Cycle ``i`` holds the value ``i`` in every slot (2 slots, 1 target)."""
    return np.repeat(np.arange(count, dtype=float)[:, None, None], 2, axis=1)


def test_day_type_profile_on_a_calendar_with_holidays():
    # 2 Dec 2024 is a Monday; 25 and 26 Dec are holidays in Germany.
    starts = pd.date_range("2024-12-02", "2024-12-31", freq="D")
    types = day_types(starts, "DE")
    past = _days(len(starts) - 1)  # up to Monday 30 Dec; forecast Tuesday 31 Dec and after
    future = day_types(pd.date_range("2024-12-31", periods=7, freq="D"), "DE")
    out = profile_forecast("day_type", past, types[:-1], future, n=3)
    index = {d.strftime("%m-%d"): i for i, d in enumerate(starts)}
    # Tuesday 31 Dec: the last three weekdays are 30, 27, 24 Dec (25, 26 are holidays).
    assert out[0, 0, 0] == np.mean([index["12-30"], index["12-27"], index["12-24"]])
    # Wednesday 1 Jan is a holiday: the last three Sundays-or-holidays are 29, 26, 25 Dec.
    assert out[1, 0, 0] == np.mean([index["12-29"], index["12-26"], index["12-25"]])
    # Saturday 4 Jan: the last three Saturdays.
    assert out[4, 0, 0] == np.mean([index["12-28"], index["12-21"], index["12-14"]])


def test_day_type_profile_ignores_nans_and_falls_back_to_the_last_cycle():
    past = _days(8)
    past[7, 1, 0] = np.nan  # one unknown slot of the last weekday
    types = np.zeros(8, int)
    out = profile_forecast("day_type", past, types, np.array([0, 2]), n=3)
    assert out[0, 0, 0] == np.mean([5, 6, 7]) and out[0, 1, 0] == np.mean([5, 6])
    assert out[1, 0, 0] == 7  # no Sunday known yet: the last cycle


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("persistence", [9, 9, 9]),
        ("mean", [8, 8, 8]),  # the last three: 7, 8, 9
        ("seasonal_naive", [3, 4, 5]),  # season 7: a week earlier
    ],
)
def test_simple_profiles(name, expected):
    out = profile_forecast(name, _days(10), np.zeros(10, int), np.zeros(3, int), n=3, season=7)
    assert out[:, 0, 0].tolist() == expected


def test_seasonal_naive_beyond_one_season_repeats_the_last_season():
    out = profile_forecast("seasonal_naive", _days(10), np.zeros(10), np.zeros(9), season=7)
    assert out[:, 0, 0].tolist() == [3, 4, 5, 6, 7, 8, 9, 3, 4]


def test_the_table_uses_only_cycles_before_each_origin():
    values = _days(12)
    table = profile_table("persistence", values, np.zeros(14, int), horizon=2)
    assert np.isnan(table[0]).all()
    assert [table[t, 0, 0, 0] for t in range(1, 13)] == list(range(12))
    with pytest.raises(UserError, match="day types cover"):
        profile_table("day_type", values, np.zeros(12, int), horizon=2)


def test_unknown_profile_is_refused():
    with pytest.raises(UserError, match="unknown baseline"):
        profile_forecast("median", _days(3), np.zeros(3), np.zeros(1))
