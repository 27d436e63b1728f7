"""The ERA5-style reader: validation with clear errors, lazy band reads, statistics, samples."""

from __future__ import annotations

import numpy as np
import pytest
from weathermixer.config import DataConfig
from weathermixer.data import (
    LONG_NAMES,
    Era5Store,
    ForecastSamples,
    NormStats,
    Variables,
    compute_stats,
    latitude_weights,
)

from shared_hpc import UserError


def test_reads_channels_in_order(write_nc, make_era5):
    ds = make_era5()
    store = Era5Store(write_nc(ds))
    x = store.read(5)
    assert x.shape == (12, 8, 16)
    assert store.variables.state_channels[:3] == ["z500", "z850", "t500"]
    np.testing.assert_array_equal(x[0], ds.z[5].sel(level=500).values)
    np.testing.assert_array_equal(x[3], ds.t[5].sel(level=850).values)
    np.testing.assert_array_equal(x[11], ds.msl[5].values)
    assert store.interval_s == 6 * 3600


def test_band_and_channel_subset_read_only_that_part(write_nc, make_era5):
    store = Era5Store(write_nc(make_era5()))
    full = store.read(3)
    part = store.read(3, slice(2, 6), [9, 1, 4])
    np.testing.assert_array_equal(part, full[[9, 1, 4], 2:6])


def test_ascending_latitude_is_flipped_to_north_first(write_nc, make_era5):
    ds = make_era5(ascending=True)
    store = Era5Store(write_nc(ds))
    assert store.latitude[0] > store.latitude[-1]
    np.testing.assert_array_equal(store.read(0)[8], ds.t2m[0].values[::-1])
    np.testing.assert_array_equal(store.read(0, slice(0, 2))[8], ds.t2m[0].values[::-1][:2])


def test_cds_dimension_names_are_accepted(write_nc, make_era5):
    ds = make_era5().rename({"time": "valid_time", "level": "pressure_level"})
    store = Era5Store(write_nc(ds))
    assert store.times.size == 24


def test_missing_variable_is_named(write_nc, make_era5):
    path = write_nc(make_era5().drop_vars("u10"))
    with pytest.raises(UserError, match=r"\['u10'\] not found"):
        Era5Store(path)


def test_missing_file_and_bad_variable_sets_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such data file"):
        Era5Store(tmp_path / "missing.nc")
    with pytest.raises(UserError, match="no files match"):
        Era5Store(str(tmp_path / "*.nc"))
    with pytest.raises(UserError, match="need at least one level"):
        Variables(levels=())
    with pytest.raises(UserError, match="channel names repeat"):
        DataConfig(surface=["t2m", "t2m"])


def test_missing_static_field_is_named(write_nc, make_era5):
    path = write_nc(make_era5().drop_vars("land_sea_mask"))
    with pytest.raises(ValueError, match="static variable 'land_sea_mask' not found"):
        Era5Store(path)


def test_wrong_dimension_names_get_a_hint(write_nc, make_era5):
    path = write_nc(make_era5().rename({"latitude": "lat", "longitude": "lon"}))
    with pytest.raises(ValueError, match=r"no 'latitude' dimension.*rename"):
        Era5Store(path)


def test_missing_level_is_named(write_nc, make_era5):
    path = write_nc(make_era5())
    with pytest.raises(ValueError, match=r"pressure level\(s\) \[250\] not found"):
        Era5Store(path, Variables(levels=(250, 500)))


def test_nan_values_are_reported_with_variable_and_time(write_nc, make_era5):
    ds = make_era5()
    ds["t2m"][7, 2, 3] = np.nan
    store = Era5Store(write_nc(ds))
    store.read(6)  # fine
    with pytest.raises(ValueError, match=r"'t2m' has 1 NaN.*2000-01-02T18"):
        store.read(7)


def test_nan_in_training_data_stops_statistics(write_nc, make_era5):
    ds = make_era5()
    ds["z"][4, 0, 0, 0] = np.nan
    store = Era5Store(write_nc(ds))
    with pytest.raises(ValueError, match="'z500' has 1 NaN"):
        compute_stats(store, range(10), 1)


def test_files_along_time_and_gaps(write_nc, make_era5):
    ds = make_era5(times=16)
    a, b = write_nc(ds.isel(time=slice(0, 8)), "a.nc"), write_nc(ds.isel(time=slice(8, 16)), "b.nc")
    store = Era5Store([a, b])
    assert store.times.size == 16
    np.testing.assert_array_equal(store.read(12)[11], ds.msl[12].values)
    gap = write_nc(ds.isel(time=[0, 1, 3, 4]), "gap.nc")
    with pytest.raises(ValueError, match="not uniform"):
        Era5Store(gap)
    with pytest.raises(ValueError, match="not strictly increasing"):
        Era5Store([b, a])


def test_not_a_global_grid_is_refused(write_nc, make_era5):
    path = write_nc(make_era5().isel(longitude=slice(0, 8)))
    with pytest.raises(ValueError, match="not the globe"):
        Era5Store(path)


def test_latitude_weights_match_hand_computed_cell_areas():
    # Cells centred at ±45° with 90° spacing have equal area.
    np.testing.assert_allclose(latitude_weights(np.array([45.0, -45.0])), [1.0, 1.0])
    # 60/0/-60 with 60° spacing: edges [30, 90], [-30, 30], [-90, -30] -> 0.5, 1.0, 0.5.
    np.testing.assert_allclose(latitude_weights(np.array([60.0, 0.0, -60.0])), [0.75, 1.5, 0.75])
    # Points on the poles (ERA5 style) get half cells: 90/0/-90 -> 1-sin45, 2 sin45, 1-sin45.
    w = latitude_weights(np.array([90.0, 0.0, -90.0]))
    half, mid = 1 - np.sin(np.pi / 4), 2 * np.sin(np.pi / 4)
    np.testing.assert_allclose(w, np.array([half, mid, half]) / ((2 * half + mid) / 3))
    assert latitude_weights(np.linspace(87, -87, 30)).mean() == pytest.approx(1.0)


