"""Photon physics used by the simulator: directions, Compton scatter, ray–cylinder geometry.

Everything is vectorised over photons: arrays of shape (n,) or (n, 3).
"""

from __future__ import annotations

import numpy as np

ELECTRON_MASS_KEV = 510.99895
CLASSICAL_ELECTRON_RADIUS_CM = 2.8179403262e-13
WATER_ELECTRONS_PER_CM3 = 3.3428e23  # 10 electrons per molecule, 1 g/cm³, 18.015 g/mol


def isotropic_directions(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit vectors uniform on the sphere, shape (n, 3).

    Args:
        rng: The simulation's random numbers.
        n: How many.
    """
    cos_theta = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    return np.stack([sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta], axis=1)


def rotate(direction: np.ndarray, cos_theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Turn each unit vector by polar angle θ (given as cos θ) about itself, at azimuth φ.

    Args:
        direction: Unit vectors, shape (n, 3).
        cos_theta: cos θ per vector.
        phi: φ per vector, in radians.
    """
    ux, uy, uz = direction.T
    sin_theta = np.sqrt(np.clip(1.0 - cos_theta**2, 0.0, None))
    cos_phi, sin_phi = np.cos(phi), np.sin(phi)
    perp = np.sqrt(np.clip(1.0 - uz**2, 0.0, None))
    near_axis = perp < 1e-8
    safe = np.where(near_axis, 1.0, perp)
    out = np.empty_like(direction)
    out[:, 0] = sin_theta * (ux * uz * cos_phi - uy * sin_phi) / safe + ux * cos_theta
    out[:, 1] = sin_theta * (uy * uz * cos_phi + ux * sin_phi) / safe + uy * cos_theta
    out[:, 2] = -sin_theta * cos_phi * perp + uz * cos_theta
    if near_axis.any():
        sign = np.sign(uz[near_axis])
        out[near_axis, 0] = sin_theta[near_axis] * cos_phi[near_axis]
        out[near_axis, 1] = sin_theta[near_axis] * sin_phi[near_axis]
        out[near_axis, 2] = sign * cos_theta[near_axis]
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def acollinear_partner(
    rng: np.random.Generator, direction: np.ndarray, fwhm_deg: float
) -> np.ndarray:
    """Direction of the second annihilation photon: opposite to ``direction``, blurred.

    The deviation from 180° is a two-dimensional Gaussian with the given FWHM per axis
    (about 0.5° in water), so its magnitude follows a Rayleigh law.

    Args:
        rng: The simulation's random numbers.
        direction: Unit vectors of the first photons, shape (n, 3).
        fwhm_deg: FWHM of the deviation per axis, in degrees.
    """
    n = len(direction)
    sigma = np.deg2rad(fwhm_deg) / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    deviation = sigma * np.sqrt(-2.0 * np.log1p(-rng.uniform(0.0, 1.0, n)))
    return rotate(-direction, np.cos(deviation), rng.uniform(0.0, 2.0 * np.pi, n))


def klein_nishina_cross_section_cm2(energy_kev: np.ndarray) -> np.ndarray:
    """Total Compton cross-section per free electron (Klein–Nishina), in cm².

    Args:
        energy_kev: Photon energies in keV.
    """
    k = np.asarray(energy_kev, dtype=float) / ELECTRON_MASS_KEV
    log_term = np.log1p(2.0 * k)
    term = (1.0 + k) / k**2 * (2.0 * (1.0 + k) / (1.0 + 2.0 * k) - log_term / k)
    term += log_term / (2.0 * k) - (1.0 + 3.0 * k) / (1.0 + 2.0 * k) ** 2
    return 2.0 * np.pi * CLASSICAL_ELECTRON_RADIUS_CM**2 * term


def water_attenuation_per_mm(energy_kev: np.ndarray) -> np.ndarray:
    """Linear Compton attenuation coefficient of water (≈ 0.0096 /mm at 511 keV).

    Photoelectric absorption and Rayleigh scatter are below 1 % of it above 100 keV and
    are left out.

    Args:
        energy_kev: Photon energies in keV.
    """
    return WATER_ELECTRONS_PER_CM3 * klein_nishina_cross_section_cm2(energy_kev) / 10.0


def sample_klein_nishina(
    rng: np.random.Generator, energy_kev: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Scattering angle (cos θ) and scattered photon energy for Compton scatter.

    Rejection sampling of the Klein–Nishina differential cross-section
    dσ/dΩ ∝ P²(P + 1/P − sin²θ), P = E'/E, whose maximum 2 is at θ = 0.

    Args:
        rng: The simulation's random numbers.
        energy_kev: Energies of the scattering photons in keV.
    """
    k = np.asarray(energy_kev, dtype=float) / ELECTRON_MASS_KEV
    cos_theta = np.empty_like(k)
    todo = np.arange(len(k))
    while todo.size:
        trial = rng.uniform(-1.0, 1.0, todo.size)
        ratio = 1.0 / (1.0 + k[todo] * (1.0 - trial))
        density = ratio**2 * (ratio + 1.0 / ratio - (1.0 - trial**2)) / 2.0
        accept = rng.uniform(0.0, 1.0, todo.size) < density
        cos_theta[todo[accept]] = trial[accept]
        todo = todo[~accept]
    scattered_energy = energy_kev / (1.0 + k * (1.0 - cos_theta))
    return cos_theta, scattered_energy


def exit_distance_infinite_cylinder(
    origin: np.ndarray, direction: np.ndarray, radius: float
) -> np.ndarray:
    """Distance along each ray from an origin inside the cylinder to its surface.

    Rays parallel to the axis never reach the surface: their distance is ``inf``.

    Args:
        origin: Start points, shape (n, 3).
        direction: Unit vectors, shape (n, 3).
        radius: Radius of the cylinder around the z axis.
    """
    x, y = origin[:, 0], origin[:, 1]
    ux, uy = direction[:, 0], direction[:, 1]
    a = ux**2 + uy**2
    b = x * ux + y * uy
    c = x**2 + y**2 - radius**2
    disc = np.clip(b**2 - a * c, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (-b + np.sqrt(disc)) / a
    return np.where(a > 1e-12, t, np.inf)


def finite_cylinder_interval(
    origin: np.ndarray,
    direction: np.ndarray,
    radius: float,
    z_min: float,
    z_max: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit distances (≥ 0) of rays through a closed cylinder along z.

    Rays that miss get entry == exit, so the path length inside is zero.

    Args:
        origin: Start points relative to the cylinder's centre, shape (n, 3).
        direction: Unit vectors, shape (n, 3).
        radius: Radius of the cylinder around the z axis.
        z_min: Lower end of the cylinder along z.
        z_max: Upper end of the cylinder along z.
    """
    n = len(origin)
    x, y, z = origin.T
    ux, uy, uz = direction.T
    a = ux**2 + uy**2
    b = x * ux + y * uy
    c = x**2 + y**2 - radius**2
    disc = b**2 - a * c
    radial = a > 1e-12
    t_r0 = np.full(n, -np.inf)
    t_r1 = np.full(n, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(np.clip(disc, 0.0, None))
        t_r0 = np.where(radial, (-b - root) / np.where(radial, a, 1.0), t_r0)
        t_r1 = np.where(radial, (-b + root) / np.where(radial, a, 1.0), t_r1)
    miss = (radial & (disc <= 0)) | (~radial & (c > 0))
    axial = np.abs(uz) > 1e-12
    safe_uz = np.where(axial, uz, 1.0)
    t_a = (z_min - z) / safe_uz
    t_b = (z_max - z) / safe_uz
    t_z0 = np.where(axial, np.minimum(t_a, t_b), -np.inf)
    t_z1 = np.where(axial, np.maximum(t_a, t_b), np.inf)
    miss |= ~axial & ((z < z_min) | (z > z_max))
    enter = np.maximum(np.maximum(t_r0, t_z0), 0.0)
    leave = np.minimum(t_r1, t_z1)
    leave = np.where(miss | (leave < enter), enter, leave)
    return enter, leave
