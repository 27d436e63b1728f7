"""Radioactive sources and the water cylinder that scatters their photons: what a simulation
puts into the scanner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from shared_hpc import UserError

SourceKind = Literal["point", "line", "cylinder"]


@dataclass(frozen=True)
class Source:
    """A positron emitter of given activity.

    ``point``: at ``position_mm``. ``line``: uniform between ``position_mm`` and ``end_mm``.
    ``cylinder``: uniform in a cylinder along z of ``radius_mm`` and ``length_mm`` centred on
    ``position_mm`` (a phantom).

    Attributes:
        kind: Shape of the source: ``point``, ``line`` or ``cylinder``.
        activity_bq: Activity in Bq.
        position_mm: The point, the start of the line, or the centre of the cylinder (x, y, z).
        end_mm: The end of a line source (x, y, z).
        radius_mm: Radius of a cylinder source.
        length_mm: Length of a cylinder source along z.
    """

    kind: SourceKind = "point"
    activity_bq: float = 1.0e6
    position_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    end_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius_mm: float = 0.0
    length_mm: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("point", "line", "cylinder"):
            raise UserError(f"Source.kind must be point, line or cylinder, got {self.kind!r}")
        if not (np.isfinite(self.activity_bq) and self.activity_bq > 0):
            raise UserError(f"Source.activity_bq must be finite and > 0, got {self.activity_bq}")
        if self.kind == "cylinder" and not (self.radius_mm > 0 and self.length_mm > 0):
            raise UserError("a cylinder source needs radius_mm > 0 and length_mm > 0")
        if len(self.position_mm) != 3 or len(self.end_mm) != 3:
            raise UserError("Source positions need three coordinates (x, y, z) in mm")

    def sample_positions(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Annihilation points (before positron range), shape (n, 3).

        Args:
            rng: The simulation's random numbers.
            n: How many points.
        """
        start = np.asarray(self.position_mm, dtype=float)
        if self.kind == "point":
            return np.broadcast_to(start, (n, 3)).copy()
        if self.kind == "line":
            fraction = rng.uniform(0.0, 1.0, (n, 1))
            return start + fraction * (np.asarray(self.end_mm, dtype=float) - start)
        radius = self.radius_mm * np.sqrt(rng.uniform(0.0, 1.0, n))
        phi = rng.uniform(0.0, 2.0 * np.pi, n)
        z = rng.uniform(-self.length_mm / 2.0, self.length_mm / 2.0, n)
        return start + np.stack([radius * np.cos(phi), radius * np.sin(phi), z], axis=1)

    def max_extent_mm(self) -> float:
        """Largest transaxial distance from the scanner axis any decay can have."""
        xy = np.hypot(*np.asarray(self.position_mm[:2]))
        if self.kind == "line":
            return float(max(xy, np.hypot(*np.asarray(self.end_mm[:2]))))
        return float(xy + self.radius_mm)


@dataclass(frozen=True)
class WaterCylinder:
    """A water cylinder along z (the patient) in which photons Compton-scatter.

    Attributes:
        radius_mm: Radius in mm.
        length_mm: Length along z in mm.
        center_mm: Centre (x, y, z) in mm.
    """

    radius_mm: float = 30.0
    length_mm: float = 60.0
    center_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if not (self.radius_mm > 0 and self.length_mm > 0):
            raise UserError("WaterCylinder needs radius_mm > 0 and length_mm > 0")
