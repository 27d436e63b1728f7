"""CPU package and DRAM energy from Linux powercap RAPL counters (``/sys/class/powercap``).

Each RAPL zone exposes ``name`` (``package-0``, ``dram``, ``core``, ``uncore``, ``psys``),
``energy_uj`` (a counter in microjoules) and ``max_energy_range_uj`` (where the counter wraps to
zero). Packages count as ``cpu``, DRAM zones as ``dram``. ``core`` and ``uncore`` are parts of
their package and ``psys`` covers the whole platform, so summing them would count energy twice;
the ``intel-rapl-mmio`` tree repeats the package counters and is skipped for the same reason.

A counter wraps after ``max_energy_range_uj`` (typically 65 to 262 kJ, i.e. minutes at full load),
so the meter samples every second: one wrap between two reads is undone by adding the range.
Since Linux 5.10 ``energy_uj`` is readable by root only (CVE-2020-8694); an unreadable zone makes
its whole kind unavailable here, so that a kind is never reported with some packages missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from shared_hpc.energy.sensor import NoSensor, Sensor, SensorError

__all__ = ["RaplDomain", "RaplReader", "find_domains"]

_ZONE = re.compile(r"^(intel|amd)-rapl:\d+(:\d+)*$")
_PERMISSION_HINT = (
    "since Linux 5.10 energy_uj is root-only; ask your admins to make it readable "
    "(e.g. a udev rule or `chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj`)"
)


@dataclass(frozen=True)
class RaplDomain:
    """One RAPL zone whose energy the meter adds up."""

    path: Path
    name: str
    kind: str
    max_range_uj: int | None

    def read_uj(self) -> int:
        """The counter now, in microjoules (raises ``OSError``/``ValueError`` when unreadable)."""
        return int((self.path / "energy_uj").read_text().strip())


def _kind(name: str) -> str | None:
    if name.startswith("package"):
        return "cpu"
    if name == "dram":
        return "dram"
    return None  # core, uncore: inside a package; psys: the whole platform


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def find_domains(root: str | Path = "/sys/class/powercap") -> list[RaplDomain]:
    """The package and DRAM zones under ``root``, each once, in a stable order.

    Zones appear both as top-level links (``intel-rapl:0:2``) and nested inside their package
    (``intel-rapl:0/intel-rapl:0:2``); both layouts are searched, duplicates are dropped by
    their resolved path.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    seen: dict[Path, RaplDomain] = {}
    pending = [p for p in root.iterdir() if _ZONE.match(p.name)]
    while pending:
        zone = pending.pop()
        real = zone.resolve()
        if real in seen or not (zone / "name").is_file():
            continue
        pending.extend(p for p in zone.iterdir() if _ZONE.match(p.name))
        try:
            name = (zone / "name").read_text().strip()
        except OSError:
            continue
        kind = _kind(name)
        if kind is not None:
            max_range = _read_int(zone / "max_energy_range_uj")
            seen[real] = RaplDomain(zone, name, kind, max_range)
    return sorted(seen.values(), key=lambda d: (d.kind, d.path.name))


class _Counter:
    """Accumulates one zone's energy across reads, undoing one wrap-around per interval."""

    def __init__(self, domain: RaplDomain, first_uj: int) -> None:
        self.domain = domain
        self.last_uj = first_uj
        self.total_uj = 0

    def update(self, now_uj: int) -> None:
        delta = now_uj - self.last_uj
        if delta < 0:
            if not self.domain.max_range_uj:
                raise SensorError(
                    f"{self.domain.path}/energy_uj went backwards and max_energy_range_uj "
                    "is unreadable, so the wrap-around cannot be undone"
                )
            delta += self.domain.max_range_uj
        self.total_uj += delta
        self.last_uj = now_uj


class RaplReader(Sensor):
    """Sensor for the ``cpu`` (packages) and ``dram`` zones of this node."""

    method = "rapl"

    def __init__(
        self, powercap_root: str | Path = "/sys/class/powercap", sample_interval_s: float = 1.0
    ) -> None:
        super().__init__()
        self.root = Path(powercap_root)
        self.sample_interval_s = sample_interval_s
        self._counters: dict[str, list[_Counter]] = {}

    def start(self) -> None:
        domains = find_domains(self.root)
        if not domains:
            raise NoSensor(f"no RAPL zones under {self.root}")
        by_kind: dict[str, list[RaplDomain]] = {}
        for domain in domains:
            by_kind.setdefault(domain.kind, []).append(domain)
        for kind, members in by_kind.items():
            try:
                self._counters[kind] = [_Counter(d, d.read_uj()) for d in members]
            except (OSError, ValueError) as err:
                self.problems.append(
                    f"RAPL {kind} energy is unreadable ({err}); {_PERMISSION_HINT}"
                )
        if not self._counters:
            raise SensorError(" ".join(self.problems))
        self.kinds = tuple(k for k in ("cpu", "dram") if k in self._counters)
        self.devices = {k: len(v) for k, v in self._counters.items()}
        self.origin = self.mark()

    def sample(self) -> None:
        for kind in list(self._counters):
            try:
                for counter in self._counters[kind]:
                    counter.update(counter.domain.read_uj())
            except (OSError, ValueError, SensorError) as err:
                self.problems.append(f"RAPL {kind} stopped being readable during the run ({err})")
                del self._counters[kind]
                self.kinds = tuple(k for k in self.kinds if k != kind)

    def mark(self) -> dict[str, int]:
        self.sample()
        return {
            kind: sum(c.total_uj for c in counters) for kind, counters in self._counters.items()
        }

    def joules_since(self, mark: dict[str, int]) -> dict[str, float]:
        now = self.mark()
        return {kind: (now[kind] - mark[kind]) / 1e6 for kind in now if kind in mark}
