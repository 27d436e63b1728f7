"""``run_main``: how every package's command line runs a subcommand, and how it fails.

A package's ``cli.py`` builds an ``argparse`` parser whose subcommands each set their handler
with ``set_defaults(run=handler)``; ``main(argv)`` is ``run_main(parser, argv)``. The handler
takes the parsed arguments and returns an exit code (``None`` means 0). ``run_main`` gives every
way a command can end badly one behaviour in every package:

- a ``UserError`` (bad setting, missing or foreign file): its message as one line, exit code 2;
- an ``OSError`` (disk full, read-only file system): one line that also names the files the
  command completed, exit code 1;
- Ctrl-C: one line naming the files completed before the interrupt, exit code 130;
- ``SystemExit`` raised inside the command (e.g. by a user's function): one line naming where,
  its exit code;
- anything else is a defect: its traceback is kept.

Under MPI a failure on one rank must never leave the others waiting in a collective. A rank
that fails waits a few seconds (``AGREEMENT_WINDOW_S``) for every other rank to fail too, on a
communicator of its own: when all do, as when every rank refuses the same bad input, rank 0
prints the one line and every rank exits normally. Otherwise the failing rank prints its line
or traceback with its rank number and ends the whole job with ``MPI_Abort``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared_hpc.errors import UserError
from shared_hpc.files import saved_paths
from shared_hpc.mpi import Comm, get_comm

__all__ = ["AGREEMENT_WINDOW_S", "run_main"]

AGREEMENT_WINDOW_S = 5.0
"""How long a failed rank waits for the others to fail too before it aborts the MPI job."""


_FORWARD_S = 0.5
"""Pause between a rank's last lines and ``MPI_Abort``: Hydra's proxies can drop output that is
still in flight when the job is killed."""


def _saved_summary(paths: list[Path]) -> str:
    """The files completed so far, in a few words (the newest named)."""
    if not paths:
        return "no file was written"
    unique = list(dict.fromkeys(p.resolve() for p in paths))
    newest = os.path.relpath(unique[-1])
    if len(unique) == 1:
        return f"{newest} is complete"
    folder = os.path.relpath(os.path.commonpath([p.parent for p in unique]))
    return f"{len(unique)} files under {folder} are complete, the newest {newest}"


def _os_error_text(error: OSError) -> str:
    """``No space left on device: 'run/best.pt'`` rather than ``[Errno 28] ...``."""
    reason = error.strerror or str(error)
    if error.filename is None:
        return reason
    return f"{reason}: {os.fsdecode(error.filename)!r}"


def _raised_at(error: BaseException) -> str:
    """``file.py:12``: the innermost frame of the traceback, where the error was raised."""
    frames = traceback.extract_tb(error.__traceback__)
    return f"{os.path.relpath(frames[-1].filename)}:{frames[-1].lineno}" if frames else "?"


def _exit_code(error: SystemExit) -> int:
    code = error.code
    return code if isinstance(code, int) else (0 if code is None else 1)


class _Failure:
    """What a failed command reports and how it exits: one line, or a defect's traceback."""

    def __init__(self, error: BaseException, command: str, saved_before: int) -> None:
        self.error = error
        saved = _saved_summary(saved_paths()[saved_before:])
        self.defect = False
        if isinstance(error, UserError):
            self.code, self.line = 2, f"{command}: error: {error}"
        elif isinstance(error, KeyboardInterrupt):
            self.code, self.line = 130, f"{command}: interrupted; {saved}"
        elif isinstance(error, OSError):
            self.code, self.line = 1, f"{command}: error: {_os_error_text(error)}; {saved}"
        elif isinstance(error, SystemExit):
            self.code = _exit_code(error)
            self.line = f"{command}: stopped by SystemExit({error.code!r}) at {_raised_at(error)}"
        else:
            self.code, self.line, self.defect = 1, "", True

    def text(self) -> str:
        if not self.defect:
            return self.line + "\n"
        return "".join(traceback.format_exception(self.error))


def _world(comm: Comm | None) -> Comm | None:
    """The communicator of the job, or ``None`` under a launcher without mpi4py."""
    if comm is not None:
        return comm
    try:
        return get_comm()
    except RuntimeError:
        return None


def _all_failed(agreement: Any, window_s: float) -> bool:
    """Whether every rank reaches its failure handler within ``window_s`` (a non-blocking
    barrier on a communicator that nothing else uses, so it cannot meet a barrier elsewhere)."""
    request = agreement.Ibarrier()
    deadline = time.monotonic() + window_s
    while not request.Test():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def run_main(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
    *,
    comm: Comm | None = None,
    agreement_window_s: float = AGREEMENT_WINDOW_S,
) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the chosen command's handler.

    Args:
        parser: The package's parser; each subcommand sets ``run`` with ``set_defaults``.
        argv: The arguments; ``None`` reads the command line.
        comm: The job's communicator (default: ``get_comm()``); collective over it when it has
            more than one rank.
        agreement_window_s: How long a failed rank waits for the others to fail too.

    Returns:
        The handler's exit code; 2 after a ``UserError``, 1 after an ``OSError``, 130 after
        Ctrl-C. A defect is re-raised on a single rank; under MPI it is printed with the rank
        number and ends the job (``MPI_Abort``) unless every rank failed.
    """
    args = parser.parse_args(argv)
    run = getattr(args, "run", None)
    if run is None:
        parser.error("choose a command")
    if not callable(run):
        raise TypeError(
            f"the handler of {parser.prog!r} was replaced by an argument whose dest is 'run'; "
            "give that argument another dest"
        )
    command = " ".join(filter(None, [parser.prog, getattr(args, "command", None)]))
    world = _world(comm)
    parallel = world is not None and world.Get_size() > 1
    agreement = world.Dup() if parallel else None
    saved_before = len(saved_paths())
    try:
        code = run(args)
    except BaseException as error:  # every way out is reported, on every rank
        failure = _Failure(error, command, saved_before)
        if agreement is None:
            if failure.defect:
                raise
            if world is None or world.Get_rank() == 0:
                sys.stderr.write(failure.text())
            return failure.code
        return _end_parallel_failure(failure, world, agreement, agreement_window_s)
    if agreement is not None:
        agreement.Free()
    return 0 if code is None else int(code)


def _end_parallel_failure(failure: _Failure, world: Comm, agreement: Any, window_s: float) -> int:
    """Exit with the others when every rank failed; else report with the rank and abort."""
    rank, size = world.Get_rank(), world.Get_size()
    if _all_failed(agreement, window_s):
        if failure.defect:
            sys.stderr.write(f"rank {rank} of {size}: {failure.text()}")
        elif rank == 0:
            sys.stderr.write(failure.text())
        sys.stderr.flush()
        return failure.code
    sys.stderr.write(
        f"rank {rank} of {size}: {failure.text().rstrip()}\n"
        f"rank {rank} of {size}: the other ranks did not fail within {window_s:g} s; "
        "aborting the MPI job\n"
    )
    sys.stderr.flush()
    time.sleep(_FORWARD_S)  # let the launcher forward the lines before the job is torn down
    world.Abort(failure.code or 1)
    return failure.code  # only a stand-in communicator's Abort returns
