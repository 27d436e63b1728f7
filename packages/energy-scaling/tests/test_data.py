"""Data: digits upscaled, ImageFolder of PNGs, ERA5-style netCDF (channels, weights, time split)."""

import numpy as np
import pytest
import torch
from energy_scaling.config import DataConfig
from energy_scaling.data import load_samples, prepare_data

from shared_hpc import UserError


def test_digits_are_upscaled_to_three_channel_images():
    samples = load_samples(DataConfig(image_size=24, validation=0.25))
    x, y = samples.train.tensors
    assert x.shape[1:] == (3, 24, 24) and samples.grid == (24, 24)
    assert len(samples.train) + len(samples.validation) == 1797
    assert len(samples.validation) == round(1797 * 0.25)
    assert set(y.tolist()) == set(range(10)) and samples.metric == "accuracy"
    assert torch.equal(x[:, 0], x[:, 2])


def test_an_image_folder_is_read_resized_and_split(image_folder):
    samples = load_samples(DataConfig(source="imagefolder", path=str(image_folder),
                                      image_size=8, validation=0.25))  # fmt: skip
    assert samples.outputs == 3 and len(samples.train) == 45 and len(samples.validation) == 15
    x, y = samples.train[0]
    assert x.shape == (3, 8, 8) and 0 <= y < 3


def test_era5_channels_per_level_latitude_weights_and_a_split_in_time(era5_file):
    samples = load_samples(DataConfig(source="era5", path=str(era5_file), validation=0.25))
    assert samples.channels == ("z500", "z850", "t500", "t850", "t2m")  # lsm has no time
    assert samples.task == "forecast" and samples.grid == (12, 24)
    w = samples.lat_weights
    assert w.mean().item() == pytest.approx(1.0) and w[6] > w[0]  # equator over pole
    (x_train, y_train), (x_val, _) = samples.train.tensors, samples.validation.tensors
    assert len(x_train) + len(x_val) == 23 and len(x_val) == 6
    torch.testing.assert_close(y_train[:-1], x_train[1:])  # target = next state
    torch.testing.assert_close(x_val[0], y_train[-1])  # validation follows training in time
    means = torch.cat([x_train, y_train[-1:]]).mean(dim=(0, 2, 3))
    torch.testing.assert_close(means, torch.zeros(5), atol=1e-4, rtol=0)  # normalised


def test_era5_variables_are_chosen_and_a_missing_one_is_named(era5_file):
    chosen = load_samples(DataConfig(source="era5", path=str(era5_file), variables=["t2m"]))
    assert chosen.channels == ("t2m",) and chosen.in_channels == 1
    with pytest.raises(UserError, match="variable 'q' not found; the file has"):
        load_samples(DataConfig(source="era5", path=str(era5_file), variables=["q"]))


def test_bad_weather_files_are_one_line(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_samples(DataConfig(source="era5", path=str(tmp_path / "none.nc")))
    broken = tmp_path / "broken.nc"
    broken.write_bytes(b"not a netCDF file")
    with pytest.raises(UserError, match="not a readable netCDF file"):
        load_samples(DataConfig(source="era5", path=str(broken)))


def test_nan_in_the_weather_data_is_refused(tmp_path, era5_file):
    import xarray as xr

    ds = xr.open_dataset(era5_file).load()
    ds["t2m"][3, 2, 2] = np.nan
    ds.to_netcdf(tmp_path / "nan.nc")
    with pytest.raises(UserError, match="NaN"):
        load_samples(DataConfig(source="era5", path=str(tmp_path / "nan.nc")))


def test_other_sources_need_no_preparation(tmp_path):
    config = DataConfig()
    assert prepare_data(config, tmp_path) is config
