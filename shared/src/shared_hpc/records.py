"""Run records: one JSON schema for the results of every package, written atomically.

A record says what ran (package, version, command, config), what came out (metrics, a headline
figure and the paper's value for it), what it cost (wall time, energy with its method) and where
(host, CPU, GPU, library versions, git commit). ``shared-hpc run-demos`` builds its summary table
from these files, so every package writes the same fields.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from shared_hpc.hardware import cpu_count, cpu_model

__all__ = [
    "SCHEMA",
    "RunRecord",
    "environment_info",
    "write_json_atomic",
    "write_text_atomic",
]

SCHEMA = "shared-hpc/run-record/1"
_HEADLINE_KEYS = {"name", "value", "unit", "paper", "higher_is_better"}
_DEFAULT_PACKAGES = ("shared-hpc", "numpy", "torch", "mpi4py", "codecarbon")


def replace_marked_block(path: str | os.PathLike[str], name: str, text: str) -> Path:
    """Replace what stands between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path``.

    How benchmark scripts keep the generated figures of a README or BENCHMARKS.md in sync
    without touching the prose around them; written atomically.
    """
    path = Path(path)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    old = path.read_text(encoding="utf-8")
    if start not in old or end not in old.split(start, 1)[1]:
        raise ValueError(f"{path} lacks the markers {start} ... {end}")
    before, rest = old.split(start, 1)
    after = rest.split(end, 1)[1]
    return write_text_atomic(path, f"{before}{start}\n{text.strip()}\n{end}{after}")


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` so that ``path`` holds either the old or the complete new content.

    The text goes to a temporary file in the same directory, is flushed to disk, then renamed
    over ``path`` (a rename within one file system is atomic), so a crash never leaves a
    truncated file behind. Parent directories are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return path


def _jsonable(obj: Any) -> Any:
    """Plain JSON values: NumPy scalars and arrays, paths, dataclasses, sets, non-finite floats."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist"):  # NumPy arrays and scalars, torch tensors
        return _jsonable(obj.tolist())
    if hasattr(obj, "to_dict"):
        return _jsonable(obj.to_dict())
    raise TypeError(f"cannot store {type(obj).__name__} in JSON: {obj!r}")


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically (see :func:`write_text_atomic`).

    NumPy values, paths and dataclasses are converted; NaN and infinities become ``null``,
    because strict JSON has no spelling for them.
    """
    return write_text_atomic(path, json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n")


def _git_commit(start: Path) -> tuple[str | None, bool | None]:
    """Commit and dirty flag of the git checkout containing ``start``, if any."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=start, capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=start,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head.stdout.strip(), bool(status.stdout.strip()) if status.returncode == 0 else None


