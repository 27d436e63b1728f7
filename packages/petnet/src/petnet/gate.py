"""GATE (OpenGATE) singles in: ROOT ``Singles`` trees and ASCII ``Singles.dat`` files.

GATE's ``cylindricalPET`` system names each crystal by the copy numbers of its volumes:
``rsectorID`` (sectors repeated around the axis), ``moduleID``, ``submoduleID``,
``crystalID`` (cubic arrays inside it, numbered transaxial (y) fastest, then axial (z)) and
``layerID`` (depth). ``GateSystem`` describes that hierarchy, in TOML::

    rsectors = 16  # sectors around the ring
    modules = [1, 2]  # copies per rsector: [transaxial (y), axial (z)]
    submodules = [1, 1]
    crystals = [4, 2]
    layers = 1  # depth layers, merged: petnet has no depth of interaction

    [scanner]  # petnet's Scanner; rings and crystals per ring follow from above
    name = "my-gate-scanner"
    radius_mm = 60.0
    fov_radius_mm = 40.0

and maps the IDs to petnet's crystal index ``ring * crystals_per_ring + k``, with ``k`` the
position around the ring and ``ring`` the position along the axis.

ASCII files must have GATE's default column layout (every ``setSinglesMask`` bit on), as
``GateSingleDigi`` writes it: runID, eventID, sourceID, source x y z, the six volume IDs of
cylindricalPET (base, rsector, module, submodule, crystal, layer), time (s), energy (MeV),
global x y z, comptonPhantom, comptonCrystal, RayleighPhantom, RayleighCrystal and the names of
the Compton and Rayleigh volumes. ROOT files need ``uproot`` (``pip install petnet[gate]``).
Ground truth comes with the file: the decay is (runID, eventID), a single is scattered when its
photon had a Compton or Rayleigh interaction in the phantom.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from petnet.scanner import Scanner
from petnet.singles import Singles
from shared_hpc import UserError, load_config, read_toml

ID_NAMES = ("rsectorID", "moduleID", "submoduleID", "crystalID", "layerID")
ROOT_NEEDED = ("time", "energy", *ID_NAMES)
ROOT_TRUTH = ("runID", "eventID", "sourceID", "comptonPhantom", "RayleighPhantom")
ASCII_COLUMNS = (
    "runID",
    "eventID",
    "sourceID",
    "sourcePosX",
    "sourcePosY",
    "sourcePosZ",
    "baseID",
    *ID_NAMES,
    "time",
    "energy",
    "globalPosX",
    "globalPosY",
    "globalPosZ",
    "comptonPhantom",
    "comptonCrystal",
    "RayleighPhantom",
    "RayleighCrystal",
)
ASCII_NAMES = ("comptVolName", "RayleighVolName")  # text columns at the end of each line


@dataclass(frozen=True)
class GateSystem:
    """A GATE ``cylindricalPET`` hierarchy and the petnet scanner it maps onto.

    Attributes:
        rsectors: Sectors around the ring (the ring repeater's copies).
        modules: Module copies per rsector, [transaxial (y), axial (z)].
        submodules: Submodule copies per module, [y, z].
        crystals: Crystal copies per submodule, [y, z].
        layers: Depth layers per crystal (merged into one petnet crystal).
        scanner: The petnet scanner; its ``n_rings`` and ``crystals_per_ring`` must match the
            hierarchy (``load_gate_system`` fills them in when the file leaves them out).
    """

    rsectors: int
    modules: tuple[int, int] = (1, 1)
    submodules: tuple[int, int] = (1, 1)
    crystals: tuple[int, int] = (1, 1)
    layers: int = 1
    scanner: Scanner = field(default_factory=Scanner)

    def __post_init__(self) -> None:
        counts = (self.rsectors, self.layers, *self.modules, *self.submodules, *self.crystals)
        if min(counts) < 1:
            raise UserError(f"GATE copy numbers must all be >= 1, got {counts}")
        rings, per_ring = self.shape
        if (self.scanner.n_rings, self.scanner.crystals_per_ring) != (rings, per_ring):
            raise UserError(
                f"the GATE hierarchy has {rings} rings × {per_ring} crystals, the scanner "
                f"{self.scanner.n_rings} × {self.scanner.crystals_per_ring}; leave n_rings and "
                "crystals_per_ring out of [scanner] to take them from the hierarchy"
            )

    @property
    def shape(self) -> tuple[int, int]:
        """(rings, crystals per ring) that the hierarchy spans."""
        levels = (self.modules, self.submodules, self.crystals)
        return math.prod(z for _, z in levels), self.rsectors * math.prod(y for y, _ in levels)

    def crystal_index(self, ids: dict[str, np.ndarray]) -> np.ndarray:
        """petnet crystal index of each single from its GATE volume IDs.

        Args:
            ids: ``rsectorID``, ``moduleID``, ``submoduleID``, ``crystalID``, ``layerID``.

        Raises:
            UserError: An ID outside the hierarchy (the file belongs to another system).
        """
        limits = {
            "rsectorID": self.rsectors,
            "moduleID": math.prod(self.modules),
            "submoduleID": math.prod(self.submodules),
            "crystalID": math.prod(self.crystals),
            "layerID": self.layers,
        }
        for name, limit in limits.items():
            value = ids[name]
            if value.size and (value.min() < 0 or value.max() >= limit):
                raise UserError(
                    f"GATE {name} out of range: the system has {limit} per parent volume, the "
                    f"file has values from {int(value.min())} to {int(value.max())}"
                )
        k = ids["rsectorID"].astype(np.int64)
        ring = np.zeros_like(k)
        for name, (ny, nz) in (
            ("moduleID", self.modules),
            ("submoduleID", self.submodules),
            ("crystalID", self.crystals),
        ):
            copy = ids[name].astype(np.int64)
            k = k * ny + copy % ny  # GATE's cubic arrays number y fastest, then z
            ring = ring * nz + copy // ny
        return ring * self.shape[1] + k


def load_gate_system(path: str | os.PathLike[str]) -> GateSystem:
    """The ``GateSystem`` of a TOML file (see the module's docstring).

    Args:
        path: The TOML file.

    Raises:
        UserError: A missing or invalid file, or a scanner that does not fit the hierarchy.
    """
    data = read_toml(path)
    scanner = dict(data.get("scanner", {}))
    levels = [data.get(name, (1, 1)) for name in ("modules", "submodules", "crystals")]
    try:
        scanner.setdefault("n_rings", math.prod(int(z) for _, z in levels))
        per_ring = int(data["rsectors"]) * math.prod(int(y) for y, _ in levels)
        scanner.setdefault("crystals_per_ring", per_ring)
    except (KeyError, TypeError, ValueError):
        pass  # a missing or malformed entry: load_config names it
    return load_config(GateSystem, {**data, "scanner": scanner})


def read_gate(path: str | os.PathLike[str], system: GateSystem) -> Singles:
    """GATE singles from a ROOT (``.root``) or ASCII (any other suffix) file.

    Args:
        path: The file.
        system: The hierarchy its volume IDs refer to.

    Raises:
        UserError: A missing file, or one without the tree, branches or columns it needs.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"GATE file {path} does not exist")
    if path.suffix == ".root":
        return read_gate_root(path, system)
    return read_gate_ascii(path, system)


def read_gate_ascii(path: str | os.PathLike[str], system: GateSystem) -> Singles:
    """Singles from GATE's ASCII ``...Singles.dat`` (default column layout).

    Args:
        path: The file.
        system: The hierarchy its volume IDs refer to.

    Raises:
        UserError: A file whose lines do not have GATE's column layout.
    """
    path = Path(path)
    expected = len(ASCII_COLUMNS) + len(ASCII_NAMES)
    with path.open() as handle:
        first = next((line.split() for line in handle if line.strip()), [])
    if len(first) != expected:
        raise UserError(
            f"{path} has {len(first)} columns, a GATE cylindricalPET Singles.dat has {expected} "
            f"({' '.join(ASCII_COLUMNS + ASCII_NAMES)}); write it with every singles mask bit on"
        )
    try:
        table = np.loadtxt(path, usecols=range(len(ASCII_COLUMNS)), ndmin=2, dtype=np.float64)
    except ValueError as error:
        raise UserError(f"{path} is not a GATE Singles.dat file: {error}") from None
    columns = dict(zip(ASCII_COLUMNS, table.T, strict=True))
    return _singles(columns, system, f"GATE ASCII {path.name}")


def read_gate_root(path: str | os.PathLike[str], system: GateSystem) -> Singles:
    """Singles from the ``Singles`` tree of a GATE ROOT file (needs ``uproot``).

    Args:
        path: The file.
        system: The hierarchy its volume IDs refer to.

    Raises:
        UserError: uproot missing, or a file without the ``Singles`` tree or its branches.
    """
    try:
        import uproot
    except ModuleNotFoundError:
        raise UserError(
            "reading GATE ROOT files needs uproot: pip install 'petnet[gate]'"
        ) from None
    path = Path(path)
    try:
        handle = uproot.open(path)
    except Exception as error:  # uproot raises several kinds for files that are not ROOT
        reason = " ".join(str(error).split())  # uproot's messages span several lines
        raise UserError(f"{path} is not a ROOT file: {reason}") from None
    with handle:
        if "Singles" not in handle:
            raise UserError(f"{path} has no 'Singles' tree (found: {sorted(handle.keys())})")
        tree = handle["Singles"]
        present = set(tree.keys())
        missing = [name for name in ROOT_NEEDED if name not in present]
        if missing:
            raise UserError(
                f"{path}: the Singles tree lacks the branches {', '.join(missing)} (a "
                f"cylindricalPET system's singles have {', '.join(ROOT_NEEDED)})"
            )
        wanted = [*ROOT_NEEDED, *(name for name in ROOT_TRUTH if name in present)]
        columns = tree.arrays(wanted, library="np")
    return _singles(columns, system, f"GATE ROOT {path.name}")


def _singles(columns: dict[str, np.ndarray], system: GateSystem, source: str) -> Singles:
    """petnet singles, sorted by time, from GATE's columns (time in s, energy in MeV)."""
    crystal = system.crystal_index({name: np.asarray(columns[name]) for name in ID_NAMES})
    time_ns = np.asarray(columns["time"], dtype=np.float64) * 1e9
    order = np.argsort(time_ns, kind="stable")  # GATE orders singles by event, not by time
    truth: dict[str, Any] = {}
    if all(name in columns for name in ROOT_TRUTH):
        run = np.asarray(columns["runID"], dtype=np.int64)
        event = np.asarray(columns["eventID"], dtype=np.int64)
        phantom = np.asarray(columns["comptonPhantom"]) + np.asarray(columns["RayleighPhantom"])
        truth = {
            "decay_id": ((run << 32) + event)[order],
            "scattered": (phantom > 0)[order],
            "source_id": np.asarray(columns["sourceID"], dtype=np.int64)[order],
        }
    return Singles(
        time_ns=time_ns[order],
        crystal=crystal[order],
        energy_kev=np.asarray(columns["energy"], dtype=np.float64)[order] * 1e3,
        scanner=system.scanner,
        meta={"source": source},
        **truth,
    )
