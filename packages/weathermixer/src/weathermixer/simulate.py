"""The embedded default data: a forced two-layer baroclinic atmosphere on the sphere, written
like ERA5.

Why this model: weather is made by baroclinic instability, which needs vertical structure; a
two-layer quasi-geostrophic (QG) model is the smallest model that has it (Phillips 1956), and it
costs about a minute per simulated year at 32 × 64 on one core.

- Dynamics: two layers of equal depth, the upper one standing for 500 hPa, the lower one for
  850 hPa. Each conserves its potential vorticity (PV) along its own flow, ``∂qₖ/∂t +
  ∇·(vₖ qₖ) = Fₖ``, with ``q₁ = ∇²ψ₁ + f − (ψ₁ − ψ₂)/L_d²`` and ``q₂ = ∇²ψ₂ + f + (ψ₁ −
  ψ₂)/L_d² + f·h_s/H`` (stream functions ψₖ, deformation radius L_d, orography h_s). The
  layers are coupled only through the interface, whose height is ∝ ψ₁ − ψ₂: the temperature
  of the 850–500 hPa layer.
- Forcing: the interface relaxes toward a radiative equilibrium (a meridional temperature
  difference, warmer summer hemisphere and summer continents), which keeps a thermal-wind
  shear between the layers; it is baroclinically unstable and sheds travelling cyclones and
  anticyclones. Linear (Ekman) drag acts on the lower layer, ∇⁸ hyperdiffusion on both.
- Surface: a surface temperature advected by the lower layer's wind, relaxed toward the air
  above it (12 h over land, 2 days over sea) and heated by the day–night cycle of insolation.
- Numerics: spectral transform on a Gaussian grid with triangular truncation, leapfrog with a
  Robert–Asselin–Williams filter, damping on the old level, implicit hyperdiffusion. The
  global mean of each layer's PV (its mass) is unchanged by every term.

Output variables are diagnosed with ERA5 names and CF attributes: geopotential ``z`` at 500 hPa
from the upper layer and at 850 hPa from the lower one (``Φ = Φ̄ + f_d ψ``, with the Coriolis
parameter of mid-latitudes tapered to zero at the equator), the layer temperature from their
thickness (hypsometric: ``T̄ = (Φ₅₀₀ − Φ₈₅₀) / (R ln(850/500))``), split into ``t`` at 500 and
850 hPa by the lapse rate and the boundary layer's departure from it, winds ``u``, ``v`` of each
layer, and ``t2m`` (surface temperature), ``u10``, ``v10`` (lower-layer wind, reduced and turned
across the isobars), ``msl`` (hydrostatic reduction of z850) at the surface, plus
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
F0 = 2.0 * OMEGA * math.sin(math.radians(45.0))  # Coriolis parameter of the mid-latitudes
LEVELS = (500, 850)
THICKNESS_PER_K = R_DRY * math.log(850.0 / 500.0)  # Φ500 − Φ850 per kelvin of layer temperature
Z500_MEAN_M, Z850_MEAN_M = 5620.0, 1480.0  # global means of the geopotential heights
LAPSE_RATE = 6.5e-3  # K/m
HYPERDIFFUSION_H = 24.0  # e-folding time of ∇⁸ hyperdiffusion at the truncation
BOUNDARY_LAYER_SHARE = 0.5  # of the surface's departure from the free air seen at 850 hPa
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
        seed: Seed of the small random perturbation the eddies grow from.
        deformation_radius_km: Rossby radius of deformation L_d of the two layers (sets the
            size of the cyclones).
        equator_pole_k: Equator-to-pole difference of the radiative-equilibrium temperature of
            the 850-500 hPa layer (sets the jets' shear).
        radiative_days: Relaxation time of the layer temperature.
        drag_days: Time scale of the linear drag on the lower layer.
        orography_depth_m: Depth H of the topographic PV term f·h_s/H (smaller: stronger
            stationary waves).
        time_step_s: Model time step; none: from the advection limit of the resolution.
    """

    nlat: int = 32
    days: float = 365.0
    spinup_days: float = 60.0
    output_interval_h: int = 6
    start: str = "2000-01-01T00:00"
    seed: int = 0
    deformation_radius_km: float = 400.0
    equator_pole_k: float = 55.0
    radiative_days: float = 10.0
    drag_days: float = 6.0
    orography_depth_m: float = 40000.0
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
        for name in ("deformation_radius_km", "radiative_days", "drag_days", "orography_depth_m"):
            if not getattr(self, name) > 0:  # each divides; also refuses NaN
                raise UserError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.equator_pole_k >= 0:
            raise UserError(f"equator_pole_k must be >= 0, got {self.equator_pole_k}")
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


