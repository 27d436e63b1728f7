"""Run records: round trip, validation, environment, and atomic writes that survive a crash."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from shared_hpc import (
    RunRecord,
    environment_info,
    replace_marked_block,
    write_json_atomic,
    write_text_atomic,
)
from shared_hpc.energy import EnergyReport, NodeReading

HEADLINE = {"name": "MSE", "value": 0.5, "unit": "", "paper": 0.4, "higher_is_better": False}


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
    assert back.headline == HEADLINE and back.artifacts == ["plot.png"]
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
    assert env["packages"]["shared-hpc"] == "0.1.0"
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


def test_atomic_write_replaces_content_and_converts_values(tmp_path):
    path = tmp_path / "a.json"
    write_json_atomic(path, {"x": np.int64(3), "p": Path("/d"), "inf": math.inf})
    assert json.loads(path.read_text()) == {"x": 3, "p": "/d", "inf": None}
    write_text_atomic(path, "second\n")
    assert path.read_text() == "second\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left
    with pytest.raises(TypeError, match="cannot store object"):
        write_json_atomic(path, {"bad": object()})
    assert path.read_text() == "second\n"  # a failed write changes nothing
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_crash_in_the_middle_of_a_write_leaves_the_old_file_whole(tmp_path):
    """The writer is killed (SIGKILL) after half the data reached the temporary file."""
    target = tmp_path / "results.json"
    write_json_atomic(target, {"generation": 1})
    script = f"""
import os, signal
import shared_hpc.records as records
real_write = records.os.fdopen

class Dying:
    def __init__(self, handle):
        self.handle = handle
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return False
    def write(self, text):
        self.handle.write(text[: len(text) // 2])
        self.handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    def __getattr__(self, name):
        return getattr(self.handle, name)

records.os.fdopen = lambda *a, **k: Dying(real_write(*a, **k))
records.write_json_atomic({str(target)!r}, {{"generation": 2, "payload": "x" * 100000}})
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -9  # really killed mid-write
    assert json.loads(target.read_text()) == {"generation": 1}
    leftovers = [p for p in tmp_path.iterdir() if p != target]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".results.json.")
    assert 0 < leftovers[0].stat().st_size < 100000  # the half-written data never became the file


def test_replace_marked_block_keeps_the_prose_around_it(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("intro\n<!-- headline:start -->\nold\n<!-- headline:end -->\noutro\n")
    replace_marked_block(path, "headline", "new 1.5x\n")
    assert (
        path.read_text()
        == "intro\n<!-- headline:start -->\nnew 1.5x\n<!-- headline:end -->\noutro\n"
    )
    with pytest.raises(ValueError, match="lacks the markers <!-- other:start -->"):
        replace_marked_block(path, "other", "x")
