"""The shallow-water generator: spectral identities, a short run written like ERA5."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from weathermixer.cli import main
from weathermixer.data import Era5Store
from weathermixer.simulate import ShallowWater, SimulationConfig, regular_latitudes
from weathermixer.sphere import GaussianGrid

from shared_hpc import UserError


def test_spectral_transforms_and_vector_identities():
    g = GaussianGrid(16, 10)
    rng = np.random.default_rng(1)
    spec = (rng.normal(size=(11, 11)) + 1j * rng.normal(size=(11, 11))) * g.mask
    spec[0] = spec[0].real
    np.testing.assert_allclose(g.to_spectral(g.to_grid(spec)), spec, atol=1e-12)
    chi = np.roll(spec, 1, axis=1) * g.mask
    u_cos, v_cos = g.uv_cos(spec, chi)  # from stream function and velocity potential
    div, curl = g.div_curl(u_cos, v_cos)
    lap = g.laplacian[None, :]
    np.testing.assert_allclose(curl, lap * spec, atol=1e-12 * np.abs(lap * spec).max())
    np.testing.assert_allclose(div, lap * chi, atol=1e-12 * np.abs(lap * chi).max())
    with pytest.raises(ValueError, match="aliases"):
        GaussianGrid(16, 12)


def test_generate_writes_cf_netcdf_the_reader_accepts(tmp_path):
    path = tmp_path / "sim.nc"
    assert (
        main(
            ["generate", "--output", str(path), "--nlat", "16", "--days", "2", "--spinup-days", "3"]
        )
        == 0
    )
    ds = xr.open_dataset(path)
    assert ds.attrs["Conventions"] == "CF-1.8"
    assert ds["z"].dims == ("time", "level", "latitude", "longitude")
    assert ds["z"].attrs["standard_name"] == "geopotential"
    assert ds["msl"].attrs["units"] == "Pa"
    assert ds.latitude.values[0] > ds.latitude.values[-1]
    np.testing.assert_allclose(ds.latitude.values, regular_latitudes(16), atol=1e-4)
    assert ds.time.size == 8
    z500 = ds["z"].sel(level=500).values
    assert z500.min() > 40000 and z500.max() < 62000  # ~4.1 to 6.3 km
    assert ds["t2m"].min() > 180 and ds["t2m"].max() < 330
    assert ds["msl"].min() > 90000 and ds["msl"].max() < 110000
    store = Era5Store(path)
    assert store.read(3).shape == (12, 16, 32)
    assert [p.name for p in tmp_path.iterdir()] == ["sim.nc"]  # no temporary file left


def test_flow_changes_and_same_seed_repeats():
    cfg = SimulationConfig(nlat=16, seed=5)
    when = np.datetime64("2000-01-01T00:00", "s")

    def run(config: SimulationConfig) -> dict:
        model = ShallowWater(config)
        old = now = model.initial_state(when)
        out = []
        t = when
        for i in range(4 * model.steps_per_output):
            if i % model.steps_per_output == 0:
                model.stir()
                out.append(model.diagnose(now)["u"][0])
            old, now = model.step(old, now, t)
            t = t + np.timedelta64(int(model.dt), "s")
        return out

    a, b = run(cfg), run(cfg)
    np.testing.assert_array_equal(a[-1], b[-1])
    assert np.abs(a[-1] - a[1]).max() > 1.0  # the wind evolves
    assert np.isfinite(a[-1]).all()


def test_bad_simulation_settings(tmp_path, capsys):
    with pytest.raises(UserError, match="even number"):
        SimulationConfig(nlat=15)
    with pytest.raises(UserError, match="divide 24"):
        SimulationConfig(output_interval_h=5)
    with pytest.raises(UserError, match="start must be a date"):
        SimulationConfig(start="tomorrow")
    assert main(["generate", "--output", str(tmp_path / "x.nc"), "--nlat", "7"]) == 2
    assert "nlat must be an even number >= 8, got 7" in capsys.readouterr().err
    assert not (tmp_path / "x.nc").exists()
