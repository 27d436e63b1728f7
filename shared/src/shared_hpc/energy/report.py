"""The energy of one measured run, summed over nodes, with the method behind every number."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from shared_hpc.energy.sensor import KINDS, METHODS

__all__ = ["EnergyReport", "NodeReading"]


@dataclass
class NodeReading:
    """What the reading rank of one node measured: joules, method and device count per kind."""

    host: str
    joules: dict[str, float] = field(default_factory=dict)
    methods: dict[str, str] = field(default_factory=dict)
    devices: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _join_methods(methods: set[str]) -> str:
    """``rapl+estimated`` etc., in the order of preference of ``METHODS``."""
    return "+".join(sorted(methods, key=lambda m: METHODS.index(m) if m in METHODS else 99))


def _ordered(kinds: set[str]) -> list[str]:
    return sorted(kinds, key=lambda k: KINDS.index(k) if k in KINDS else 99)


@dataclass
class EnergyReport:
    """Energy of a run over all nodes.

    Attributes:
        seconds: wall time of the measured region, until the slowest rank finished it.
        joules: energy per device kind (``cpu``, ``dram``, ``gpu``) summed over nodes.
        methods: per kind, ``rapl``, ``nvml`` or ``estimated`` (``+``-joined if nodes differ).
        total_joules: sum over kinds.
        mean_watts: ``total_joules / seconds``.
        device_hours: per kind, devices × hours (e.g. GPU-hours, socket-hours).
        nodes: nodes whose devices were read, each exactly once.
        devices: per kind, the number of devices read (CPU packages, DRAM domains, GPUs).
        measured: every number comes from a hardware counter; ``False`` if any is estimated.
        method: the methods used, e.g. ``rapl+nvml`` or ``estimated`` (``none``: nothing read).
        warnings: sensors that could not be read and what was done instead.
        ranks: MPI ranks that took part.
        per_node: each node's own reading (host, joules, methods, devices).
    """

    seconds: float
    joules: dict[str, float]
    methods: dict[str, str]
    total_joules: float
    mean_watts: float
    device_hours: dict[str, float]
    nodes: int
    devices: dict[str, int]
    measured: bool
    method: str
    warnings: list[str] = field(default_factory=list)
    ranks: int = 1
    per_node: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_readings(
        cls,
        readings: list[NodeReading],
        seconds: float,
        ranks: int = 1,
    ) -> EnergyReport:
        """Sum the readings of several nodes (each node must appear once)."""
        kinds = _ordered({k for r in readings for k in r.joules})
        joules = {k: sum(r.joules.get(k, 0.0) for r in readings) for k in kinds}
        devices = {k: sum(r.devices.get(k, 0) for r in readings) for k in kinds}
        methods = {
            k: _join_methods({r.methods[k] for r in readings if k in r.methods}) for k in kinds
        }
        used = {m for r in readings for m in r.methods.values()}
        total = sum(joules.values())
        many = len(readings) > 1
        warnings = list(
            dict.fromkeys(f"{r.host}: {w}" if many else w for r in readings for w in r.warnings)
        )
        return cls(
            seconds=seconds,
            joules=joules,
            methods=methods,
            total_joules=total,
            mean_watts=total / seconds if seconds > 0 else 0.0,
            device_hours={k: devices[k] * seconds / 3600.0 for k in kinds},
            nodes=len(readings),
            devices=devices,
            measured=bool(kinds) and used <= {"rapl", "nvml"},
            method=_join_methods(used) if used else "none",
            warnings=warnings,
            ranks=ranks,
            per_node=[
                {"host": r.host, "joules": r.joules, "methods": r.methods, "devices": r.devices}
                for r in readings
            ],
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the ``energy`` field of a run record)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnergyReport:
        """Inverse of ``to_dict``; unknown keys from newer versions are ignored."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def kwh(self) -> float:
        return self.total_joules / 3.6e6

    def __str__(self) -> str:
        parts = ", ".join(f"{k} {self.joules[k]:.1f} J ({self.methods[k]})" for k in self.joules)
        if self.measured:
            kind = "measured"
        elif self.method == "none":
            kind = "no energy sensor"
        else:
            kind = "estimated" if self.method == "estimated" else "partly estimated"
        nodes = f"{self.nodes} node" + ("s" if self.nodes != 1 else "")
        return (
            f"{self.total_joules:.1f} J in {self.seconds:.2f} s = {self.mean_watts:.1f} W "
            f"on {nodes} [{parts or 'no sensor'}] ({kind})"
        )
