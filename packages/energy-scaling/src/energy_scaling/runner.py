"""Run a sweep point by point, each as its own MPI job, resumable and robust to failures.

Every point runs as ``mpiexec -n R python -m energy_scaling point ...`` in a fresh process
(one rank: a plain process), so that each measures only itself, a crash or a hang of one point
cannot take the sweep down, and each gets the rank count it asks for. A point's folder
``points/<id>/`` holds its run record ``results.json`` (written atomically at its end) and its
``log.txt``; a point that failed gets ``failed.json`` instead and the sweep goes on. Running the
sweep again on the same folder skips every point with a record and retries the others; the
folder's ``sweep.json`` holds the settings, and a different sweep on the same folder is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from energy_scaling.config import SweepConfig
from energy_scaling.sweep import Point, expand
from shared_hpc import (
    RunRecord,
    UserError,
    check_resume,
    config_to_dict,
    find_mpiexec,
    load_config,
    serial_environ,
    write_json_atomic,
)

__all__ = [
    "PointOutcome",
    "SweepRun",
    "finished_record",
    "load_sweep",
    "point_command",
    "point_folder",
    "prepare_sweep",
    "run_sweep",
]

SWEEP_FILE = "sweep.json"
POINTS_DIR = "points"


@dataclass(frozen=True)
class PointOutcome:
    """How one point of a sweep ended.

    Attributes:
        point: The point.
        status: ``done`` (ran now), ``skipped`` (finished earlier) or ``failed``.
        seconds: Wall time of its job (0 when skipped).
        message: The last line of a failed job's output.
    """

    point: Point
    status: str
    seconds: float = 0.0
    message: str = ""


@dataclass
class SweepRun:
    """The outcome of every point of a sweep run."""

    folder: Path
    outcomes: list[PointOutcome]

    def ids(self, status: str) -> list[str]:
        return [o.point.id for o in self.outcomes if o.status == status]


def load_sweep(path: str | Path) -> SweepConfig:
    """A sweep from a TOML file, or from the ``sweep.json`` a sweep folder holds.

    Raises:
        UserError: The file is missing or holds an invalid sweep.
    """
    path = Path(path)
    if path.suffix == ".json":
        if not path.is_file():
            raise UserError(f"{path} does not exist")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise UserError(f"{path} is not valid JSON ({err})") from None
        return load_config(SweepConfig, data)
    return load_config(SweepConfig, path)


def point_folder(folder: Path, point: Point) -> Path:
    return folder / POINTS_DIR / point.id


def finished_record(folder: Path) -> RunRecord | None:
    """The run record of a finished point folder, ``None`` if it has none (or a damaged one)."""
    path = folder / "results.json"
    if not path.is_file():
        return None
    try:
        return RunRecord.read(path)
    except ValueError:
        return None


def prepare_sweep(sweep: SweepConfig, folder: Path, *, force: bool = False) -> SweepConfig:
    """Check the whole sweep, generate its data if needed and store it as ``sweep.json``.

    Returns:
        The sweep as its points will read it (generated data's path filled in).

    Raises:
        UserError: A point is impossible, or ``folder`` holds a different sweep (unless
            ``force``).
    """
    from energy_scaling.data import prepare_data  # torch: only once the sweep is valid

    expand(sweep)
    folder.mkdir(parents=True, exist_ok=True)
    sweep = replace(sweep, data=prepare_data(sweep.data, folder))
    current = config_to_dict(sweep)
    stored_file = folder / SWEEP_FILE
    if stored_file.exists():
        stored = json.loads(stored_file.read_text(encoding="utf-8"))
        check_resume("sweep settings", stored, current, force=force)
    write_json_atomic(stored_file, current)
    return sweep


def point_command(
    sweep_file: Path, point: Point, folder: Path, mpiexec: str | None = None
) -> list[str]:
    """The command that runs ``point``: under ``mpiexec -n R`` for more than one rank."""
    python = [sys.executable, "-m", "energy_scaling", "point"]
    args = ["--sweep", str(sweep_file), "--point", point.id, "--output", str(folder)]
    if point.ranks == 1:
        return [*python, *args]
    if mpiexec is None:
        raise UserError(f"point {point.id} needs {point.ranks} ranks but no mpiexec was found")
    return [mpiexec, "-n", str(point.ranks), *python, *args]


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def run_sweep(
    sweep: SweepConfig,
    folder: Path,
    *,
    force: bool = False,
    only: Sequence[str] = (),
    timeout_s: float | None = None,
    progress: Callable[[PointOutcome], None] | None = None,
) -> SweepRun:
    """Run every point of ``sweep`` that has no record in ``folder`` yet, one job each.

    Args:
        sweep: The sweep.
        folder: The sweep's folder (created).
        force: Continue a folder that holds a sweep with other settings.
        only: Run only the points with these ids (default: all).
        timeout_s: End a point's job after this many seconds (it counts as failed).
        progress: Called after each point.

    Raises:
        UserError: The sweep is invalid, a point needs mpiexec and none is found, or the folder
            holds another sweep; all before any point runs.
    """
    points = expand(sweep)
    unknown = sorted(set(only) - {p.id for p in points})
    if unknown:
        raise UserError(f"the sweep has no point(s) {unknown}")
    mpiexec = find_mpiexec()
    if mpiexec is None and any(p.ranks > 1 for p in points):
        raise UserError("the sweep has points with several ranks but no mpiexec was found")
    prepare_sweep(sweep, folder, force=force)
    outcomes = []
    for point in points:
        if only and point.id not in only:
            continue
        target = point_folder(folder, point)
        if finished_record(target) is not None:
            outcome = PointOutcome(point, "skipped")
        else:
            outcome = _run_point(folder / SWEEP_FILE, point, target, mpiexec, timeout_s)
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return SweepRun(folder, outcomes)


def _run_job(command: list[str], log: IO[str], timeout_s: float | None) -> int | None:
    """Run ``command`` in its own process group; its exit code, ``None`` after the timeout.

    The whole group (``mpiexec`` and every rank) ends on a timeout or when the sweep itself is
    interrupted, so no rank is left running on its own.
    """
    job = subprocess.Popen(
        command, env=serial_environ(), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        return job.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _end_group(job)
        return None
    except BaseException:  # Ctrl-C: end the point's job too, then stop the sweep
        _end_group(job)
        raise


def _end_group(job: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, sig)
        try:
            job.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def _run_point(
    sweep_file: Path, point: Point, target: Path, mpiexec: str | None, timeout_s: float | None
) -> PointOutcome:
    target.mkdir(parents=True, exist_ok=True)
    failed = target / "failed.json"
    failed.unlink(missing_ok=True)
    command = point_command(sweep_file, point, target, mpiexec)
    began = time.perf_counter()
    with open(target / "log.txt", "w", encoding="utf-8") as log:
        code = _run_job(command, log, timeout_s)
    seconds = time.perf_counter() - began
    if code == 0 and finished_record(target) is not None:
        return PointOutcome(point, "done", seconds)
    output = (target / "log.txt").read_text(encoding="utf-8", errors="replace")
    if code is None:
        message = f"ended after the timeout of {timeout_s:g} s"
    elif code == 0:
        message = "the job ended without writing results.json"
    else:
        message = f"exit code {code}: {_last_line(output)}"
    write_json_atomic(
        failed,
        {"point": point.id, "returncode": code, "message": message, "command": command},
    )
    return PointOutcome(point, "failed", seconds, message)
