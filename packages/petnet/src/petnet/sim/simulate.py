"""Monte-Carlo acquisition: decays → photon pairs → (scatter) → crystals → singles.

Reproducible by seed: the same configuration and seed give the same singles, bit for bit.
Randoms are not added by hand; they appear because decays overlap in time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from petnet.scanner import SPEED_OF_LIGHT_MM_PER_NS, Scanner
from petnet.sim.detector import (
    blur_energy,
    dead_time_mask,
    hit_crystals,
    single_time_sigma_ns,
)
from petnet.sim.physics import (
    acollinear_partner,
    finite_cylinder_interval,
    isotropic_directions,
    rotate,
    sample_klein_nishina,
    water_attenuation_per_mm,
)
from petnet.sim.sources import Source, WaterCylinder
from petnet.singles import Singles
from shared_hpc import UserError, config_to_dict, require_memory

ANNIHILATION_KEV = 511.0
# Peak memory, measured at about 80 bytes per decay of the acquisition (decay times, positions,
# singles) plus 540 per decay of the chunk in flight (photons, scatter, hits); with a margin.
BYTES_PER_DECAY = 160
BYTES_PER_CHUNK_DECAY = 640
BYTES_PER_CRYSTAL = 64  # positions and time offsets


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate: scanner, sources, optional water cylinder, physics switches.

    Attributes:
        scanner: The scanner (a TOML table with ``Scanner`` fields).
        sources: The sources (TOML tables ``[[sources]]`` with ``Source`` fields).
        duration_s: Length of the acquisition in s.
        seed: Seed of the random numbers; the same settings and seed give the same singles.
        water: A water cylinder in which photons scatter; ``None``: no scatter.
        acollinearity_fwhm_deg: FWHM of the deviation of the two photons from 180 degrees.
        positron_range_mm: Standard deviation of the positron range per axis in mm.
        max_scatter_orders: Compton scatters followed per photon.
        chunk_decays: Decays simulated at once (bounds the memory, not the result).
    """

    scanner: Scanner = field(default_factory=Scanner)
    sources: tuple[Source, ...] = (Source(),)
    duration_s: float = 1e-3
    seed: int = 0
    water: WaterCylinder | None = None
    acollinearity_fwhm_deg: float = 0.5
    positron_range_mm: float = 0.0
    max_scatter_orders: int = 3
    chunk_decays: int = 1_000_000

    def __post_init__(self) -> None:
        if not self.sources:
            raise UserError("SimulationConfig needs at least one source")
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise UserError(f"duration_s must be > 0, got {self.duration_s}")
        if self.acollinearity_fwhm_deg < 0 or self.positron_range_mm < 0:
            raise UserError("acollinearity_fwhm_deg and positron_range_mm must be >= 0")
        if self.max_scatter_orders < 0 or self.chunk_decays < 1:
            raise UserError("max_scatter_orders must be >= 0 and chunk_decays >= 1")
        if self.expected_decays() < 1:
            raise UserError(
                f"the acquisition expects {self.expected_decays():.3g} decays (activity × "
                "duration); raise the activity or the duration"
            )
        for source in self.sources:
            if source.max_extent_mm() >= self.scanner.radius_mm:
                raise UserError(
                    f"a {source.kind} source reaches {source.max_extent_mm():.1f} mm from the "
                    f"axis, outside the scanner bore of radius {self.scanner.radius_mm} mm"
                )

    @property
    def total_activity_bq(self) -> float:
        """Activity of all sources together in Bq."""
        return float(sum(s.activity_bq for s in self.sources))

    def expected_decays(self) -> float:
        """Mean number of decays in the acquisition."""
        return self.total_activity_bq * self.duration_s

    def memory_bytes(self) -> float:
        """Estimated peak memory of the simulation in bytes."""
        decays = self.expected_decays()
        return (
            decays * BYTES_PER_DECAY
            + min(decays, self.chunk_decays) * BYTES_PER_CHUNK_DECAY
            + self.scanner.n_crystals * BYTES_PER_CRYSTAL
        )