def test_statistics_equal_numpy_and_split_computation(write_nc, make_era5):
    ds = make_era5()
    store = Era5Store(write_nc(ds))
    stats = compute_stats(store, range(0, 20), 2)
    w = latitude_weights(store.latitude)[:, None]
    t2m = ds.t2m.values[:20]
    mean = (t2m * w).mean()
    assert stats.mean[8] == pytest.approx(mean, rel=1e-6)
    assert stats.std[8] == pytest.approx(np.sqrt((t2m**2 * w).mean() - mean**2), rel=1e-5)
    diff = ds.t2m.values[2:22] - t2m
    assert stats.diff_std[8] == pytest.approx(np.sqrt((diff**2 * w).mean()), rel=1e-5)


def test_statistics_file_round_trip(write_nc, tmp_path, make_era5):
    store = Era5Store(write_nc(make_era5()))
    stats = compute_stats(store, range(10), 1)
    stats.write(tmp_path / "stats.nc")
    back = NormStats.read(tmp_path / "stats.nc")
    np.testing.assert_allclose(back.mean, stats.mean)
    assert back.matches(store.variables, 6.0)
    assert not back.matches(store.variables, 12.0)


def test_samples_have_history_rollout_and_normalisation(write_nc, make_era5):
    ds = make_era5()
    store = Era5Store(write_nc(ds))
    stats = compute_stats(store, range(20), 1)
    samples = ForecastSamples(store, stats, 2, range(24), rollout=3, history=2)
    assert samples.times[0] == 2 and samples.times[-1] == 24 - 1 - 6
    s = samples.sample(0)
    assert s["state"].shape == (2, 12, 8, 16)
    assert s["extras"].shape == (3, 4, 8, 16)
    assert s["targets"].shape == (3, 12, 8, 16)
    raw = ds.t2m.values
    np.testing.assert_allclose(
        samples.denormalise_state(s["state"][0])[8], raw[0], rtol=1e-5, atol=1e-3
    )
    np.testing.assert_allclose(
        samples.denormalise_state(s["targets"][2])[8], raw[2 + 6], rtol=1e-5, atol=1e-3
    )
    batch = samples.batch([0, 1])
    assert tuple(batch["state"].shape) == (2, 2, 12, 8, 16)


def test_periods_and_lead_time_checks():
    cfg = DataConfig(train_period="2000-01-01:2000-01-03", lead_time_h=9.0)
    times = np.datetime64("2000-01-01", "h") + np.arange(40) * np.timedelta64(6, "h")
    assert cfg.period("train", times).tolist() == list(range(12))
    with pytest.raises(UserError, match="not a multiple"):
        cfg.lead_steps(6 * 3600)
    with pytest.raises(UserError, match="holds no time steps"):
        DataConfig(valid_period="2001-01-01:2001-02-01").period("valid", times)
    with pytest.raises(UserError, match="START:END"):  # refused when the config is made
        DataConfig(test_period="yesterday")
    with pytest.raises(UserError, match="lead_time_h must be positive"):
        DataConfig(lead_time_h=0)


def test_zarr_store_reads_like_netcdf(tmp_path, make_era5):
    pytest.importorskip("zarr")
    ds = make_era5()
    ds.to_zarr(tmp_path / "data.zarr", consolidated=False)
    store = Era5Store(tmp_path / "data.zarr")
    np.testing.assert_array_equal(store.read(4)[8], ds.t2m[4].values)


def _weatherbench2(ds):
    """The layout of WeatherBench 2's ERA5 stores: long names, ``level``, latitude ascending,
    dimensions ordered (time, level, longitude, latitude)."""
    long = {short: long for long, short in LONG_NAMES.items()}
    wb2 = ds.rename({name: long[name] for name in ds.data_vars if name in long})
    wb2 = wb2.isel(latitude=slice(None, None, -1))
    return wb2.transpose("time", "level", "longitude", "latitude")


@pytest.mark.parametrize("layout", ["netcdf", "zarr-v2", "zarr-v3"])
def test_weatherbench2_long_names_read_like_short_ones(layout, tmp_path, write_nc, make_era5):
    ds = make_era5()
    wb2 = _weatherbench2(ds)
    assert "2m_temperature" in wb2 and "geopotential" in wb2 and "t2m" not in wb2
    if layout == "netcdf":
        path = write_nc(wb2, "wb2.nc")
    else:
        pytest.importorskip("zarr")
        path = tmp_path / ("wb2.zarr" if layout == "zarr-v2" else "wb2-store")
        fmt = 2 if layout == "zarr-v2" else 3
        wb2.to_zarr(path, zarr_format=fmt, consolidated=fmt == 2)  # as WB2's v2 stores are
    store = Era5Store(path)
    reference = Era5Store(write_nc(ds, "short.nc"))
    np.testing.assert_array_equal(store.read(5), reference.read(5))
    np.testing.assert_array_equal(
        store.read(2, slice(1, 4), [11, 0]), reference.read(2)[[11, 0], 1:4]
    )
    np.testing.assert_array_equal(store.static("land_sea_mask"), reference.static("land_sea_mask"))
    assert store.variables.state_channels[0] == "z500"


def test_weatherbench2_file_lacking_a_variable_names_it(write_nc, make_era5):
    path = write_nc(_weatherbench2(make_era5()).drop_vars("mean_sea_level_pressure"), "wb2.nc")
    with pytest.raises(UserError, match=r"\['msl'\] not found"):
        Era5Store(path)
