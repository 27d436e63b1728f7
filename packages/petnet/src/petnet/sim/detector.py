"""Detector response: where a photon hits, whether it is seen, what is measured, dead time."""

from __future__ import annotations

import numpy as np

from petnet.chain import chain_mask
from petnet.scanner import Scanner
from petnet.sim.physics import exit_distance_infinite_cylinder

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def hit_crystals(
    scanner: Scanner, origin: np.ndarray, direction: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Crystal id (−1 for a miss) and distance travelled for photons leaving ``origin``.

    Args:
        scanner: The scanner.
        origin: Where each photon starts, shape (n, 3), in mm.
        direction: Unit vector of each photon, shape (n, 3).
    """
    distance = exit_distance_infinite_cylinder(origin, direction, scanner.radius_mm)
    finite = np.isfinite(distance)
    point = origin + np.where(finite, distance, 0.0)[:, None] * direction
    ring = np.floor(point[:, 2] / scanner.axial_pitch_mm + scanner.n_rings / 2.0).astype(np.int64)
    phi = np.mod(np.arctan2(point[:, 1], point[:, 0]), 2.0 * np.pi)
    k = np.minimum(
        (phi / (2.0 * np.pi) * scanner.crystals_per_ring).astype(np.int64),
        scanner.crystals_per_ring - 1,
    )
    inside = finite & (ring >= 0) & (ring < scanner.n_rings)
    crystal = np.where(inside, ring * scanner.crystals_per_ring + k, -1)
    return crystal, distance


def blur_energy(rng: np.random.Generator, scanner: Scanner, energy_kev: np.ndarray) -> np.ndarray:
    """Measured energy: Gaussian with FWHM ``energy_resolution``·511 keV at 511 keV, ∝ √E.

    Args:
        rng: The simulation's random numbers.
        scanner: The scanner (its energy resolution).
        energy_kev: Deposited energies in keV.
    """
    sigma = scanner.energy_resolution * 511.0 / FWHM_PER_SIGMA * np.sqrt(energy_kev / 511.0)
    return np.clip(energy_kev + rng.normal(0.0, 1.0, len(energy_kev)) * sigma, 0.0, None)


def single_time_sigma_ns(scanner: Scanner) -> float:
    """Per-photon timing sigma such that the difference of two has the configured CTR FWHM.

    Args:
        scanner: The scanner (its coincidence time resolution).
    """
    return scanner.time_resolution_ns / FWHM_PER_SIGMA / np.sqrt(2.0)


def dead_time_mask(scanner: Scanner, time_ns: np.ndarray, crystal: np.ndarray) -> np.ndarray:
    """Which events survive the per-crystal dead time.

    Args:
        scanner: The scanner (its dead time and model).
        time_ns: Time-sorted event times in ns.
        crystal: Crystal of each event.
    """
    n = len(time_ns)
    if scanner.dead_time_ns <= 0 or n == 0:
        return np.ones(n, dtype=bool)
    order = np.lexsort((time_ns, crystal))
    t, c = time_ns[order], crystal[order]
    if scanner.dead_time_model == "paralysable":
        # every event, seen or not, restarts the dead period
        kept = np.ones(n, dtype=bool)
        kept[1:] = (c[1:] != c[:-1]) | (np.diff(t) >= scanner.dead_time_ns)
    else:
        kept = chain_mask(t, scanner.dead_time_ns, group=c, inclusive=True)
    mask = np.empty(n, dtype=bool)
    mask[order] = kept
    return mask