def _source_dir(package: str | None) -> Path:
    """Directory of the package's code (so an editable checkout reports its commit), else cwd."""
    if package:
        try:
            spec = find_spec(package.replace("-", "_"))
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin:
            return Path(spec.origin).parent
    return Path.cwd()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _loaded_mpi() -> Any:
    """mpi4py's MPI module if this process already started MPI (importing it would start it)."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is None or not mpi.Is_initialized() or mpi.Is_finalized():
        return None
    return mpi


def _mpi_library() -> str | None:
    mpi = _loaded_mpi()
    if mpi is None:
        return None
    return " ".join(mpi.Get_library_version().replace("\x00", "").splitlines()[0].split())


@functools.cache
def _gpu_model() -> str | None:
    from shared_hpc.energy.nvml import nvml_devices

    names = [d["name"] for d in nvml_devices()]
    if not names and "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if not names:
        return None
    return ", ".join(f"{names.count(n)} x {n}" for n in dict.fromkeys(names))


def environment_info(
    comm: Any = None, packages: tuple[str, ...] | list[str] | None = None
) -> dict[str, Any]:
    """Where and with what a run happened: host, CPU, GPU, Python and library versions, git.

    Nothing heavy is imported for it: torch's CUDA version is read only if torch is loaded, the
    MPI library only if mpi4py is loaded. ``packages`` are distributions whose versions to list
    (default: shared-hpc, numpy, torch, mpi4py, codecarbon); the first one's source checkout
    gives ``git_commit``.
    """
    names = list(dict.fromkeys([*(packages or ()), *_DEFAULT_PACKAGES]))
    torch = sys.modules.get("torch")
    commit, dirty = _git_commit(_source_dir(packages[0] if packages else None))
    size = None
    if comm is not None:
        size = comm.Get_size()
    elif _loaded_mpi() is not None:
        size = _loaded_mpi().COMM_WORLD.Get_size()
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": cpu_count(),
        "gpu_model": _gpu_model(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "torch": _version("torch"),
        "cuda": getattr(getattr(torch, "version", None), "cuda", None) if torch else None,
        "mpi_library": _mpi_library(),
        "mpi4py": _version("mpi4py"),
        "mpi_size": size or 1,
        "git_commit": commit,
        "git_dirty": dirty,
        "packages": {name: _version(name) for name in names},
    }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class RunRecord:
    """The results of one run of one package, in the schema ``shared-hpc/run-record/1``.

    Create it with :meth:`create`, which fills the command line, times and environment.
    ``headline`` is the one figure the package's summary shows: ``{"name", "value", "unit",
    "paper", "higher_is_better"}`` with ``paper`` the value the paper reports (or ``None``).
    """

    package: str
    version: str
    command: list[str]
    config: dict[str, Any]
    metrics: dict[str, Any]
    wall_time_s: float
    started_at: str
    finished_at: str
    environment: dict[str, Any]
    headline: dict[str, Any] | None = None
    energy: dict[str, Any] | None = None
    artifacts: list[str] = field(default_factory=list)
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        if self.schema != SCHEMA:
            raise ValueError(f"unsupported run-record schema {self.schema!r}; expected {SCHEMA!r}")
        if not isinstance(self.package, str) or not self.package:
            raise ValueError("package must be a non-empty string")
        for name in ("config", "metrics", "environment"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be a dict, got {type(getattr(self, name)).__name__}")
        wall = self.wall_time_s
        if isinstance(wall, bool) or not isinstance(wall, (int, float)) or not wall >= 0:
            raise ValueError(f"wall_time_s must be a non-negative number, got {wall!r}")
        headline = self.headline
        if headline is not None and (
            not isinstance(headline, dict) or set(headline) != _HEADLINE_KEYS
        ):
            raise ValueError(
                f"headline must be a dict with exactly the keys {sorted(_HEADLINE_KEYS)}"
            )

    @classmethod
    def create(
        cls,
        package: str,
        version: str,
        *,
        config: Any,
        metrics: dict[str, Any],
        headline: dict[str, Any] | None = None,
        energy: Any = None,
        wall_time_s: float,
        started_at: dt.datetime | str | None = None,
        artifacts: tuple[str, ...] | list[str] = (),
        comm: Any = None,
    ) -> RunRecord:
        """A record for a run that just finished; ``config`` may be a dataclass, ``energy`` an
        :class:`~shared_hpc.energy.EnergyReport`."""
        finished = _now()
        if started_at is None:
            started_at = finished - dt.timedelta(seconds=float(wall_time_s))
        if isinstance(started_at, dt.datetime):
            started_at = started_at.astimezone(dt.timezone.utc).isoformat()
        return cls(
            package=package,
            version=version,
            command=list(sys.argv),
            config=_jsonable(config),
            metrics=_jsonable(metrics),
            headline=_jsonable(headline),
            energy=_jsonable(energy),
            wall_time_s=float(wall_time_s),
            started_at=started_at,
            finished_at=finished.isoformat(),
            environment=environment_info(comm, packages=(package, "shared-hpc")),
            artifacts=[str(a) for a in artifacts],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            **{k: v for k, v in dataclasses.asdict(self).items() if k != "schema"},
        }

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the record as JSON, atomically."""
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> RunRecord:
        """Load and check a record; a foreign or damaged file raises ``ValueError`` naming it."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err})") from None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"{path} is not a run record of schema {SCHEMA!r} (found {found!r})")
        fields = dataclasses.fields(cls)
        names = {f.name for f in fields}
        missing = [
            f.name
            for f in fields
            if f.name not in data
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise ValueError(f"{path} lacks the run-record field(s) {missing}")
        try:
            return cls(**{k: v for k, v in data.items() if k in names})
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    @property
    def energy_report(self) -> Any:
        """The energy as an :class:`~shared_hpc.energy.EnergyReport` (``None`` if not measured)."""
        if self.energy is None:
            return None
        from shared_hpc.energy.report import EnergyReport

        return EnergyReport.from_dict(self.energy)
