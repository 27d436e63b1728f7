"""Packages used together as a user would: propulate-hpo tunes a petnet training over MPI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shared_hpc import RunRecord, serial_environ

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def test_propulate_hpo_tunes_petnet_on_two_workers_of_two_ranks(tmp_path, mpiexec):
    space = tmp_path / "space.toml"
    space.write_text(
        "[space]\n"
        'lr = { type = "float", low = 1e-4, high = 3e-2, log = true }\n'
        "miss_weight = [0.5, 4.0]\n"
    )
    out = tmp_path / "run"
    command = [
        mpiexec, "-n", "4", str(BIN / "propulate-hpo"), "run",
        "--loss", f"{HERE / 'petnet_loss.py'}:train_petnet", "--space", str(space),
        "--ranks-per-worker", "2", "--generations", "2", "--seed", "3",
        "--checkpoint", str(tmp_path / "checkpoint"), "--output", str(out),
    ]  # fmt: skip
    env = {**serial_environ(), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    record = RunRecord.read(out / "results.json")
    assert record.package == "propulate-hpo" and record.environment["mpi_size"] == 4
    metrics = record.metrics
    assert metrics["evaluations"] == 4 and metrics["ok"] == 4  # 2 workers x 2 generations
    candidates = metrics["candidates"]
    assert len(candidates) == 4 and {c["worker"] for c in candidates} == {0, 1}
    assert all(0.0 <= c["loss"] <= 1.0 for c in candidates)
    assert all(c["energy_j"] > 0 for c in candidates)  # each candidate's training, measured
    assert sum(c["energy_j"] for c in candidates) < 2 * record.energy["total_joules"]
    best = metrics["best_params"]
    assert 1e-4 <= best["lr"] <= 3e-2 and 0.5 <= best["miss_weight"] <= 4.0
    assert record.headline["value"] == min(c["loss"] for c in candidates)
