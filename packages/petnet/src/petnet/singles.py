"""Time-sorted singles (time, crystal, energy) with optional ground truth, and their files.

Every method of the package reads and writes this one container. Files are HDF5
(``.h5``/``.hdf5``) or NumPy (``.npz``) with one array per field, plus the scanner description and
free metadata as JSON. Both formats are checked on load: missing fields, unequal lengths,
non-finite values, unsorted times and crystal ids outside the scanner raise a ``UserError`` that
names the problem.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from petnet.scanner import Scanner
from shared_hpc import UserError, atomic_path, check_output_file

FORMAT = "petnet-singles/1"
SUFFIXES = (".h5", ".hdf5", ".npz")
REQUIRED = ("time_ns", "crystal", "energy_kev")
TRUTH = ("decay_id", "scattered", "source_id")
DTYPES = {
    "time_ns": np.float64,
    "crystal": np.int32,
    "energy_kev": np.float32,
    "decay_id": np.int64,
    "scattered": np.bool_,
    "source_id": np.int16,
}


@dataclass
class Singles:
    """Detected photons, sorted by time; truth arrays are ``None`` for measured data.

    Args:
        time_ns: Detection time of each single in ns.
        crystal: Crystal id of each single (see ``Scanner``).
        energy_kev: Measured energy of each single in keV.
        scanner: The scanner that detected them.
        decay_id: Ground truth: the decay each single comes from.
        scattered: Ground truth: whether its photon scattered before detection.
        source_id: Ground truth: the source of its decay.
        meta: Free metadata (the simulation settings, the acquisition length).

    Raises:
        UserError: Malformed arrays, unsorted times or unknown crystals (see ``validate``).
    """

    time_ns: np.ndarray
    crystal: np.ndarray
    energy_kev: np.ndarray
    scanner: Scanner
    decay_id: np.ndarray | None = None
    scattered: np.ndarray | None = None
    source_id: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, dtype in DTYPES.items():
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, np.ascontiguousarray(value, dtype=dtype))
        self.validate()

    def __len__(self) -> int:
        return len(self.time_ns)

    @property
    def has_truth(self) -> bool:
        """Whether the ground truth needed for training and scoring is present."""
        return self.decay_id is not None and self.scattered is not None

    @property
    def duration_ns(self) -> float:
        """Acquisition length: from the metadata if known, else the span of the singles."""
        if "duration_s" in self.meta:
            return float(self.meta["duration_s"]) * 1e9
        return float(self.time_ns[-1] - self.time_ns[0]) if len(self) > 1 else 0.0

    def validate(self, require_sorted: bool = True) -> None:
        """Check the arrays.

        Args:
            require_sorted: Refuse singles that are not sorted by time.

        Raises:
            UserError: Malformed arrays, unsorted times or unknown crystals.
        """
        n = None
        for name in (*REQUIRED, *TRUTH):
            value = getattr(self, name)
            if value is None:
                if name in REQUIRED:
                    raise UserError(f"singles field {name!r} is missing")
                continue
            if value.ndim != 1:
                raise UserError(f"singles field {name!r} must be 1-D, got shape {value.shape}")
            if n is None:
                n = len(value)
            elif len(value) != n:
                raise UserError(f"singles field {name!r} has {len(value)} entries, expected {n}")
        if (self.decay_id is None) != (self.scattered is None):
            raise UserError("ground truth needs both 'decay_id' and 'scattered'")
        if not np.all(np.isfinite(self.time_ns)):
            raise UserError("singles times contain NaN or infinite values")
        if not np.all(np.isfinite(self.energy_kev)) or np.any(self.energy_kev < 0):
            raise UserError("singles energies must be finite and >= 0 keV")
        if require_sorted and np.any(np.diff(self.time_ns) < 0):
            first = int(np.argmax(np.diff(self.time_ns) < 0))
            raise UserError(
                f"singles are not sorted by time (entry {first + 1} is earlier than entry "
                f"{first}); load with sort=True or call Singles.sorted()"
            )
        self.scanner.check_crystals(self.crystal)

    def subset(self, index: np.ndarray) -> Singles:
        """The singles selected by ``index``.

        Args:
            index: A boolean mask, a slice or a sorted index array.
        """
        picked = {name: getattr(self, name) for name in (*REQUIRED, *TRUTH)}
        picked = {k: (v[index] if v is not None else None) for k, v in picked.items()}
        return Singles(**picked, scanner=self.scanner, meta=dict(self.meta))

    @classmethod
    def concatenate(cls, parts: Sequence[Singles], gap_ns: float = 10_000.0) -> Singles:
        """Acquisitions of one scanner played one after the other, ``gap_ns`` apart.

        Decay ids are renumbered so they stay unique; useful to train one network on several
        activities or phantoms.

        Args:
            parts: The acquisitions, in the order they are played.
            gap_ns: Time between the end of one and the start of the next.

        Raises:
            UserError: No parts, or parts of different scanners.
        """
        if not parts:
            raise UserError("nothing to concatenate")
        scanner = parts[0].scanner
        if any(p.scanner != scanner for p in parts):
            raise UserError("can only concatenate singles of the same scanner")
        truth = all(p.has_truth for p in parts)
        fields: dict[str, list[np.ndarray]] = {k: [] for k in (*REQUIRED, *TRUTH)}
        start, first_id = 0.0, 0
        for part in parts:
            origin = part.time_ns[0] if len(part) else 0.0
            fields["time_ns"].append(part.time_ns - origin + start)
            fields["crystal"].append(part.crystal)
            fields["energy_kev"].append(part.energy_kev)
            if truth:
                fields["decay_id"].append(part.decay_id + first_id)
                fields["scattered"].append(part.scattered)
                first_id += int(part.decay_id.max()) + 1 if len(part) else 0
            if part.source_id is not None:
                fields["source_id"].append(part.source_id)
            start += part.duration_ns + gap_ns
        joined = {k: np.concatenate(v) if v else None for k, v in fields.items()}
        if joined["source_id"] is not None and len(joined["source_id"]) != len(joined["time_ns"]):
            joined["source_id"] = None
        meta = {"duration_s": (start - gap_ns) * 1e-9, "parts": [p.meta for p in parts]}
        return cls(**joined, scanner=scanner, meta=meta)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the singles atomically as HDF5 or npz, chosen by the file suffix.

        Args:
            path: A ``.h5``, ``.hdf5`` or ``.npz`` file (its folder is created).

        Returns:
            ``path``.

        Raises:
            UserError: Another suffix.
        """
        path = Path(path)
        suffix = _file_type(path)
        arrays = {k: getattr(self, k) for k in (*REQUIRED, *TRUTH) if getattr(self, k) is not None}
        header = {
            "format": FORMAT,
            "scanner": json.dumps(self.scanner.to_dict()),
            "meta": json.dumps(self.meta),
        }
        with atomic_path(path) as tmp:
            if suffix == ".npz":
                with open(tmp, "wb") as handle:
                    np.savez_compressed(
                        handle, **arrays, **{k: np.array(v) for k, v in header.items()}
                    )
            else:
                with h5py.File(tmp, "w") as handle:
                    group = handle.create_group("singles")
                    for name, value in arrays.items():
                        group.create_dataset(name, data=value, compression="gzip", shuffle=True)
                    handle.attrs.update(header)
        return path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        scanner: Scanner | None = None,
        sort: bool = False,
    ) -> Singles:
        """Read a singles file and check it before any work starts.

        Args:
            path: A singles file written by ``save``, or any HDF5/npz file with the arrays
                ``time_ns``, ``crystal`` and ``energy_kev`` (measured data).
            scanner: Overrides (or supplies) the stored geometry.
            sort: Sort the singles by time instead of refusing unsorted ones.

        Raises:
            UserError: The file does not exist, is not a singles file, or its arrays are
                malformed.
        """
        path = Path(path)
        if not path.is_file():
            raise UserError(f"singles file {path} does not exist")
        arrays, header = _read(path)
        missing = [name for name in REQUIRED if name not in arrays]
        if missing:
            raise UserError(f"{path}: missing field(s) {missing}; a singles file needs {REQUIRED}")
        if scanner is None:
            if "scanner" not in header:
                raise UserError(f"{path}: no scanner description stored; pass scanner=")
            scanner = Scanner.from_dict(json.loads(header["scanner"]))
        meta = json.loads(header["meta"]) if "meta" in header else {}
        fields = {name: arrays.get(name) for name in (*REQUIRED, *TRUTH)}
        for name, value in fields.items():
            if value is not None and value.dtype.kind not in "biuf":
                raise UserError(f"{path}: field {name!r} is not numeric (dtype {value.dtype})")
        if sort:
            order = np.argsort(fields["time_ns"], kind="stable")
            fields = {k: (v[order] if v is not None else None) for k, v in fields.items()}
        try:
            return cls(**fields, scanner=scanner, meta=meta)
        except ValueError as error:  # UserError from the checks, or arrays numpy refuses
            raise UserError(f"{path}: {error}") from None


def check_singles_path(path: str | os.PathLike[str]) -> Path:
    """Check, before any work, that a singles file can be written at ``path``.

    Args:
        path: The file to write.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        UserError: A suffix other than ``SUFFIXES``, or a folder that cannot be written.
    """
    _file_type(Path(path))
    return check_output_file(path)


def _file_type(path: Path) -> str:
    """The suffix of a singles file, lower case; another suffix is refused."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"unknown singles file type {suffix!r}: use .h5, .hdf5 or .npz")
    return suffix


def _read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The arrays and the header (format, scanner, meta) of a singles file."""
    names = (*REQUIRED, *TRUTH)
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in names if k in data}
                header = {k: str(data[k]) for k in ("format", "scanner", "meta") if k in data}
        else:
            with h5py.File(path, "r") as handle:
                group = handle.get("singles", handle)
                arrays = {k: group[k][()] for k in names if k in group}
                header = {
                    k: str(handle.attrs[k])
                    for k in ("format", "scanner", "meta")
                    if k in handle.attrs
                }
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"{path}: not a readable singles file ({error})") from None
    if "format" in header and header["format"] != FORMAT:
        raise UserError(f"{path}: unknown format {header['format']!r}, expected {FORMAT!r}")
    return arrays, header
