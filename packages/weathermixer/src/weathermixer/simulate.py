"""The embedded default data: a forced shallow-water atmosphere on the sphere, written like ERA5.

Why this model: it has the ingredients that make real weather hard to forecast from the previous
state alone, at a cost of seconds per simulated year on a laptop.

- Dynamics: the nonlinear shallow-water equations (vorticity–divergence form, spectral transform
  on a Gaussian grid, triangular truncation, SSP-RK3, ∇⁸ hyperdiffusion). Newtonian relaxation
  toward a sharp mid-latitude height gradient drives barotropically unstable jets whose eddies
  keep the flow chaotic; Rayleigh drag removes energy.
- Orography and land: Earth-like continents and mountain ranges force stationary waves; land has
  a stronger seasonal and day–night cycle than ocean.
- Day–night and seasonal forcing: the relaxation targets follow the instantaneous and daily-mean
  insolation (solar declination, hour angle), including a thermal tide.
- Temperature: an 850 hPa temperature advected by the flow and relaxed to a radiative
  equilibrium; a surface temperature that answers to insolation with a lag over land.

Output variables are diagnosed from the state with ERA5 names and CF attributes: geopotential
``z`` (hypsometric: 850 hPa height from the free surface, 500 hPa from the 850–500 hPa layer
temperature), ``t``, ``u``, ``v`` on pressure levels 500 and 850 hPa, and ``t2m``, ``u10``,
``v10`` (reduced, cross-isobar turned wind), ``msl`` (hydrostatic reduction) at the surface, plus
``geopotential_at_surface`` and ``land_sea_mask``. The grid is regular lat–lon without poles,
``nlat × 2·nlat``, latitude descending from north to south as in ERA5.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from shared_hpc import UserError, atomic_path, require_memory
from weathermixer.solar import (
    SOLAR_CONSTANT,
    daily_mean_insolation,
    declination,
    toa_insolation,
)
from weathermixer.sphere import GaussianGrid

GRAVITY = 9.80665
R_DRY = 287.05
OMEGA = 7.292e-5
T_REF = 270.0
LEVELS = (500, 850)
PRESSURE_VARIABLES = ("z", "t", "u", "v")
SURFACE_VARIABLES = ("t2m", "u10", "v10", "msl")
STATIC_VARIABLES = ("geopotential_at_surface", "land_sea_mask")

CF_ATTRS = {
    "z": ("geopotential", "m**2 s**-2", "Geopotential"),
    "t": ("air_temperature", "K", "Temperature"),
    "u": ("eastward_wind", "m s**-1", "U component of wind"),
    "v": ("northward_wind", "m s**-1", "V component of wind"),
    "t2m": ("air_temperature", "K", "2 metre temperature"),
    "u10": ("eastward_wind", "m s**-1", "10 metre U wind component"),
    "v10": ("northward_wind", "m s**-1", "10 metre V wind component"),
    "msl": ("air_pressure_at_mean_sea_level", "Pa", "Mean sea level pressure"),
    "geopotential_at_surface": ("surface_geopotential", "m**2 s**-2", "Geopotential at surface"),
    "land_sea_mask": ("land_binary_mask", "(0 - 1)", "Land-sea mask"),
}

# (lat, lon, half-width lat, half-width lon) in degrees: rough Earth-like continents.
_CONTINENTS = (
    (48, 258, 20, 32),
    (72, 318, 9, 14),
    (-14, 298, 24, 14),
    (52, 70, 18, 60),
    (30, 100, 14, 28),
    (20, 78, 10, 8),
    (6, 20, 28, 20),
    (-25, 134, 11, 18),
    (-85, 0, 17, 400),
)
# (lat, lon, half-width lat, half-width lon, height m): mountain ranges.
_MOUNTAINS = (
    (47, 245, 14, 5, 2000.0),
    (-20, 290, 24, 4, 2500.0),
    (33, 88, 6, 14, 4000.0),
    (-90, 0, 18, 400, 2500.0),
    (72, 318, 7, 10, 2000.0),
    (0, 37, 8, 6, 1200.0),
)


@dataclass(frozen=True)
class SimulationConfig:
    """Resolution, length and physics of the generated atmosphere.

    Attributes:
        nlat: Latitude rows, even and >= 8 (longitudes: 2 × nlat; spectral truncation
            (2 · nlat - 1) // 3).
        days: Simulated days written.
        spinup_days: Days simulated before the first written state.
        output_interval_h: Hours between written states; divides 24.
        start: First written time (UTC), e.g. 2000-01-01T00:00.
        seed: Seed of the stochastic stirring.
        mean_depth_m: Mean depth of the fluid layer.
        jet_height_m: Height drop across the jet that the relaxation aims at (sets the jets'
            strength).
        jet_width_deg: Width of that drop in latitude.
        tide_height_m: Height of the day-night thermal tide in the relaxation target.
        radiative_days: Relaxation time of the height field.
        drag_days: Time scale of the Rayleigh drag on the flow.
        temperature_days: Relaxation time of the 850 hPa temperature.
        stirring: Amplitude of the mid-latitude red-noise vorticity forcing (1/s²).
        time_step_s: Model time step; none: from the advection limit of the resolution.
    """

    nlat: int = 32
    days: float = 365.0
    spinup_days: float = 60.0
    output_interval_h: int = 6
    start: str = "2000-01-01T00:00"
    seed: int = 0
    mean_depth_m: float = 3000.0
    jet_height_m: float = 400.0
    jet_width_deg: float = 8.0
    tide_height_m: float = 30.0
    radiative_days: float = 10.0
    drag_days: float = 8.0
    temperature_days: float = 4.0
    stirring: float = 2.0e-11
    time_step_s: float | None = None

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"{item.name} must be a finite number, got {value}")
        if self.nlat < 8 or self.nlat % 2:
            raise UserError(f"nlat must be an even number >= 8, got {self.nlat}")
        if self.days <= 0 or self.spinup_days < 0:
            raise UserError("days must be positive and spinup_days non-negative")
        if self.output_interval_h <= 0 or 24 % self.output_interval_h:
            raise UserError("output_interval_h must divide 24 (e.g. 1, 3, 6)")
        if not self.mean_depth_m > 0:
            raise UserError(f"mean_depth_m must be positive, got {self.mean_depth_m}")
        for name in ("jet_width_deg", "radiative_days", "drag_days", "temperature_days"):
            if not getattr(self, name) > 0:  # each divides; also refuses NaN
                raise UserError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.stirring >= 0:
            raise UserError(f"stirring must be >= 0, got {self.stirring}")
        if self.time_step_s is not None and self.time_step_s <= 0:
            raise UserError(f"time_step_s must be positive, got {self.time_step_s}")
        try:
            np.datetime64(self.start, "s")
        except ValueError:
            raise UserError(f"start must be a date and time, got {self.start!r}") from None

    def memory_bytes(self) -> int:
        """Memory the simulation needs, roughly: six float64 Legendre tables of
        ``(T+2)² · nlat`` values dominate, then the ``nlat²`` latitude interpolation."""
        t = (2 * self.nlat - 1) // 3
        return 8 * (6 * (t + 2) ** 2 * self.nlat + 3 * self.nlat**2)

    def output_bytes(self) -> int:
        """Size of the file written, roughly: float32 fields of every written state."""
        states = int(self.days * 24 // self.output_interval_h)
        fields_per_state = len(PRESSURE_VARIABLES) * len(LEVELS) + len(SURFACE_VARIABLES)
        return 4 * 2 * self.nlat**2 * (states * fields_per_state + len(STATIC_VARIABLES))


class SimulationUnstable(UserError, FloatingPointError):
    """The simulation blew up (settings far from the defaults, e.g. a too long time step)."""


def _blobs(lat: np.ndarray, lon: np.ndarray, specs: tuple) -> list[np.ndarray]:
    """Elliptic distance fields r(lat, lon) for each spec (r = 1 on the ellipse's edge)."""
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    out = []
    for spec in specs:
        clat, clon, alat, alon = spec[:4]
        dlon = (lo - clon + 180.0) % 360.0 - 180.0
        out.append(np.sqrt(((la - clat) / alat) ** 2 + (dlon / alon) ** 2))
    return out


def land_sea_mask(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Smooth 0..1 land fraction of the Earth-like continents, ``[lat, lon]``.

    Args:
        lat: Latitudes in degrees.
        lon: Longitudes in degrees.
    """
    r = _blobs(lat, lon, _CONTINENTS)
    return np.max([1.0 / (1.0 + np.exp((ri - 1.0) / 0.12)) for ri in r], axis=0)


def orography(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Surface height [m]: Gaussian mountain ranges on land, ``[lat, lon]``.

    Args:
        lat: Latitudes in degrees.
        lon: Longitudes in degrees.
    """
    r = _blobs(lat, lon, _MOUNTAINS)
    height = sum(m[4] * np.exp(-(ri**2)) for m, ri in zip(_MOUNTAINS, r, strict=True))
    return height * land_sea_mask(lat, lon)


class ShallowWater:
    """Forced shallow-water atmosphere with an advected temperature and a surface temperature.

    Semi-implicit leapfrog (gravity-wave terms trapezoidal, so the step is limited by advection
    rather than by ~170 m/s gravity waves) with a Robert–Asselin–Williams filter; damping and
    relaxation act on the old time level; ∇⁸ hyperdiffusion is applied implicitly.

    Args:
        config: Resolution and physics.
    """

    def __init__(self, config: SimulationConfig) -> None:
        self.cfg = config
        self.grid = g = GaussianGrid(config.nlat, (2 * config.nlat - 1) // 3)
        self.phibar = GRAVITY * config.mean_depth_m
        self.f = 2.0 * OMEGA * g.mu[:, None]
        self.sinlat = g.mu[:, None]
        self.lsm = land_sea_mask(g.lat, g.lon)
        self.phis_spec = g.to_spectral(GRAVITY * orography(g.lat, g.lon))
        self.phis = g.to_grid(self.phis_spec)
        interval_s = config.output_interval_h * 3600
        dt = config.time_step_s or 0.9 * g.radius / (100.0 * g.truncation)  # advection CFL
        steps_per_output = int(np.ceil(interval_s / dt))
        while interval_s % steps_per_output:  # whole seconds per step keep the clock exact
            steps_per_output += 1
        self.steps_per_output = steps_per_output
        self.dt = interval_s // steps_per_output
        n = np.arange(g.truncation + 1)
        scale = (n * (n + 1) / (g.truncation * (g.truncation + 1))) ** 4
        self.hyperdiffusion = np.exp(-2 * self.dt / 7200.0 * scale)[None, :]  # 2 h at T
        self.tau_rad = config.radiative_days * 86400.0
        self.tau_drag = config.drag_days * 86400.0
        self.tau_temp = config.temperature_days * 86400.0
        self.tau_surface = 86400.0 * (2.0 - 1.5 * self.lsm)  # 2 days over sea, 12 h over land
        # Stirring: red noise in the vorticity equation at synoptic scales in mid-latitudes,
        # standing in for the baroclinic eddies a single layer cannot make (Vallis et al. 2004).
        self.rng = np.random.default_rng(config.seed)
        self.stir_band = g.mask & (n[None, :] >= 8) & (n[None, :] <= 14)
        lat = np.degrees(np.arcsin(self.sinlat))
        self.stir_mask = np.exp(-(((np.abs(lat) - 45.0) / 15.0) ** 2))
        self.stir_memory = np.exp(-interval_s / (2.0 * 86400.0))  # 2-day decorrelation
        self.stirring = np.zeros((g.truncation + 1, g.truncation + 1), dtype=complex)

    # --- forcing ------------------------------------------------------------------------
    def forcing(self, when: np.datetime64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Equilibrium free-surface geopotential, 850 hPa temperature and surface heating.

        Args:
            when: The time (UTC).
        """
        g, c = self.grid, self.cfg
        q = toa_insolation(np.array([when]), g.lat, g.lon)[0]
        qbar = daily_mean_insolation(np.array([when]), g.lat)[0][:, None]
        season = np.sin(np.degrees(float(declination(np.array([when]))[0])) / 23.44 * np.pi / 2)
        # Jets sit further poleward and are weaker in each hemisphere's summer.
        summer = np.sign(self.sinlat) * season
        jet_lat = 45.0 + 7.0 * summer
        strength = c.jet_height_m * (1.0 - 0.35 * summer)
        lat = np.abs(np.degrees(np.arcsin(self.sinlat)))
        merid = -strength * np.tanh((lat - jet_lat) / c.jet_width_deg)
        tide = c.tide_height_m * (q - qbar) / SOLAR_CONSTANT
        phi_eq = self.phibar + GRAVITY * (merid + tide)
        t_eq = (
            T_REF
            - 40.0 * (self.sinlat**2 - 1.0 / 3.0)
            + (10.0 + 14.0 * self.lsm) * summer * np.abs(self.sinlat)
            - 3.0e-3 * self.phis / GRAVITY
        )
        heating = (6.0e-4 * self.lsm + 6.0e-5) * (q - qbar) / SOLAR_CONSTANT
        return phi_eq, t_eq, heating

    def stir(self) -> None:
        """Advance the red-noise stirring by one output interval."""
        g = self.grid
        shape = self.stirring.shape
        noise = (self.rng.normal(size=shape) + 1j * self.rng.normal(size=shape)) * self.stir_band
        noise[0] = noise[0].real
        local = g.to_spectral(g.to_grid(noise) * self.stir_mask)
        amplitude = self.cfg.stirring * np.sqrt(1.0 - self.stir_memory**2)
        self.stirring = self.stir_memory * self.stirring + amplitude * local

    # --- dynamics -----------------------------------------------------------------------
    def initial_state(self, when: np.datetime64) -> list[np.ndarray]:
        """A state at rest in the forcing's equilibrium.

        Args:
            when: The time (UTC).

        Returns:
            Spectral vorticity, divergence, geopotential and temperature, and the surface
            temperature on the grid.
        """
        g = self.grid
        phi_eq, t_eq, _ = self.forcing(when)
        zeta = np.zeros((g.truncation + 1, g.truncation + 1), dtype=complex)
        phi = g.to_spectral(phi_eq - self.phibar) - self.phis_spec
        temp = g.to_spectral(t_eq - T_REF)
        return [zeta, np.zeros_like(zeta), phi, temp, t_eq + 9.75]

    def _tendencies(
        self, now: list[np.ndarray], old: list[np.ndarray], when: np.datetime64
    ) -> list[np.ndarray]:
        """Explicit tendencies without the linear gravity-wave terms (those are implicit)."""
        g = self.grid
        zeta, div, phi, temp, _ = now
        scal, u_cos, v_cos = g.to_grid_with_uv(
            np.stack([zeta, phi, temp, div]), zeta * g.inverse_laplacian, div * g.inverse_laplacian
        )
        zeta_g, phi_g, temp_g, div_g = scal
        eta = zeta_g + self.f
        kinetic = (u_cos**2 + v_cos**2) / (2.0 * g.coslat2[:, None])
        phi_eq, t_eq, heating = self.forcing(when)
        spec, divs, curls = g.analyse(
            np.stack([kinetic, phi_eq, t_eq - T_REF, temp_g * div_g]),
            np.stack([eta * u_cos, phi_g * u_cos, temp_g * u_cos]),
            np.stack([eta * v_cos, phi_g * v_cos, temp_g * v_cos]),
        )
        kin_s, phi_eq_s, t_eq_s, t_div_s = spec
        zeta_o, div_o, phi_o, temp_o, ts_o = old
        lap = g.laplacian[None, :]
        free_eq = phi_eq_s - self.phibar_spec
        dzeta = -divs[0] - zeta_o / self.tau_drag + self.stirring
        ddiv = curls[0] - lap * (self.phis_spec + kin_s) - div_o / self.tau_drag
        dphi = -divs[1] + (free_eq - phi_o - self.phis_spec) / self.tau_rad
        dtemp = -divs[2] + t_div_s + (t_eq_s - temp_o) / self.tau_temp
        surface_eq = T_REF + temp_g + 9.75 - 6.5e-3 * self.phis / GRAVITY
        dts = (surface_eq - ts_o) / self.tau_surface + heating
        return [dzeta, ddiv, dphi, dtemp, dts]

    @property
    def phibar_spec(self) -> np.ndarray:
        spec = np.zeros_like(self.phis_spec)
        spec[0, 0] = self.phibar / self.grid.p[0, 0, 0]  # a constant in the (0, 0) mode
        return spec

    def step(
        self, old: list[np.ndarray], now: list[np.ndarray], when: np.datetime64
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """One semi-implicit leapfrog step.

        Args:
            old: The state one step back.
            now: The current state.
            when: The current time (UTC).

        Returns:
            The filtered current state and the new one.
        """
        g, dt = self.grid, self.dt
        tend = self._tendencies(now, old, when)
        lap = g.laplacian[None, :]
        zeta_o, div_o, phi_o, temp_o, ts_o = old
        a = div_o + 2 * dt * tend[1] - dt * lap * phi_o
        b = phi_o + 2 * dt * tend[2] - dt * self.phibar * div_o
        div_n = (a - dt * lap * b) / (1.0 - dt**2 * self.phibar * lap)
        phi_n = b - dt * self.phibar * div_n
        new = [
            zeta_o + 2 * dt * tend[0],
            div_n,
            phi_n,
            temp_o + 2 * dt * tend[3],
            ts_o + 2 * dt * tend[4],
        ]
        for i in range(4):
            new[i] = new[i] * self.hyperdiffusion
        # Robert–Asselin–Williams filter (nu = 0.2, alpha = 0.53) against the leapfrog mode.
        nu, alpha = 0.2, 0.53
        filtered = []
        for i in range(5):
            d = 0.5 * nu * (old[i] - 2.0 * now[i] + new[i])
            filtered.append(now[i] + alpha * d)
            new[i] = new[i] - (1.0 - alpha) * d
        return filtered, new

    # --- diagnostics --------------------------------------------------------------------
    def diagnose(self, state: list[np.ndarray]) -> dict[str, np.ndarray]:
        """ERA5-like variables on the Gaussian grid, shape [nlat, nlon] (levels stacked).

        Args:
            state: A state of the model.
        """
        g = self.grid
        zeta, div, phi, temp, ts = state
        (phi_g, temp_g), u_cos, v_cos = g.to_grid_with_uv(
            np.stack([phi, temp]), zeta * g.inverse_laplacian, div * g.inverse_laplacian
        )
        coslat = np.sqrt(g.coslat2)[:, None]
        u, v = u_cos / coslat, v_cos / coslat
        height = (self.phibar + phi_g + self.phis) / GRAVITY - self.cfg.mean_depth_m
        t850 = T_REF + temp_g
        z850 = GRAVITY * (1450.0 + 0.5 * height)
        z500 = z850 + R_DRY * (t850 - 12.5) * np.log(850.0 / 500.0)
        t500 = t850 - 6.5e-3 * (z500 - z850) / GRAVITY
        angle = np.radians(20.0) * np.sign(self.sinlat)
        reduce = 0.55 - 0.15 * self.lsm
        u10 = reduce * (u * np.cos(angle) - v * np.sin(angle))
        v10 = reduce * (u * np.sin(angle) + v * np.cos(angle))
        msl = 85000.0 * np.exp(z850 / (R_DRY * (t850 + 4.875)))
        return {
            "z": np.stack([z500, z850]),
            "t": np.stack([t500, t850]),
            "u": np.stack([u, 0.7 * u]),
            "v": np.stack([v, 0.7 * v]),
            "t2m": ts,
            "u10": u10,
            "v10": v10,
            "msl": msl,
        }


def regular_latitudes(nlat: int) -> np.ndarray:
    """Cell-centre latitudes of a regular grid without poles, north to south (like WB2 64×32).

    Args:
        nlat: Rows.
    """
    return 90.0 - (np.arange(nlat) + 0.5) * 180.0 / nlat


def _interpolation_matrix(src_desc: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Linear interpolation in latitude from descending ``src`` points to ``dst`` points."""
    src = src_desc[::-1]
    eye = np.eye(src.size)
    rows = [np.interp(dst, src, eye[:, k]) for k in range(src.size)]
    return np.stack(rows, axis=1)[:, ::-1]


def _write_header(nc: object, cfg: SimulationConfig, lat: np.ndarray, lon: np.ndarray) -> None:
    nc.Conventions = "CF-1.8"
    nc.title = "weathermixer synthetic ERA5-like atmosphere"
    nc.source = (
        "forced shallow-water model on the sphere (spectral, T"
        f"{(2 * cfg.nlat - 1) // 3}) with orography, land-sea contrast, day-night and "
        "seasonal insolation forcing; see weathermixer.simulate"
    )
    nc.history = f"written by weathermixer generate, seed {cfg.seed}"
    nc.createDimension("time", None)
    nc.createDimension("level", len(LEVELS))
    nc.createDimension("latitude", lat.size)
    nc.createDimension("longitude", lon.size)
    var = nc.createVariable("time", "f8", ("time",))
    var.units = "hours since 1970-01-01 00:00:00"
    var.calendar = "proleptic_gregorian"
    var.standard_name = var.long_name = "time"
    var = nc.createVariable("level", "i4", ("level",))
    var[:] = np.asarray(LEVELS)
    var.units, var.long_name, var.positive = "millibars", "pressure_level", "down"
    var = nc.createVariable("latitude", "f4", ("latitude",))
    var[:] = lat
    var.units, var.standard_name, var.long_name = "degrees_north", "latitude", "latitude"
    var = nc.createVariable("longitude", "f4", ("longitude",))
    var[:] = lon
    var.units, var.standard_name, var.long_name = "degrees_east", "longitude", "longitude"


def _create_variable(nc: object, name: str, dims: tuple[str, ...], chunks: list[int]) -> object:
    var = nc.createVariable(name, "f4", dims, chunksizes=chunks)
    standard, units, long = CF_ATTRS[name]
    var.standard_name, var.units, var.long_name = standard, units, long
    return var


def _require_disk(path: Path, nbytes: int) -> None:
    """Refuse a file larger than the free space of its disk before simulating it."""
    folder = path.absolute().parent
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if nbytes > free:
        raise UserError(
            f"{path} would take about {nbytes / 2**30:.1f} GiB, but its disk has "
            f"{free / 2**30:.1f} GiB free; simulate fewer days or a coarser grid"
        )


def generate(
    path: str | os.PathLike[str],
    config: SimulationConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Simulate and write a netCDF file; the file appears only when complete.

    Args:
        path: The netCDF file to write (its folder is created).
        config: Resolution, length and physics (default: ``SimulationConfig()``).
        progress: Called with a line of progress ten times during the run.

    Returns:
        ``path``.

    Raises:
        UserError: The simulation would not fit in this machine's memory or the file not on
            its disk.
        SimulationUnstable: The simulation became unstable.
    """
    import netCDF4

    config = config or SimulationConfig()
    grid = f"a {config.nlat} x {2 * config.nlat} simulation"
    require_memory(config.memory_bytes(), grid)
    path = Path(path)
    _require_disk(path, config.output_bytes())
    model = ShallowWater(config)
    g = model.grid
    lat_out = regular_latitudes(config.nlat)
    lon_out = g.lon
    interp = _interpolation_matrix(g.lat, lat_out)
    start = np.datetime64(config.start, "s")
    spin = round(config.spinup_days * 86400.0 / model.dt)
    n_out = int(config.days * 24 // config.output_interval_h)
    when = start - np.timedelta64(int(spin * model.dt), "s")
    old = now = model.initial_state(when)
    step_s = np.timedelta64(int(model.dt), "s")
    began = time.perf_counter()

    def advance(steps: int) -> None:
        nonlocal old, now, when
        with np.errstate(over="ignore", invalid="ignore"):  # a blow-up is reported below
            for _ in range(steps):
                if model.steps_per_output and _ % model.steps_per_output == 0:
                    model.stir()
                old, now = model.step(old, now, when)
                when = when + step_s

    advance(spin)
    nlat, nlon = lat_out.size, lon_out.size
    with atomic_path(path) as tmp, netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
        _write_header(nc, config, lat_out, lon_out)
        out = {}
        for name in PRESSURE_VARIABLES:
            dims = ("time", "level", "latitude", "longitude")
            out[name] = _create_variable(nc, name, dims, [1, len(LEVELS), nlat, nlon])
        for name in SURFACE_VARIABLES:
            dims = ("time", "latitude", "longitude")
            out[name] = _create_variable(nc, name, dims, [1, nlat, nlon])
        static = {
            "geopotential_at_surface": interp @ model.phis,
            "land_sea_mask": land_sea_mask(lat_out, lon_out),
        }
        for name, value in static.items():
            var = nc.createVariable(name, "f4", ("latitude", "longitude"))
            standard, units, long = CF_ATTRS[name]
            var.standard_name, var.units, var.long_name = standard, units, long
            var[:] = value
        times = nc.variables["time"]
        for k in range(n_out):
            fields = model.diagnose(now)
            times[k] = (when - np.datetime64("1970-01-01T00:00", "s")).astype(float) / 3600.0
            for name, value in fields.items():
                out[name][k] = np.matmul(interp, value)
            advance(model.steps_per_output)
            if not all(np.isfinite(x).all() for x in now):
                raise SimulationUnstable(
                    f"the simulation became unstable at {when}; set a shorter time_step_s or "
                    "settings closer to the defaults"
                )
            if progress and (k + 1) % max(1, n_out // 10) == 0:
                elapsed = time.perf_counter() - began
                progress(f"{k + 1}/{n_out} states ({elapsed:.1f} s)")
    return path
