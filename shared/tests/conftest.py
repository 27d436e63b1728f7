"""Fixtures shared by the shared-hpc tests: powercap trees in the kernel's layout."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest


class PowercapTree:
    """A directory laid out like ``/sys/class/powercap`` with counters the test controls.

    ``zones`` maps a zone directory name (``intel-rapl:0``, ``intel-rapl:0:2``) to its ``name``.
    Sub-zones are nested in their package, and top-level links to them are added like sysfs has.
    """

    def __init__(self, root: Path, zones: dict[str, str], max_range_uj: int = 2**32) -> None:
        self.root = root
        self.max_range_uj = max_range_uj
        self.paths: dict[str, Path] = {}
        for zone, name in zones.items():
            parts = zone.split(":")
            # a sub-zone intel-rapl:P:S lives inside its package intel-rapl:P
            path = root / ":".join(parts[:2]) / zone if len(parts) == 3 else root / zone
            path.mkdir(parents=True, exist_ok=True)
            (path / "name").write_text(name + "\n")
            (path / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
            self.paths[zone] = path
            self.set(zone, 1_000_000)
        for zone, path in self.paths.items():
            if zone.count(":") == 2:
                (root / zone).symlink_to(path, target_is_directory=True)

    def get(self, zone: str) -> int:
        return int((self.paths[zone] / "energy_uj").read_text())

    def set(self, zone: str, value_uj: int) -> None:
        """Write a counter atomically, as a sampling thread may read it at any moment."""
        tmp = self.paths[zone] / ".energy_uj.tmp"
        tmp.write_text(f"{value_uj}\n")
        os.replace(tmp, self.paths[zone] / "energy_uj")

    def add(self, zone: str, joules: float) -> None:
        """Advance a counter by ``joules``, wrapping at ``max_energy_range_uj`` like RAPL."""
        self.set(zone, (self.get(zone) + round(joules * 1e6)) % self.max_range_uj)

    def break_zone(self, zone: str) -> None:
        """Make ``energy_uj`` unreadable even for root (a directory cannot be read as a file)."""
        (self.paths[zone] / "energy_uj").unlink()
        (self.paths[zone] / "energy_uj").mkdir()


TWO_SOCKETS = {
    "intel-rapl:0": "package-0",
    "intel-rapl:0:0": "core",
    "intel-rapl:0:1": "uncore",
    "intel-rapl:0:2": "dram",
    "intel-rapl:1": "package-1",
    "intel-rapl:1:0": "core",
    "intel-rapl:1:2": "dram",
    "intel-rapl:2": "psys",
}


@pytest.fixture
def powercap(tmp_path: Path) -> Callable[..., PowercapTree]:
    """Factory: ``powercap(zones=TWO_SOCKETS, max_range_uj=..., root=None)`` -> PowercapTree."""

    def make(
        zones: dict[str, str] | None = None, max_range_uj: int = 2**32, root: Path | None = None
    ) -> PowercapTree:
        return PowercapTree(root or tmp_path / "powercap", zones or TWO_SOCKETS, max_range_uj)

    return make