def simulate(config: SimulationConfig) -> Singles:
    """Run the acquisition.

    Args:
        config: What to simulate.

    Returns:
        The time-sorted singles with their ground truth; ``meta`` holds the settings, the
        number of decays and the dead-time losses.

    Raises:
        UserError: The acquisition would not fit in this machine's memory.
    """
    require_memory(config.memory_bytes(), f"simulating {config.expected_decays():.3g} decays")
    rng = np.random.default_rng(config.seed)
    scanner = config.scanner
    offsets = scanner.time_offsets()
    duration_ns = config.duration_s * 1e9
    # decays: Poisson number per source, uniform times → a Poisson process in time
    times, positions, source_ids = [], [], []
    for index, source in enumerate(config.sources):
        n = int(rng.poisson(source.activity_bq * config.duration_s))
        times.append(rng.uniform(0.0, duration_ns, n))
        positions.append(source.sample_positions(rng, n))
        source_ids.append(np.full(n, index, dtype=np.int16))
    decay_time = np.concatenate(times)
    order = np.argsort(decay_time, kind="stable")
    decay_time = decay_time[order]
    decay_position = np.concatenate(positions)[order]
    decay_source = np.concatenate(source_ids)[order]
    parts = []
    for start in range(0, len(decay_time), config.chunk_decays):
        stop = min(start + config.chunk_decays, len(decay_time))
        parts.append(
            _photons_to_events(
                rng,
                config,
                offsets,
                decay_time[start:stop],
                decay_position[start:stop],
                decay_source[start:stop],
                first_id=start,
            )
        )
    events = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else None
    if events is None or len(events["time_ns"]) == 0:
        events = {
            "time_ns": np.zeros(0),
            "crystal": np.zeros(0, np.int64),
            "energy_kev": np.zeros(0),
            "decay_id": np.zeros(0, np.int64),
            "scattered": np.zeros(0, bool),
            "source_id": np.zeros(0, np.int16),
        }
    order = np.argsort(events["time_ns"], kind="stable")
    events = {k: v[order] for k, v in events.items()}
    alive = dead_time_mask(scanner, events["time_ns"], events["crystal"])
    events = {k: v[alive] for k, v in events.items()}
    meta = {
        "duration_s": config.duration_s,
        "seed": config.seed,
        "n_decays": len(decay_time),
        "dead_time_losses": int((~alive).sum()),
        "config": config_to_dict(config),
    }
    return Singles(**events, scanner=scanner, meta=meta)


def _photons_to_events(
    rng: np.random.Generator,
    config: SimulationConfig,
    offsets: np.ndarray,
    decay_time: np.ndarray,
    position: np.ndarray,
    source_id: np.ndarray,
    first_id: int,
) -> dict[str, np.ndarray]:
    n = len(decay_time)
    if config.positron_range_mm > 0:
        position = position + rng.normal(0.0, config.positron_range_mm, (n, 3))
    first = isotropic_directions(rng, n)
    second = acollinear_partner(rng, first, config.acollinearity_fwhm_deg)
    origin = np.concatenate([position, position])
    direction = np.concatenate([first, second])
    energy = np.full(2 * n, ANNIHILATION_KEV)
    path = np.zeros(2 * n)
    scattered = np.zeros(2 * n, dtype=bool)
    if config.water is not None:
        origin, direction, energy, path, scattered = _scatter_in_water(
            rng, config, origin, direction, energy, path, scattered
        )
    crystal, distance = hit_crystals(config.scanner, origin, direction)
    seen = (crystal >= 0) & (rng.uniform(0.0, 1.0, 2 * n) < config.scanner.efficiency)
    measured = blur_energy(rng, config.scanner, energy[seen])
    path_ns = (path[seen] + distance[seen]) / SPEED_OF_LIGHT_MM_PER_NS
    jitter = rng.normal(0.0, single_time_sigma_ns(config.scanner), int(seen.sum()))
    crystal = crystal[seen]
    time = np.concatenate([decay_time, decay_time])[seen] + path_ns + jitter + offsets[crystal]
    keep = measured >= config.scanner.energy_threshold_kev
    decay_id = np.concatenate([np.arange(n), np.arange(n)])[seen] + first_id
    return {
        "time_ns": time[keep],
        "crystal": crystal[keep],
        "energy_kev": measured[keep],
        "decay_id": decay_id[keep],
        "scattered": scattered[seen][keep],
        "source_id": np.concatenate([source_id, source_id])[seen][keep],
    }


def _scatter_in_water(
    rng: np.random.Generator,
    config: SimulationConfig,
    origin: np.ndarray,
    direction: np.ndarray,
    energy: np.ndarray,
    path: np.ndarray,
    scattered: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Move photons through the water cylinder, Compton-scattering up to N times each."""
    water = config.water
    assert water is not None
    center = np.asarray(water.center_mm, dtype=float)
    z_min, z_max = -water.length_mm / 2.0, water.length_mm / 2.0
    active = np.arange(len(origin))
    for _ in range(config.max_scatter_orders):
        if not active.size:
            break
        local = origin[active] - center
        enter, leave = finite_cylinder_interval(
            local, direction[active], water.radius_mm, z_min, z_max
        )
        mu = water_attenuation_per_mm(energy[active])
        free_path = -np.log1p(-rng.uniform(0.0, 1.0, active.size)) / mu
        hit = free_path < leave - enter
        active = active[hit]
        step = (enter + free_path)[hit]
        origin[active] += step[:, None] * direction[active]
        path[active] += step
        cos_theta, energy[active] = sample_klein_nishina(rng, energy[active])
        direction[active] = rotate(
            direction[active], cos_theta, rng.uniform(0.0, 2.0 * np.pi, active.size)
        )
        scattered[active] = True
    return origin, direction, energy, path, scattered