class TwoLayerAtmosphere:
    """Forced two-layer quasi-geostrophic atmosphere with a surface temperature.

    The state is ``[q, ts]``: the PV anomalies ``q − f − b`` of both layers (spectral,
    ``[2, T+1, T+1]``, upper layer first; ``b`` the topographic term of the lower layer) and
    the surface temperature on the Gaussian grid.

    Args:
        config: Resolution and physics.
    """

    def __init__(self, config: SimulationConfig) -> None:
        self.cfg = config
        self.grid = g = GaussianGrid(config.nlat, (2 * config.nlat - 1) // 3)
        self.mu = g.mu[:, None]
        self.coslat = np.sqrt(g.coslat2)[:, None]
        self.f = 2.0 * OMEGA * self.mu
        # Coriolis parameter of the geostrophic balance Φ' = f_d ψ: mid-latitude value,
        # tapered to zero at the equator (where QG balance does not hold).
        self.f_balance = F0 * np.tanh(self.mu / math.sin(math.radians(15.0)))
        self.lsm = land_sea_mask(g.lat, g.lon)
        self.height = orography(g.lat, g.lon)
        height_spec = g.to_spectral(self.height)
        self.height = g.to_grid(height_spec)  # as the spectral model sees it
        self.stretch = 1.0 / (config.deformation_radius_km * 1e3) ** 2  # F = 1 / L_d²
        upper = np.broadcast_to(self.f, self.height.shape)
        lower = self.f * (1.0 + self.height / config.orography_depth_m)
        self.background = np.stack([upper, lower])  # f in both layers, f·h_s/H in the lower
        interval_s = config.output_interval_h * 3600
        dt = config.time_step_s or 0.9 * g.radius / (100.0 * g.truncation)  # advection CFL
        steps_per_output = int(np.ceil(interval_s / dt))
        while interval_s % steps_per_output:  # whole seconds per step keep the clock exact
            steps_per_output += 1
        self.steps_per_output = steps_per_output
        self.dt = interval_s // steps_per_output
        n = np.arange(g.truncation + 1)
        scale = (n * (n + 1) / (g.truncation * (g.truncation + 1))) ** 4
        damping_s = HYPERDIFFUSION_H * 3600.0  # e-folding time at the truncation
        self.hyperdiffusion = np.exp(-2 * self.dt / damping_s * scale)[None, :]
        self.inverse_barotropic = g.inverse_laplacian[None, :]
        self.inverse_baroclinic = 1.0 / (g.laplacian[None, :] - 2.0 * self.stretch)
        self.tau_rad = config.radiative_days * 86400.0
        self.tau_drag = config.drag_days * 86400.0
        self.tau_surface = 86400.0 * (2.0 - 1.5 * self.lsm)  # 2 days over sea, 12 h over land
        self.rng = np.random.default_rng(config.seed)
        self._shear_at: np.datetime64 | None = None
        self._shear_eq = np.zeros_like(height_spec)

    # --- forcing ------------------------------------------------------------------------
    def equilibrium_temperature(self, when: np.datetime64) -> np.ndarray:
        """Radiative-equilibrium temperature of the 850–500 hPa layer minus its equatorial
        value, ``[nlat, nlon]``: colder poles, a warmer summer hemisphere, warm summer
        continents.

        Args:
            when: The time (UTC).
        """
        season = np.sin(np.degrees(float(declination(np.array([when]))[0])) / 23.44 * np.pi / 2)
        mu, c = self.mu, self.cfg
        return -c.equator_pole_k * mu**2 + (8.0 + 12.0 * self.lsm) * season * mu * np.abs(mu)

    def shear_equilibrium(self, when: np.datetime64) -> np.ndarray:
        """Spectral ψ₁ − ψ₂ of radiative equilibrium (global mean zero: no mass moves between
        the layers); recomputed every six hours.

        Args:
            when: The time (UTC).
        """
        if self._shear_at is None or abs(when - self._shear_at) >= np.timedelta64(6, "h"):
            g = self.grid
            temp = self.equilibrium_temperature(when)
            # f_d vanishes like μ at the equator where temp vanishes like μ²
            ratio = np.where(np.abs(self.mu) > 1e-12, temp / self.f_balance, 0.0)
            spec = g.to_spectral(THICKNESS_PER_K * ratio)
            spec[0, 0] = 0.0
            self._shear_eq, self._shear_at = spec, when
        return self._shear_eq

    def surface_heating(self, when: np.datetime64) -> np.ndarray:
        """Day–night heating of the surface [K/s]: strong over land, weak over sea.

        Args:
            when: The time (UTC).
        """
        g = self.grid
        q = toa_insolation(np.array([when]), g.lat, g.lon)[0]
        qbar = daily_mean_insolation(np.array([when]), g.lat)[0][:, None]
        return (6.0e-4 * self.lsm + 6.0e-5) * (q - qbar) / SOLAR_CONSTANT

    # --- dynamics -----------------------------------------------------------------------
    def stream_functions(self, q: np.ndarray) -> np.ndarray:
        """ψ of both layers from their PV anomalies (barotropic and baroclinic modes).

        Args:
            q: Spectral PV anomalies ``[2, T+1, T+1]``.
        """
        psi_bt = 0.5 * (q[0] + q[1]) * self.inverse_barotropic
        psi_bc = 0.5 * (q[0] - q[1]) * self.inverse_baroclinic
        return np.stack([psi_bt + psi_bc, psi_bt - psi_bc])

    def initial_state(self, when: np.datetime64, amplitude: float = 1e-3) -> list[np.ndarray]:
        """Radiative equilibrium at rest in the lower layer, with a small random perturbation
        of the interface (of the seed) from which the eddies grow.

        Args:
            when: The time (UTC).
            amplitude: Size of the perturbation relative to the equilibrium shear.

        Returns:
            Spectral PV anomalies of both layers and the surface temperature on the grid.
        """
        g = self.grid
        shear = self.shear_equilibrium(when)
        shape = shear.shape
        noise = self.rng.normal(size=shape) + 1j * self.rng.normal(size=shape)
        noise[0] = noise[0].real
        noise = noise * g.mask
        noise[0, 0] = 0.0
        noise *= amplitude * np.abs(shear).max() / np.abs(noise).max()
        psi = np.stack([shear + noise, np.zeros_like(shear)])
        lap = g.laplacian[None, :]
        interface = self.stretch * (psi[0] - psi[1])
        q = np.stack([lap * psi[0] - interface, lap * psi[1] + interface])
        t_air = self.diagnose_grid(q)["t850_free"]
        ts = t_air + LAPSE_RATE * (Z850_MEAN_M - self.height)
        return [q, ts]

    def _winds(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Grid ψ, q and U = u cos φ, V = v cos φ of both layers, one inverse FFT."""
        g = self.grid
        psi = self.stream_functions(q)
        scalars, u_cos, v_cos = g.to_grid_with_rotational_uv(np.concatenate([psi, q]), psi)
        return scalars[:2], scalars[2:], u_cos, v_cos

    def step(
        self, old: list[np.ndarray], now: list[np.ndarray], when: np.datetime64
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """One leapfrog step; damping and relaxation act on the old level.

        Args:
            old: The state one step back.
            now: The current state.
            when: The current time (UTC).

        Returns:
            The filtered current state and the new one.
        """
        g, dt = self.grid, self.dt
        q_now, ts_now = now
        q_old, ts_old = old
        psi_g, q_g, u_cos, v_cos = self._winds(q_now)
        full = q_g + self.background
        _, divs, _ = g.analyse(
            np.zeros((0, *ts_now.shape)),
            np.concatenate([full * u_cos, ts_now[None] * u_cos[1:]]),
            np.concatenate([full * v_cos, ts_now[None] * v_cos[1:]]),
        )
        psi_old = self.stream_functions(q_old)
        relax = self.stretch * (psi_old[0] - psi_old[1] - self.shear_equilibrium(when))
        relax /= self.tau_rad
        drag = g.laplacian[None, :] * psi_old[1] / self.tau_drag
        dq = -divs[:2] + np.stack([relax, -relax - drag])
        z500, z850 = self._geopotentials(psi_g)
        t850 = _free_temperatures(z500, z850)[1]
        surface_eq = t850 + LAPSE_RATE * (z850 / GRAVITY - self.height)
        dts_adv = g.to_grid(-divs[2])
        dts = dts_adv + (surface_eq - ts_old) / self.tau_surface + self.surface_heating(when)
        new = [(q_old + 2 * dt * dq) * self.hyperdiffusion, ts_old + 2 * dt * dts]
        # Robert–Asselin–Williams filter (nu = 0.2, alpha = 0.53) against the leapfrog mode.
        nu, alpha = 0.2, 0.53
        filtered = []
        for i in range(2):
            d = 0.5 * nu * (old[i] - 2.0 * now[i] + new[i])
            filtered.append(now[i] + alpha * d)
            new[i] = new[i] - (1.0 - alpha) * d
        return filtered, new

    # --- diagnostics --------------------------------------------------------------------
    def _geopotentials(self, psi_grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Φ at 500 and 850 hPa from the grid stream functions of the two layers."""
        phi = self.f_balance * psi_grid
        return GRAVITY * Z500_MEAN_M + phi[0], GRAVITY * Z850_MEAN_M + phi[1]

    def energy(self, q: np.ndarray) -> float:
        """Kinetic plus available potential energy per unit area and layer depth [m²/s²]:
        ½ mean(|∇ψ₁|² + |∇ψ₂|²) + ½ F mean((ψ₁ − ψ₂)²).

        Args:
            q: Spectral PV anomalies of both layers.
        """
        g = self.grid
        psi = self.stream_functions(q)
        gradient = np.sqrt(-g.laplacian[None, :])  # |∇ψ|² has the spectrum n(n+1)/a² |ψ|²
        kinetic = sum(g.mean_square(gradient * p) for p in psi)
        return 0.5 * kinetic + 0.5 * self.stretch * g.mean_square(psi[0] - psi[1])

    def diagnose_grid(self, q: np.ndarray) -> dict[str, np.ndarray]:
        """Geopotentials, free-atmosphere temperatures and winds of both layers on the grid.

        Args:
            q: Spectral PV anomalies of both layers.
        """
        psi_g, _, u_cos, v_cos = self._winds(q)
        z500, z850 = self._geopotentials(psi_g)
        t500, t850 = _free_temperatures(z500, z850)
        return {
            "z500": z500,
            "z850": z850,
            "t500_free": t500,
            "t850_free": t850,
            "u": u_cos / self.coslat,
            "v": v_cos / self.coslat,
        }

    def diagnose(self, state: list[np.ndarray]) -> dict[str, np.ndarray]:
        """ERA5-like variables on the Gaussian grid, shape [nlat, nlon] (levels stacked).

        Args:
            state: A state of the model.
        """
        q, ts = state
        d = self.diagnose_grid(q)
        z850 = d["z850"]
        # Departure of the surface from the free atmosphere above it (day-night heating,
        # land-sea contrast, lag): the boundary layer shifts t850 and, keeping the layer's
        # mean temperature (its thickness), t500 the other way.
        surface_free = d["t850_free"] + LAPSE_RATE * (z850 / GRAVITY - self.height)
        boundary = BOUNDARY_LAYER_SHARE * (ts - surface_free)
        t850 = d["t850_free"] + boundary
        t500 = d["t500_free"] - boundary
        u, v = d["u"], d["v"]
        angle = np.radians(20.0) * np.sign(self.mu)
        reduce = 0.7 - 0.2 * self.lsm
        u10 = reduce * (u[1] * np.cos(angle) - v[1] * np.sin(angle))
        v10 = reduce * (u[1] * np.sin(angle) + v[1] * np.cos(angle))
        mean_t = t850 + 0.5 * LAPSE_RATE * z850 / GRAVITY  # of the 1000-850 hPa layer
        msl = 85000.0 * np.exp(z850 / (R_DRY * mean_t))
        return {
            "z": np.stack([d["z500"], z850]),
            "t": np.stack([t500, t850]),
            "u": u,
            "v": v,
            "t2m": ts,
            "u10": u10,
            "v10": v10,
            "msl": msl,
        }


def _free_temperatures(z500: np.ndarray, z850: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Temperatures at 500 and 850 hPa of the free atmosphere: the layer temperature from the
    thickness (hypsometric), ± half the lapse rate times it."""
    layer = (z500 - z850) / THICKNESS_PER_K
    half = 0.5 * LAPSE_RATE * (z500 - z850) / GRAVITY
    return layer - half, layer + half


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
        "forced two-layer quasi-geostrophic model on the sphere (spectral, T"
        f"{(2 * cfg.nlat - 1) // 3}) with orography, land-sea contrast, day-night and "
        "seasonal forcing; see weathermixer.simulate"
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
    model = TwoLayerAtmosphere(config)
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
            "geopotential_at_surface": interp @ (GRAVITY * model.height),
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
