"""Launching child runs for the tests that kill a run and resume it, or run the command line
under ``mpiexec``: ``launch(args, ranks=None)`` starts ``python args`` in its own session."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shared_hpc import serial_environ


@pytest.fixture
def launch(request):
    """``launch(args, ranks=None)``: start ``python args`` (under ``mpiexec -n ranks`` if given)
    in a new session, with one OpenMP thread, its output and errors in one pipe. A new session
    lets a test kill the whole launch tree (see ``test_checkpoint._kill_9``)."""

    def start(args: list[str], ranks: int | None = None, **kwargs) -> subprocess.Popen:
        command = [sys.executable, *args]
        if ranks is not None:  # the plugin's mpiexec fixture: skipped where there is none
            command = [request.getfixturevalue("mpiexec"), "-n", str(ranks), *command]
        return subprocess.Popen(
            command,
            env={"OMP_NUM_THREADS": "1", **serial_environ()},
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **kwargs,
        )

    return start
