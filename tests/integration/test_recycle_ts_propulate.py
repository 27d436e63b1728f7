"""propulate-hpo tunes a recycle-ts forecaster over MPI: two worker ranks, two candidates each,
the best candidate retrained and scored beside the profiles and Holt-Winters."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shared_hpc import RunRecord, serial_environ

pytest.importorskip("recycle_ts")
pytest.importorskip("propulate_hpo")


def test_propulate_hpo_tunes_recycle_on_two_ranks(tmp_path, mpiexec):
    out = tmp_path / "run"
    command = [
        mpiexec, "-n", "2", sys.executable, "-m", "recycle_ts", "hpo", "--dataset", "taylor",
        "--generations", "2", "--epochs", "3", "--output", str(out),
    ]  # fmt: skip
    env = {**serial_environ(), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    record = RunRecord.read(out / "results.json")
    assert record.package == "recycle-ts" and record.environment["mpi_size"] == 2
    metrics = record.metrics
    candidates = metrics["candidates"]
    assert metrics["evaluations"] == 4 and {c["worker"] for c in candidates} == {0, 1}
    best = min(candidates, key=lambda c: c["loss"])
    assert metrics["best_params"] == best["params"]
    assert 16 <= best["params"]["width"] <= 128 and 1e-4 <= best["params"]["lr"] <= 3e-3
    # the retrained best reproduces the candidate's validation loss: same settings, same seed
    assert metrics["best_validation_loss"] == pytest.approx(best["loss"], rel=1e-6)
    test = metrics["best_test"]
    assert set(test) >= {"recycle", "seasonal_naive", "day_type", "ets"}
    assert record.headline["value"] == test["recycle"]["mae"]
    assert (out / "model" / "model.json").exists()
