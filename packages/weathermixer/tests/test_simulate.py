"""The two-layer generator: spectral identities, instability, conservation, a run written like
ERA5 whose levels are not copies."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from weathermixer.cli import main
from weathermixer.data import Era5Store
from weathermixer.simulate import (
    THICKNESS_PER_K,
    SimulationConfig,
    TwoLayerAtmosphere,
    generate,
    regular_latitudes,
)
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
    scalars, u_many, v_many = g.to_grid_with_rotational_uv(spec[None], np.stack([spec, chi]))
    np.testing.assert_allclose(scalars[0], g.to_grid(spec), atol=1e-12)
    np.testing.assert_allclose(u_many[1], g.uv_cos(chi, 0 * chi)[0], atol=1e-9)
    np.testing.assert_allclose(v_many[0], g.uv_cos(spec, 0 * chi)[1], atol=1e-9)
    field = g.to_grid(spec)  # Parseval: the spectral mean square is the area mean on the grid
    area_mean = (g.weights[:, None] * field**2).mean(axis=1).sum() / 2.0
    assert g.mean_square(spec) == pytest.approx(area_mean, rel=1e-10)
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


def _run(model: TwoLayerAtmosphere, state: list, days: float, when: np.datetime64) -> list:
    """Advance ``state`` by ``days`` (leapfrog started with a forward step)."""
    old = now = state
    step = np.timedelta64(int(model.dt), "s")
    for _ in range(round(days * 86400 / model.dt)):
        old, now = model.step(old, now, when)
        when = when + step
    return now


WHEN = np.datetime64("2000-01-01T00:00", "s")


def test_baroclinic_instability_grows_from_a_small_perturbation():
    """Two runs from radiative equilibrium that differ by a perturbation of 1e-6 of the shear
    separate by orders of magnitude within days: the flow is baroclinically unstable."""
    a = TwoLayerAtmosphere(SimulationConfig(nlat=32, seed=1))
    b = TwoLayerAtmosphere(SimulationConfig(nlat=32, seed=2))
    sa = a.initial_state(WHEN, amplitude=1e-6)
    sb = b.initial_state(WHEN, amplitude=1e-6)
    first = a.energy(sa[0] - sb[0])
    sa, sb = _run(a, sa, 12.0, WHEN), _run(b, sb, 12.0, WHEN)
    growth = a.energy(sa[0] - sb[0]) / first
    assert growth > 1e4  # e-folding in energy faster than 1.3 days
    # the seed decides the weather, nothing else
    c = TwoLayerAtmosphere(SimulationConfig(nlat=32, seed=1))
    sc = _run(c, c.initial_state(WHEN, amplitude=1e-6), 12.0, WHEN)
    np.testing.assert_array_equal(sc[0], sa[0])


def test_long_run_keeps_each_layers_mass_and_stays_bounded():
    model = TwoLayerAtmosphere(SimulationConfig(nlat=16))
    state = model.initial_state(WHEN)
    mass = state[0][:, 0, 0].copy()  # global mean PV of each layer: its mean thickness
    energies = []
    when = WHEN
    for _ in range(12):  # a year in months
        state = _run(model, state, 30.0, when)
        when = when + np.timedelta64(30, "D")
        energies.append(model.energy(state[0]))
        assert np.isfinite(state[0]).all() and np.isfinite(state[1]).all()
    np.testing.assert_allclose(state[0][:, 0, 0], mass, atol=1e-12 * np.abs(state[0]).max())
    energies = np.array(energies[2:])  # after spin-up
    assert energies.max() < 3 * np.median(energies)
    assert energies.min() > np.median(energies) / 3
    fields = model.diagnose(state)
    assert fields["t2m"].min() > 180 and fields["t2m"].max() < 330
    assert np.abs(fields["u"]).max() < 100


def test_levels_are_not_copies_of_each_other(tmp_path):
    """The issue's check: anomaly correlation of 500 and 850 hPa fields well below 1."""
    path = tmp_path / "sim.nc"
    generate(path, SimulationConfig(nlat=32, days=40, spinup_days=40, seed=4242))
    ds = xr.open_dataset(path)
    weights = np.cos(np.radians(ds.latitude.values))[:, None]
    for name, bound in (("z", 0.95), ("t", 0.85), ("u", 0.9), ("v", 0.9)):
        a, b = (ds[name].sel(level=lev) for lev in (500, 850))
        a, b = (x.values - x.values.mean(axis=0) for x in (a, b))
        corr = (weights * a * b).sum() / np.sqrt((weights * a * a).sum() * (weights * b * b).sum())
        assert corr < bound, (name, corr)
    # temperature is the thickness: the 500-850 hPa layer's mean follows z500 - z850
    thick = (ds.z.sel(level=500) - ds.z.sel(level=850)) / THICKNESS_PER_K
    mean_t = 0.5 * (ds.t.sel(level=500) + ds.t.sel(level=850))
    np.testing.assert_allclose(mean_t, thick, atol=0.01)
    # eddies travel: the 6-hourly change of z500 is not small
    change = np.sqrt((ds.z.sel(level=500).diff("time") ** 2).mean())
    assert change > 100.0  # m²/s² in 6 h


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
