"""Data: cycle detection, compression, DST days, calendar, split, scaler, bad input."""

import numpy as np
import pandas as pd
import pytest
from recycle_ts.data import (
    EMBEDDED,
    TAYLOR_START,
    Scaler,
    calendar_features,
    day_types,
    detect_cycle,
    from_steps,
    split_cycles,
    to_cycles,
    to_steps,
)

from shared_hpc import UserError


@pytest.mark.parametrize("period", [7, 24, 48, 96])
def test_cycle_detection_finds_a_known_period(period):
    rng = np.random.default_rng(period)
    t = np.arange(period * 60)
    weekly = 0.3 * np.sin(2 * np.pi * t / (7 * period))
    x = np.sin(2 * np.pi * t / period) + 0.4 * np.cos(4 * np.pi * t / period) + weekly
    assert detect_cycle(x + 0.3 * rng.normal(size=len(t)) + 0.001 * t) == period


def test_cycle_detection_on_the_embedded_data():
    assert detect_cycle(EMBEDDED["taylor"][0]()["load"].to_numpy()) == 48
    assert detect_cycle(EMBEDDED["seattle"][0]()["load"].to_numpy()) == 24


def test_white_noise_has_no_cycle():
    with pytest.raises(UserError, match="no cycle stands out"):
        detect_cycle(np.random.default_rng(0).normal(size=2000))


def test_cycle_compression_and_back():
    steps = np.arange(5 * 24 * 2, dtype=float).reshape(-1, 2)
    cycles = from_steps(steps, 24)
    assert cycles.shape == (5, 24, 2)
    np.testing.assert_array_equal(cycles[1, 0], steps[24])
    np.testing.assert_array_equal(to_steps(cycles), steps)
    with pytest.raises(UserError, match="not whole cycles"):
        from_steps(steps[:-1], 24)


def test_a_table_becomes_whole_days_from_midnight(load_frame):
    series = to_cycles(load_frame.iloc[5:], "time", ["load"], ["temperature"])
    assert series.cycle == 24 and series.daily
    assert series.starts[0] == pd.Timestamp("2024-01-02")  # the partial first day is dropped
    assert series.cycles == 119
    np.testing.assert_array_equal(series.values[0, :, 0], load_frame["load"].to_numpy()[24:48])
    assert series.covariates.shape == (119, 24, 1)


def test_taylor_starts_on_monday_5_june_2000():
    frame = EMBEDDED["taylor"][0]()
    assert frame["date"].iloc[0] == TAYLOR_START and TAYLOR_START.day_name() == "Monday"
    assert len(frame) == 4032 and frame["date"].diff().iloc[1] == pd.Timedelta("30min")


def test_the_west_coast_collection_is_two_whole_years_of_hours():
    from recycle_ts.config import ForecastConfig
    from recycle_ts.many import load_collection

    config = ForecastConfig(date_column="date", target=["load"], **EMBEDDED["west-coast"][1])
    collection, data = load_collection(None, "west-coast", config)
    assert sorted(collection) == ["san-francisco", "seattle"] and data["name"] == "west-coast"
    for series in collection.values():  # the one missing hour (14 March, 03:00) interpolated
        assert series.cycles == 365 and series.cycle == 24 and np.isfinite(series.values).all()
    seattle = EMBEDDED["seattle"][0]()
    np.testing.assert_array_equal(collection["seattle"].values.ravel(), seattle["load"])


def _berlin(days: int = 60) -> pd.DataFrame:
    """Hourly data in UTC across the spring and autumn DST changes of Berlin, 2024."""
    local = []
    for day in pd.date_range("2024-03-01", periods=days, freq="D"):
        local += list(pd.date_range(day, day + pd.DateOffset(days=1), freq="1h", inclusive="left",
                                    tz="Europe/Berlin"))  # fmt: skip
    stamps = pd.DatetimeIndex(local)
    load = np.asarray(100 + 10 * np.sin(2 * np.pi * stamps.hour / 24), float)
    return pd.DataFrame({"time": stamps.tz_convert("UTC"), "load": load})


def test_daylight_saving_days_are_resampled_to_whole_cycles():
    frame = _berlin()
    spring = frame[frame["time"].dt.tz_convert("Europe/Berlin").dt.date.astype(str) == "2024-03-31"]
    assert len(spring) == 23  # the day really has 23 hours
    series = to_cycles(frame, "time", ["load"], cycle=24, timezone="Europe/Berlin")
    assert series.cycle == 24 and series.cycles == 60 and series.filled == 1
    day = series.values[list(series.starts).index(pd.Timestamp("2024-03-31")), :, 0]
    assert day[2] == pytest.approx((day[1] + day[3]) / 2)  # 02:00 did not exist: interpolated
    assert np.isfinite(series.values).all()


