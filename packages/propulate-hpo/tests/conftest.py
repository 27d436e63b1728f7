"""Shared fixtures: a directory every MPI rank sees, and helpers to launch mpiexec runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def mpiexec() -> str:
    """mpiexec of this Python environment (the mpich wheel), else the one on PATH."""
    local = Path(sys.executable).with_name("mpiexec")
    found = str(local) if local.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("mpiexec not found")
    return found


def clean_env() -> dict[str, str]:
    """Environment for a child launch: no MPI variables inherited from a parent launch."""
    prefixes = ("PMI_", "PMIX_", "OMPI_", "MPI_LOCAL", "HYDRA_", "SLURM_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _launch(args: list[str], ranks: int | None = None, **kwargs) -> subprocess.Popen:
    """Start ``python args`` (under ``mpiexec -n ranks`` if given) in its own session."""
    command = [sys.executable, *args]
    if ranks is not None:
        command = [mpiexec(), "-n", str(ranks), *command]
    return subprocess.Popen(
        command,
        env=clean_env(),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


@pytest.fixture
def launch():
    """``launch(args, ranks=None)``: start ``python args`` (under mpiexec) in its own session."""
    return _launch
