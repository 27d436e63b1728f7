"""run_demos: every demo in its own process, failures reported, summary from results.json."""

from __future__ import annotations

import textwrap

import pytest

from shared_hpc.demos import discover_demos, run_demos

MODULE = """
from pathlib import Path

from shared_hpc import RunRecord
from shared_hpc.energy import EnergyReport, NodeReading


def _out(argv):
    assert argv[0] == "demo"
    return Path(argv[argv.index("--output") + 1])


def ok(argv):
    out = _out(argv)
    out.mkdir(parents=True, exist_ok=True)
    reading = NodeReading("h", {"cpu": 12.5}, {"cpu": "rapl"}, {"cpu": 1})
    energy = EnergyReport.from_readings([reading], 2.0)
    headline = {
        "name": "accuracy", "value": 0.93, "unit": "%", "paper": 0.95, "higher_is_better": True
    }
    record = RunRecord.create(
        "fake-ok", "0.1", config={}, metrics={"accuracy": 0.93}, headline=headline,
        energy=energy, wall_time_s=2.0,
    )
    record.write(out / "results.json")
    return 0


def fail(argv):
    raise RuntimeError("demo broke")


def silent(argv):
    return 0
"""


@pytest.fixture
def fake_demos(tmp_path, monkeypatch):
    """Install a distribution with three demos (ok, failing, no results) on the path."""
    site = tmp_path / "site"
    (site / "fake_demos-0.1.dist-info").mkdir(parents=True)
    (site / "fake_demos.py").write_text(MODULE)
    (site / "fake_demos-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fake-demos\nVersion: 0.1\n"
    )
    (site / "fake_demos-0.1.dist-info" / "entry_points.txt").write_text(
        textwrap.dedent(
            """
            [shared_hpc.demos]
            fake-ok = fake_demos:ok
            fake-fail = fake_demos:fail
            fake-silent = fake_demos:silent
            """
        )
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    return ["fake-fail", "fake-ok", "fake-silent"]


def test_failures_are_reported_after_all_demos_ran(fake_demos, tmp_path):
    assert set(fake_demos) <= set(discover_demos()) and "shared-hpc" in discover_demos()
    out = tmp_path / "out"
    assert run_demos(out, fake_demos) == 1
    rows = {
        line.split(" | ")[0].strip("| "): line
        for line in (out / "SUMMARY.md").read_text().splitlines()
        if line.startswith("| fake")
    }
    assert rows["fake-ok"].startswith("| fake-ok | accuracy (%) | 0.93 | 0.95 | ")
    assert rows["fake-ok"].endswith(" | 12.5 (rapl) | ok |")
    assert "failed (exit 1, see demo.log)" in rows["fake-fail"]
    assert "failed (no results.json)" in rows["fake-silent"]
    assert "RuntimeError: demo broke" in (out / "fake-fail" / "demo.log").read_text()


def test_all_good_returns_zero(fake_demos, tmp_path):
    assert run_demos(tmp_path / "out", ["fake-ok"]) == 0
    assert "| ok |" in (tmp_path / "out" / "SUMMARY.md").read_text()


def test_unknown_name_fails_before_running_anything(fake_demos, tmp_path):
    with pytest.raises(ValueError, match="unknown demo"):
        run_demos(tmp_path / "out", ["fake-ok", "nope"])
    assert not (tmp_path / "out").exists()
