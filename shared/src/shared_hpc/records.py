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
import os
import platform
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from shared_hpc.files import jsonable, write_json_atomic
from shared_hpc.hardware import cpu_count, cpu_model
from shared_hpc.mpi import Comm

__all__ = ["SCHEMA", "Headline", "RunRecord", "environment_info"]

SCHEMA = "shared-hpc/run-record/1"
_DEFAULT_PACKAGES = ("shared-hpc", "numpy", "torch", "mpi4py", "codecarbon")


@dataclass(frozen=True)
class Headline:
    """The one figure a run is summed up by, beside the paper's value for it.

    Attributes:
        name: What the figure is, e.g. ``"validation coincidence F1"``.
        value: The figure this run reached (``None`` if it could not be computed).
        unit: Its unit, ``""`` for a ratio or a score.
        paper: The value the paper reports for the same setting, ``None`` if it reports none.
        higher_is_better: Whether a larger value is the better one.
    """

    name: str
    value: float | None
    unit: str = ""
    paper: float | None = None
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("a headline needs a name")


_HEADLINE_KEYS = {f.name for f in dataclasses.fields(Headline)}


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
    comm: Comm | None = None, packages: tuple[str, ...] | list[str] | None = None
) -> dict[str, Any]:
    """Where and with what a run happened: host, CPU, GPU, Python and library versions, git.

    Nothing heavy is imported for it: torch's CUDA version is read only if torch is loaded, the
    MPI library only if mpi4py is loaded.

    Args:
        comm: The run's communicator, for the number of ranks.
        packages: Distributions whose versions to list besides shared-hpc, numpy, torch,
            mpi4py and codecarbon; the first one's source checkout gives ``git_commit``.
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

    Create it with ``create``, which fills the command line, times and environment (or let a
    ``shared_hpc.Recorder`` do it). ``headline`` is the one figure the package's summary shows,
    a ``Headline`` stored as a dict of its fields.
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
        headline: Headline | None = None,
        energy: Any = None,
        wall_time_s: float,
        started_at: dt.datetime | str | None = None,
        artifacts: tuple[str, ...] | list[str] = (),
        comm: Comm | None = None,
    ) -> RunRecord:
        """A record for a run that just finished.

        Args:
            package: Distribution name, e.g. ``"petnet"``.
            version: Its version.
            config: The run's settings (a dataclass or a dict).
            metrics: What came out, as JSON-ready values.
            headline: The one figure of the run.
            energy: An ``EnergyReport`` (or its dict), ``None`` if not measured.
            wall_time_s: Wall time of the run.
            started_at: When it began (default: ``wall_time_s`` before now).
            artifacts: Files the run wrote, relative to the record.
            comm: Communicator of the run, for the number of ranks.
        """
        finished = _now()
        if started_at is None:
            started_at = finished - dt.timedelta(seconds=float(wall_time_s))
        if isinstance(started_at, dt.datetime):
            started_at = started_at.astimezone(dt.timezone.utc).isoformat()
        return cls(
            package=package,
            version=version,
            command=list(sys.argv),
            config=jsonable(config),
            metrics=jsonable(metrics),
            headline=jsonable(headline),
            energy=jsonable(energy),
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
        """The energy as an ``EnergyReport`` (``None`` if not measured)."""
        if self.energy is None:
            return None
        from shared_hpc.energy.report import EnergyReport

        return EnergyReport.from_dict(self.energy)
