"""``run_main``: how every package's command line runs a subcommand, and how it fails.

A package's ``cli.py`` builds an ``argparse`` parser whose subcommands each set their handler
with ``set_defaults(run=handler)``; ``main(argv)`` is ``run_main(parser, argv)``. The handler
takes the parsed arguments and returns an exit code (``None`` means 0). ``run_main`` turns the
three ways a command can end badly into one behaviour for every package:

- a ``UserError`` (bad setting, missing or foreign file): its message as one line on stderr,
  exit code 2;
- Ctrl-C: one line that says which files the command completed before the interrupt, exit
  code 130;
- anything else is a defect: its traceback is kept.

Under MPI the one line is printed by rank 0 only, as every rank validates the same input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from shared_hpc.errors import UserError
from shared_hpc.files import saved_paths
from shared_hpc.mpi import Comm, get_comm

__all__ = ["run_main"]


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


def run_main(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
    *,
    comm: Comm | None = None,
) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the chosen command's handler.

    Args:
        parser: The package's parser; each subcommand sets ``run`` with ``set_defaults``.
        argv: The arguments; ``None`` reads the command line.
        comm: Communicator whose rank 0 reports errors (default: ``get_comm()``).

    Returns:
        The handler's exit code, 2 after a ``UserError``, 130 after Ctrl-C.
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
    saved_before = len(saved_paths())
    try:
        code = run(args)
    except UserError as error:
        if _reports(comm):
            print(f"{command}: error: {error}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        if _reports(comm):
            saved = _saved_summary(saved_paths()[saved_before:])
            print(f"{command}: interrupted; {saved}", file=sys.stderr)
        return 130
    return 0 if code is None else int(code)


def _reports(comm: Comm | None) -> bool:
    try:
        comm = get_comm() if comm is None else comm
    except RuntimeError:  # under a launcher without mpi4py: every rank speaks
        return True
    return comm.Get_rank() == 0
