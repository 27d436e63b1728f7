"""pytest plugin (entry point ``pytest11``): MPI and GPU test selection, and no MPI hangs.

- ``@pytest.mark.mpi(ranks=4)``: in a serial run the test is skipped ("needs mpiexec -n 4");
  under ``mpiexec -n S`` only tests with ``ranks == S`` run, everything else is skipped (a
  serial test would otherwise run S times at once).
- ``--mpi-plan FILE`` writes ``{"<ranks>": [node ids]}`` of the selected MPI tests, so a runner
  knows which ``mpiexec -n N`` calls to make.
- ``@pytest.mark.gpu``: skipped without CUDA.
- After the setup and the call of each MPI test, the ranks compare outcomes. If one rank
  failed, every rank reports the test as failed (naming the failing ranks). If a rank does not
  arrive within ``--mpi-sync-timeout`` seconds, it is stuck in a collective that a failed rank
  left, so the job is aborted with a message instead of hanging until the batch limit.
- Fixtures ``comm`` (``shared_hpc.get_comm()``), ``shared_dir`` (one fresh directory that
  every rank sees, for files that ranks exchange), ``mpiexec`` (the launcher of this
  environment, for tests that start a command under ``mpiexec -n N``; skipped without one),
  ``mpi_job`` (a Python script under ``mpiexec`` in a fresh job, for fault injection: does the
  job end in time when one rank fails?) and ``run_command`` (``python -m package ...`` in a
  fresh process, as a user's shell starts it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared_hpc.mpi import SerialComm, find_mpiexec, get_comm, serial_environ

DEFAULT_RANKS = 4
_SYNC_COMM = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("shared-hpc")
    group.addoption(
        "--mpi-plan",
        metavar="FILE",
        default=None,
        help="write the selected MPI tests as JSON {ranks: [node ids]} to FILE",
    )
    group.addoption(
        "--mpi-sync-timeout",
        type=float,
        default=120.0,
        help="seconds a rank waits for the others after an MPI test before aborting the job",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mpi(ranks=4): runs under mpiexec with the given number of ranks"
    )
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped where none is present")


def _ranks(item: pytest.Item) -> int | None:
    marker = item.get_closest_marker("mpi")
    if marker is None:
        return None
    ranks = marker.kwargs.get("ranks", marker.args[0] if marker.args else DEFAULT_RANKS)
    if not isinstance(ranks, int) or ranks < 1:
        raise pytest.UsageError(
            f"{item.nodeid}: mpi(ranks=...) must be a positive int, got {ranks!r}"
        )
    return ranks


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.hookimpl(trylast=True)  # after -m/-k deselection, so the plan lists what will run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    comm = get_comm()
    serial = isinstance(comm, SerialComm)
    size = comm.Get_size()
    plan: dict[str, list[str]] = {}
    cuda: bool | None = None
    for item in items:
        ranks = _ranks(item)
        if ranks is not None:
            plan.setdefault(str(ranks), []).append(item.nodeid)
            if serial:
                item.add_marker(pytest.mark.skip(reason=f"needs mpiexec -n {ranks}"))
            elif ranks != size:
                item.add_marker(pytest.mark.skip(reason=f"needs {ranks} ranks, running on {size}"))
        elif not serial and size > 1:
            item.add_marker(pytest.mark.skip(reason="serial test; run it without mpiexec"))
        if item.get_closest_marker("gpu") is not None:
            cuda = _cuda_available() if cuda is None else cuda
            if not cuda:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))
    if not serial and size > 1 and any(_ranks(item) == size for item in items):
        # The ranks compare test outcomes on a duplicate, so the tests' own messages on
        # COMM_WORLD can never be matched with the plugin's.
        config.stash[_SYNC_COMM] = comm.Dup()
    plan_file = config.getoption("--mpi-plan")
    if plan_file and comm.Get_rank() == 0:
        Path(plan_file).write_text(json.dumps(plan, indent=2) + "\n")


_PASSED, _FAILED, _SKIPPED = 0, 1, 2


def _agree(comm: Any, state: int, deadline_s: float, what: str) -> list[int]:
    """Every rank's state for this phase, learned with a non-blocking allgather and a deadline.

    A rank that fails an assertion often leaves the others waiting in a collective it will
    never join; they never arrive here, and waiting for them forever would hang the whole job.
    """
    import numpy as np

    send = np.array([state], dtype="i")
    states = np.zeros(comm.Get_size(), dtype="i")
    request = comm.Iallgather(send, states)
    end = time.monotonic() + deadline_s
    while not request.Test():
        if time.monotonic() > end:
            sys.stderr.write(
                f"\n[shared-hpc] rank {comm.Get_rank()}: other ranks did not finish {what} within "
                f"{deadline_s:.0f} s (a rank that failed left them in a collective); aborting the "
                "MPI job instead of hanging\n"
            )
            sys.stderr.flush()
            comm.Abort(1)
        time.sleep(0.01)
    return [int(x) for x in states]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if call.when not in ("setup", "call") or _ranks(item) is None:
        return
    comm = item.config.stash.get(_SYNC_COMM, None)
    if comm is None:
        return
    state = _FAILED if report.failed else _SKIPPED if report.skipped else _PASSED
    deadline = item.config.getoption("--mpi-sync-timeout")
    states = _agree(comm, state, deadline, f"{call.when} of {item.nodeid}")
    failed = [r for r, s in enumerate(states) if s == _FAILED]
    skipped = [r for r, s in enumerate(states) if s == _SKIPPED]
    if state == _FAILED:
        return
    if failed:
        report.outcome = "failed"
        report.longrepr = f"{call.when} failed on rank(s) {failed} of {comm.Get_size()}"
    elif skipped and state == _PASSED and call.when == "setup":
        # Keep the ranks together: if one rank skips, none runs the test body.
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"skipped on rank(s) {skipped}")


@pytest.fixture
def comm() -> Any:
    """The communicator of this test run (mpi4py's COMM_WORLD under mpiexec, else serial)."""
    return get_comm()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A fresh directory that is the same on every rank (rank 0 creates and removes it)."""
    comm = get_comm()
    path = tempfile.mkdtemp(prefix="shared-hpc-test-") if comm.Get_rank() == 0 else None
    path = Path(comm.bcast(path, root=0))
    yield path
    comm.barrier()
    if comm.Get_rank() == 0:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def mpiexec() -> str:
    """Path of ``mpiexec`` (this environment's, else ``PATH``'s); the test is skipped without.

    Start child launches with ``env=shared_hpc.serial_environ()``, so that a test running under
    ``mpiexec`` itself does not hand its own rank's variables to the new job.
    """
    found = find_mpiexec()
    if found is None:
        pytest.skip("needs mpiexec")
    return found


@pytest.fixture
def run_command() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_command(module, *args, cwd=None, env=None, timeout=300)``: run
    ``python -m module args`` in a fresh process and return the finished process (text output).

    The child gets this environment without MPI launcher variables (plus ``env``), so a test
    sees every line a user would see: warnings of dependencies included.
    """

    def run(
        module: str,
        *args: object,
        cwd: str | Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", module, *map(str, args)],
            cwd=cwd,
            env={**serial_environ(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


@dataclass(frozen=True)
class MpiJob:
    """A finished ``mpiexec`` job: its exit code, output and wall time.

    Attributes:
        returncode: The launcher's exit code.
        stdout: Everything the ranks printed to stdout.
        stderr: Everything the ranks printed to stderr.
        seconds: Wall time from launch to the end of the job.
    """

    returncode: int
    stdout: str
    stderr: str
    seconds: float


@pytest.fixture
def mpi_job(mpiexec: str, tmp_path: Path) -> Callable[..., MpiJob]:
    """``mpi_job(script, *args, ranks=2, timeout=180)``: run the Python source ``script``
    under ``mpiexec -n ranks`` in a fresh job and return how it ended (an ``MpiJob``).

    For fault injection: a script that breaks one rank (e.g. replaces a function on rank 1)
    and then calls the package's ``main``, to check that the whole job ends in time instead of
    hanging. The job gets this environment without launcher variables; a job still running
    after ``timeout`` seconds fails the test.
    """

    def run(script: str, *args: object, ranks: int = 2, timeout: float = 180) -> MpiJob:
        path = tmp_path / "mpi_job.py"
        path.write_text(script)
        started = time.monotonic()
        done = subprocess.run(
            [mpiexec, "-n", str(ranks), sys.executable, str(path), *map(str, args)],
            env=serial_environ(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return MpiJob(done.returncode, done.stdout, done.stderr, time.monotonic() - started)

    return run
