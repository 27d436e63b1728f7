"""The pytest plugin, exercised by running pytest (and mpiexec) on test files written here."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SAMPLE = """
import pytest

@pytest.mark.mpi(ranks=2)
def test_two(comm):
    assert comm.Get_size() == 2

@pytest.mark.mpi
def test_default_four(comm):
    assert comm.Get_size() == 4

@pytest.mark.mpi(ranks=2)
@pytest.mark.slow
def test_two_slow(comm):
    pass

@pytest.mark.gpu
def test_gpu():
    pass

def test_serial(comm):
    assert comm.Get_size() == 1
"""


MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
needs_mpiexec = pytest.mark.skipif(
    MPIEXEC is None or importlib.util.find_spec("mpi4py") is None, reason="needs mpiexec and mpi4py"
)


def _pytest(tmp_path: Path, *args: str, mpiexec: int | None = None, timeout: float = 120):
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: slow\n")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", *args]
    if mpiexec:
        command = [MPIEXEC, "-n", str(mpiexec), *command]
    launcher = ("PMI_", "PMIX_", "OMPI_", "HYDRA_", "MPI_LOCAL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(launcher)}
    return subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=timeout, env=env
    )


def test_serial_run_skips_mpi_tests_and_writes_the_plan(tmp_path):
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    plan = tmp_path / "plan.json"
    out = _pytest(tmp_path, "-m", "not slow", f"--mpi-plan={plan}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "needs mpiexec -n 2" in out.stdout and "needs mpiexec -n 4" in out.stdout
    assert "1 passed" in out.stdout
    assert json.loads(plan.read_text()) == {
        "2": ["test_sample.py::test_two"],
        "4": ["test_sample.py::test_default_four"],
    }
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    assert ("needs a CUDA device" in out.stdout) is not cuda


@needs_mpiexec
def test_under_mpiexec_only_matching_tests_run(tmp_path):
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    out = _pytest(tmp_path, "-m", "not slow", mpiexec=2)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("1 passed") == 2  # test_two on each rank
    assert "needs 4 ranks, running on 2" in out.stdout
    assert "serial test; run it without mpiexec" in out.stdout


@needs_mpiexec
def test_failure_on_one_rank_fails_the_test_on_every_rank(tmp_path):
    (tmp_path / "test_one_rank.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.mpi(ranks=2)
            def test_rank_one_fails_after_the_collectives(comm):
                comm.barrier()
                assert comm.rank == 0, "rank 1 disagrees"

            @pytest.mark.mpi(ranks=2)
            def test_next_one_still_runs(comm):
                assert comm.allreduce(1) == 2
            """
        )
    )
    out = _pytest(tmp_path, mpiexec=2)
    assert out.returncode != 0
    assert out.stdout.count("1 failed, 1 passed") == 2, out.stdout
    assert "call failed on rank(s) [1] of 2" in out.stdout


@needs_mpiexec
def test_rank_failing_before_a_collective_aborts_instead_of_hanging(tmp_path):
    (tmp_path / "test_hang.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.mpi(ranks=2)
            def test_rank_one_fails_before_the_barrier(comm):
                assert comm.rank == 0, "rank 1 fails early"
                comm.barrier()  # rank 0 would wait here forever
            """
        )
    )
    began = time.monotonic()
    out = _pytest(tmp_path, "--mpi-sync-timeout=3", mpiexec=2, timeout=120)
    assert out.returncode != 0
    assert time.monotonic() - began < 60
    assert "aborting the MPI job instead of hanging" in out.stderr + out.stdout


@pytest.mark.parametrize("ranks", ["0", "'four'"])
def test_bad_rank_count_is_a_usage_error(tmp_path, ranks):
    (tmp_path / "test_bad.py").write_text(
        f"import pytest\n\n@pytest.mark.mpi(ranks={ranks})\ndef test_x():\n    pass\n"
    )
    out = _pytest(tmp_path)
    assert out.returncode == 4 and "must be a positive int" in out.stdout + out.stderr