def test_autumn_repeated_hour_is_averaged():
    days = pd.date_range("2024-10-20", periods=14, freq="D", tz="Europe/Berlin")
    stamps = pd.DatetimeIndex(
        [
            t
            for d in days
            for t in pd.date_range(d, d + pd.DateOffset(days=1), freq="1h", inclusive="left")
        ]
    )
    load = np.arange(len(stamps), dtype=float)
    frame = pd.DataFrame({"time": stamps.tz_convert("UTC"), "load": load})
    series = to_cycles(frame, "time", ["load"], cycle=24, timezone="Europe/Berlin")
    assert series.cycles == 14
    day = series.values[list(series.starts).index(pd.Timestamp("2024-10-27")), :, 0]
    first = load[stamps.tz_localize(None) == pd.Timestamp("2024-10-27 02:00")]
    assert len(first) == 2 and day[2] == first.mean()


def test_local_time_stamps_with_utc_offsets_across_dst_are_read():
    """Text such as ``2024-03-31T01:00:00+0100`` then ``...03:00:00+0200``, as exported locally."""
    frame = _berlin()
    local = frame["time"].dt.tz_convert("Europe/Berlin").dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    expected = to_cycles(frame, "time", ["load"], cycle=24, timezone="Europe/Berlin")
    series = to_cycles(frame.assign(time=local), "time", ["load"], cycle=24,
                       timezone="Europe/Berlin")  # fmt: skip
    np.testing.assert_array_equal(series.values, expected.values)
    assert series.starts.equals(expected.starts)


def test_naive_and_aware_time_stamps_mixed_are_refused():
    frame = _berlin().iloc[:48]
    stamps = [t.tz_localize(None) if i == 0 else t for i, t in enumerate(frame["time"])]
    with pytest.raises(UserError, match="time stamps cannot be read"):
        to_cycles(frame.assign(time=pd.Series(stamps, dtype=object)), "time", ["load"], cycle=24)


def test_naive_local_times_with_dst_need_a_timezone():
    frame = _berlin()
    frame["time"] = frame["time"].dt.tz_convert("Europe/Berlin").dt.tz_localize(None)
    with pytest.raises(UserError, match=r"gap in the series.*pass --timezone"):
        to_cycles(frame, "time", ["load"], cycle=24)
    series = to_cycles(frame, "time", ["load"], cycle=24, timezone="Europe/Berlin")
    assert series.filled == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(index=[50, 51]), "gap in the series: 2 missing time steps"),
        (lambda f: f.assign(load=f["load"].where(f.index != 30)), "1 missing values \\(NaN\\)"),
        (lambda f: f.iloc[[*range(10), 11, 10, *range(12, len(f))]], "not in increasing order"),
        (lambda f: pd.concat([f.iloc[:20], f.iloc[19:]]), "duplicate time stamp"),
        (lambda f: f.iloc[: 24 * 3], "holds 3 whole cycles"),
        (lambda f: f.drop(columns="load"), "no column 'load'"),
        (lambda f: f.assign(load="x"), "not numeric"),
        (lambda f: f.assign(time="yesterday"), "time stamps cannot be read"),
    ],
)
def test_bad_tables_give_clear_errors(load_frame, change, message):
    with pytest.raises(UserError, match=message):
        to_cycles(change(load_frame), "time", ["load"], cycle=24)


def test_day_types_on_a_calendar_with_holidays():
    starts = pd.date_range("2024-12-20", "2024-12-29", freq="D")  # Fri .. Sun
    types = day_types(starts, "DE")
    expected = {"2024-12-20": 0, "2024-12-21": 1, "2024-12-22": 2, "2024-12-23": 0,
                "2024-12-24": 0, "2024-12-25": 2, "2024-12-26": 2, "2024-12-28": 1}  # fmt: skip
    for day, kind in expected.items():
        assert types[list(starts).index(pd.Timestamp(day))] == kind, day
    assert day_types(starts, "")[5] == 0  # without a country, Christmas is a Wednesday
    with pytest.raises(UserError, match="no country 'XX'"):
        day_types(starts, "XX")


def test_calendar_features_are_those_of_each_day():
    starts = pd.date_range("2024-12-23", periods=4, freq="D")
    features = calendar_features(starts, "DE")
    assert features[:, :7].argmax(1).tolist() == [0, 1, 2, 3]
    assert features[:, 7].tolist() == [0, 0, 1, 1]


def test_split_is_chronological_in_whole_cycles_without_overlap():
    split = split_cycles(100, history=7, horizon=3, validation=0.15, test=0.15)
    assert split.train.min() == 8 and split.train.max() + 3 <= split.validation_start
    assert split.validation.min() == split.validation_start
    assert split.validation.max() + 3 <= split.test_start == split.test.min()
    assert split.test.max() + 3 == 100
    with pytest.raises(UserError, match="too short"):
        split_cycles(20, history=14, horizon=3, validation=0.15, test=0.15)


def test_scaler_round_trip():
    values = np.random.default_rng(0).normal(5, 3, (10, 24, 2))
    scaler = Scaler.fit(values)
    np.testing.assert_allclose(scaler.inverse(scaler.transform(values)), values)
    np.testing.assert_allclose(Scaler.from_dict(scaler.to_dict()).mean, scaler.mean)


def test_more_series_of_other_lengths_work(make_load):
    series = to_cycles(make_load(days=30), "time", ["load", "temperature"], cycle=None)
    assert series.cycle == 24 and series.values.shape == (30, 24, 2)
