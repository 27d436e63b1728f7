"""Run records: round trip, validation, environment, and atomic writes that survive a crash."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import shared_hpc
from shared_hpc import Headline, RunRecord, environment_info
from shared_hpc.energy import EnergyReport, NodeReading

HEADLINE = Headline("MSE", 0.5, paper=0.4, higher_is_better=False)


@dataclass
class Cfg:
    data: Path = Path("x.nc")
    epochs: int = 2


def _record(**kwargs) -> RunRecord:
    energy = EnergyReport.from_readings(
        [NodeReading("n1", {"cpu": 10.0}, {"cpu": "rapl"}, {"cpu": 1})], seconds=2.0
    )
    args = dict(
        config=Cfg(),
        metrics={"loss": np.float32(0.25), "curve": np.arange(3), "nan": math.nan},
        headline=HEADLINE,
        energy=energy,
        wall_time_s=3.5,
        artifacts=["plot.png"],
    )
    args.update(kwargs)
    return RunRecord.create("my-pkg", "1.2.3", **args)


def test_round_trip(tmp_path):
    record = _record()
    path = record.write(tmp_path / "sub" / "results.json")
    data = json.loads(path.read_text())
    assert data["schema"] == "shared-hpc/run-record/1"
    assert data["config"] == {"data": "x.nc", "epochs": 2}
    assert data["metrics"] == {"loss": 0.25, "curve": [0, 1, 2], "nan": None}
    assert data["command"] == sys.argv
    assert data["energy"]["joules"] == {"cpu": 10.0} and data["energy"]["method"] == "rapl"
    back = RunRecord.read(path)
    assert back == RunRecord(**{k: v for k, v in data.items()})
    assert back.energy_report.total_joules == 10.0
    assert back.headline == dataclasses.asdict(HEADLINE) and back.artifacts == ["plot.png"]
    assert back.started_at < back.finished_at


def test_environment_names_machine_and_libraries():
    env = environment_info(packages=["shared-hpc"])
    for key in (
        "host",
        "platform",
        "cpu_model",
        "cpu_count",
        "python",
        "numpy",
        "mpi4py",
        "git_commit",
    ):
        assert key in env
    assert env["cpu_count"] >= 1 and env["python"].count(".") == 2
    assert env["packages"]["shared-hpc"] == shared_hpc.__version__
    assert env["mpi_size"] == 1


def test_git_commit_of_a_checkout(tmp_path, monkeypatch):
    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    git("init", "-q")
    (tmp_path / "f.txt").write_text("1")
    git("add", "f.txt")
    git("commit", "-q", "-m", "first")
    monkeypatch.chdir(tmp_path)
    env = environment_info()
    assert env["git_commit"] == git("rev-parse", "HEAD") and env["git_dirty"] is False
    (tmp_path / "f.txt").write_text("2")
    assert environment_info()["git_dirty"] is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"headline": {"name": "x"}}, "headline must be a dict with exactly the keys"),
        ({"wall_time_s": -1.0}, "wall_time_s must be a non-negative number"),
        ({"metrics": [1, 2]}, "metrics must be a dict"),
    ],
)
def test_bad_records_are_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        _record(**change)


def test_reading_foreign_or_broken_files(tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "someone-else/1"}))
    with pytest.raises(ValueError, match="not a run record"):
        RunRecord.read(other)
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": "shared-hpc/run-record/1", ')
    with pytest.raises(ValueError, match="not valid JSON"):
        RunRecord.read(broken)
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"schema": "shared-hpc/run-record/1", "package": "p"}))
    with pytest.raises(ValueError, match="lacks the run-record field"):
        RunRecord.read(partial)
