"""Cylindrical scanner geometry and detector response, with presets for three use cases.

The simulator, the sorters and the networks all need the same description of the detector; it
lives here, once, and travels inside every singles file and checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np

from shared_hpc import UserError, load_config

SPEED_OF_LIGHT_MM_PER_NS = 299.792458
DeadTimeModel = Literal["paralysable", "non-paralysable"]


@dataclass(frozen=True)
class Scanner:
    """Rings of crystals on a cylinder, and how each crystal responds to a 511 keV photon.

    Crystal ``ring * crystals_per_ring + k`` covers the azimuths ``[k, k + 1) · 2π / K`` (K
    crystals per ring) of ring ``ring``; rings are stacked along z, centred on z = 0. Photons
    are detected where they cross the cylinder of ``radius_mm`` (no depth of interaction).

    Attributes:
        name: A label for the scanner (a preset's name, or ``custom``).
        n_rings: Rings of crystals along the axis.
        crystals_per_ring: Crystals around each ring.
        radius_mm: Radius of the crystal cylinder in mm.
        axial_pitch_mm: Distance between neighbouring rings in mm.
        fov_radius_mm: Radius of the transaxial field of view in mm (below ``radius_mm``).
        efficiency: Probability that a photon reaching a crystal is detected.
        energy_resolution: Energy resolution (FWHM) at 511 keV, as a fraction.
        time_resolution_ns: Coincidence time resolution (FWHM of the time difference) in ns.
        time_offset_ns: Standard deviation of the fixed per-crystal time offsets in ns.
        energy_threshold_kev: Lowest energy a crystal reports, in keV.
        dead_time_ns: Dead time of a crystal after each event, in ns.
        dead_time_model: ``paralysable`` (every event restarts the dead time) or
            ``non-paralysable``.
        calibration_seed: Seed of the per-crystal time offsets.
    """

    name: str = "custom"
    n_rings: int = 4
    crystals_per_ring: int = 64
    radius_mm: float = 60.0
    axial_pitch_mm: float = 4.0
    fov_radius_mm: float = 40.0
    efficiency: float = 0.8
    energy_resolution: float = 0.12
    time_resolution_ns: float = 0.4
    time_offset_ns: float = 0.1
    energy_threshold_kev: float = 100.0
    dead_time_ns: float = 100.0
    dead_time_model: DeadTimeModel = "non-paralysable"
    calibration_seed: int = 0

    def __post_init__(self) -> None:
        positive = ("n_rings", "crystals_per_ring", "radius_mm", "axial_pitch_mm", "fov_radius_mm")
        for field in positive:
            if not getattr(self, field) > 0:
                raise UserError(f"Scanner.{field} must be > 0, got {getattr(self, field)!r}")
        if self.fov_radius_mm >= self.radius_mm:
            raise UserError(
                f"Scanner.fov_radius_mm ({self.fov_radius_mm}) must be smaller than "
                f"radius_mm ({self.radius_mm})"
            )
        if not 0.0 < self.efficiency <= 1.0:
            raise UserError(f"Scanner.efficiency must be in (0, 1], got {self.efficiency}")
        for field in ("energy_resolution", "time_resolution_ns", "time_offset_ns", "dead_time_ns"):
            if not getattr(self, field) >= 0:
                raise UserError(f"Scanner.{field} must be >= 0, got {getattr(self, field)!r}")
        if self.dead_time_model not in ("paralysable", "non-paralysable"):
            raise UserError(
                "Scanner.dead_time_model must be 'paralysable' or 'non-paralysable', "
                f"got {self.dead_time_model!r}"
            )

    @property
    def n_crystals(self) -> int:
        """Crystals in the scanner."""
        return self.n_rings * self.crystals_per_ring

    @property
    def axial_length_mm(self) -> float:
        """Length of the scanner along its axis in mm."""
        return self.n_rings * self.axial_pitch_mm

    @property
    def crystal_pitch_mm(self) -> float:
        """Transaxial width of one crystal along the ring."""
        return 2.0 * math.pi * self.radius_mm / self.crystals_per_ring

    @property
    def acceptance_half_width(self) -> int:
        """How many crystals either side of the opposite one a partner photon can land on.

        A line of response between azimuths φ1 and φ2 passes at R·|cos((φ2 − φ1)/2)| from the
        axis, so lines through the field of view deviate from back-to-back by at most
        2·arcsin(fov / R).
        """
        angle = 2.0 * math.asin(self.fov_radius_mm / self.radius_mm)
        return math.ceil(angle / (2.0 * math.pi) * self.crystals_per_ring)

    @property
    def min_transaxial_distance_mm(self) -> float:
        """Shortest chord between two crystals whose line of response crosses the FOV."""
        return 2.0 * math.sqrt(self.radius_mm**2 - self.fov_radius_mm**2)

    def crystal_positions(self) -> np.ndarray:
        """Centres of all crystals on the cylinder, shape (n_crystals, 3), in mm."""
        k = np.arange(self.crystals_per_ring)
        phi = (k + 0.5) * 2.0 * np.pi / self.crystals_per_ring
        z = (np.arange(self.n_rings) + 0.5 - self.n_rings / 2.0) * self.axial_pitch_mm
        x = np.tile(self.radius_mm * np.cos(phi), self.n_rings)
        y = np.tile(self.radius_mm * np.sin(phi), self.n_rings)
        return np.stack([x, y, np.repeat(z, self.crystals_per_ring)], axis=1)

    def time_offsets(self) -> np.ndarray:
        """Fixed per-crystal timing offsets (ns): a calibration error shared by all acquisitions."""
        rng = np.random.default_rng([self.calibration_seed, 0x5EED])
        return rng.normal(0.0, self.time_offset_ns, self.n_crystals)

    def check_crystals(self, crystal: np.ndarray) -> None:
        """Check that every crystal id lies in this scanner.

        Args:
            crystal: Crystal ids.

        Raises:
            UserError: Some id lies outside the scanner.
        """
        if crystal.size and (crystal.min() < 0 or crystal.max() >= self.n_crystals):
            bad = crystal[(crystal < 0) | (crystal >= self.n_crystals)]
            raise UserError(
                f"crystal ids out of range for scanner {self.name!r} with {self.n_crystals} "
                f"crystals: e.g. {bad[:5].tolist()}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain values (stored in singles files and checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scanner:
        """A scanner from stored settings, every field checked (see ``shared_hpc.load_config``).

        Args:
            data: The output of ``to_dict``.

        Raises:
            UserError: Unknown keys or invalid values.
        """
        return load_config(cls, data)


PRESETS: dict[str, Scanner] = {
    # A four-ring demonstration scanner: small enough to train on a laptop in a minute.
    "small": Scanner(name="small"),
    # A small-animal insert: 1.6 mm crystals on an 80 mm bore.
    "preclinical": Scanner(
        name="preclinical",
        n_rings=16,
        crystals_per_ring=160,
        radius_mm=40.0,
        axial_pitch_mm=1.6,
        fov_radius_mm=30.0,
        efficiency=0.7,
        energy_resolution=0.14,
        time_resolution_ns=0.5,
        time_offset_ns=0.1,
        dead_time_ns=150.0,
    ),
    # A whole-body ring of 4 mm LSO-like crystals (about 82 cm bore, 21 cm axial field).
    "clinical": Scanner(
        name="clinical",
        n_rings=52,
        crystals_per_ring=624,
        radius_mm=412.0,
        axial_pitch_mm=4.1,
        fov_radius_mm=300.0,
        efficiency=0.75,
        energy_resolution=0.11,
        time_resolution_ns=0.4,
        time_offset_ns=0.1,
        dead_time_ns=100.0,
    ),
}


def preset(name: str, **overrides: Any) -> Scanner:
    """A preset scanner by name, optionally with some fields changed.

    Args:
        name: One of ``PRESETS``: ``small``, ``preclinical``, ``clinical``.
        **overrides: Fields of ``Scanner`` to change.

    Raises:
        UserError: An unknown name.
    """
    if name not in PRESETS:
        raise UserError(f"unknown scanner preset {name!r}; choose one of {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides) if overrides else PRESETS[name]
