"""The acquisition ``petnet simulate`` runs: one source in a preset scanner, or a full simulation.

``SimulationConfig`` describes any acquisition (a custom scanner, several sources, the physics
switches), but a list of sources does not fit on a command line. ``AcquisitionConfig`` holds
what the flags say (a preset scanner, one source in MBq, a duration in ms) and builds the
``SimulationConfig`` from it; a full ``SimulationConfig`` comes from TOML in its ``simulation``
table. A setting either changes the acquisition or is refused: none is ever ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

from petnet.scanner import preset
from petnet.sim.simulate import SimulationConfig
from petnet.sim.sources import Source, SourceKind, WaterCylinder
from shared_hpc import UserError, load_config

ScannerPreset = Literal["small", "preclinical", "clinical"]
_ONE_SOURCE = ("source_kind", "activity_mbq", "phantom_radius_mm", "phantom_length_mm", "water")


@dataclass(frozen=True)
class AcquisitionConfig:
    """What ``petnet simulate`` acquires: one source in a preset scanner, or a full simulation.

    Without ``simulation``, the acquisition is one source in a preset scanner, and a setting
    left at ``None`` takes the value its description names. With ``simulation`` (a full
    ``SimulationConfig`` from the ``[simulation]`` table of a TOML file), ``scanner``,
    ``duration_ms`` and ``seed`` change it where given, and the settings of the one source are
    refused: the sources and the water are those of the table.

    Attributes:
        scanner: Preset scanner; none: small, or the scanner of the full simulation.
        source_kind: Kind of the one source: cylinder (a phantom), line (along the axis) or
            point (at the centre); none: cylinder.
        activity_mbq: Activity of the one source in MBq; none: 50.
        duration_ms: Length of the acquisition in ms; none: 4, or that of the full simulation.
        phantom_radius_mm: Radius of the cylinder source and of the water in mm; none: half the
            field-of-view radius.
        phantom_length_mm: Length of the cylinder source and of the water in mm; none: the
            scanner's axial length.
        water: Scatter in a water cylinder of the phantom's size; none: with a cylinder source
            only.
        seed: Seed of the random numbers; none: 0, or that of the full simulation.
        simulation: A full ``SimulationConfig`` (TOML only: a ``[simulation]`` table with
            ``[simulation.scanner]``, ``[[simulation.sources]]``, ``[simulation.water]``).
    """

    scanner: ScannerPreset | None = None
    source_kind: SourceKind | None = None  # not "source": load_config's first argument
    activity_mbq: float | None = None
    duration_ms: float | None = None
    phantom_radius_mm: float | None = None
    phantom_length_mm: float | None = None
    water: bool | None = None
    seed: int | None = None
    simulation: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.simulation is not None:
            given = [name for name in _ONE_SOURCE if getattr(self, name) is not None]
            if given:
                raise UserError(
                    "the [simulation] table has its own sources and water; "
                    f"{', '.join(given)} cannot change them (edit the table instead)"
                )
        for name in ("activity_mbq", "duration_ms", "phantom_radius_mm", "phantom_length_mm"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise UserError(f"{name} must be finite and > 0, got {value}")
        sized = self.phantom_radius_mm is not None or self.phantom_length_mm is not None
        if sized and self.source_kind not in (None, "cylinder") and not self.water:
            raise UserError(
                "phantom_radius_mm and phantom_length_mm size a cylinder source or the water; "
                f"a {self.source_kind} source without water has neither"
            )
        self.to_simulation()  # every remaining check: sources inside the bore, and so on

    def to_simulation(self) -> SimulationConfig:
        """The ``SimulationConfig`` these settings describe.

        Raises:
            UserError: A source that does not fit the scanner, or an invalid full simulation.
        """
        if self.simulation is not None:
            full = load_config(SimulationConfig, self.simulation)
            changes: dict[str, Any] = {}
            if self.scanner is not None:
                changes["scanner"] = preset(self.scanner)
            if self.duration_ms is not None:
                changes["duration_s"] = self.duration_ms * 1e-3
            if self.seed is not None:
                changes["seed"] = self.seed
            return replace(full, **changes)
        scanner = preset(self.scanner or "small")
        kind = self.source_kind or "cylinder"
        activity = (50.0 if self.activity_mbq is None else self.activity_mbq) * 1e6
        radius = self.phantom_radius_mm or 0.5 * scanner.fov_radius_mm
        length = self.phantom_length_mm or scanner.axial_length_mm
        if kind == "cylinder":
            source = Source(
                kind="cylinder", activity_bq=activity, radius_mm=radius, length_mm=length
            )
        elif kind == "line":
            half = scanner.axial_length_mm / 2
            source = Source(
                kind="line", activity_bq=activity, position_mm=(0, 0, -half), end_mm=(0, 0, half)
            )
        else:
            source = Source(kind="point", activity_bq=activity)
        water = self.water if self.water is not None else kind == "cylinder"
        return SimulationConfig(
            scanner=scanner,
            sources=(source,),
            water=WaterCylinder(radius_mm=radius, length_mm=length) if water else None,
            duration_s=(4.0 if self.duration_ms is None else self.duration_ms) * 1e-3,
            seed=0 if self.seed is None else self.seed,
        )
