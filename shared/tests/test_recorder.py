"""Recorder: one meter, one clock, one run record written by rank 0."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from shared_hpc import EnergyMeter, Headline, Recorder, RunRecord, SerialComm
from shared_hpc.energy import meter as meter_module


@dataclass
class Settings:
    epochs: int = 2


def test_record_holds_the_regions_energy_time_and_headline(powercap, tmp_path):
    tree = powercap({"intel-rapl:0": "package-0"})
    with Recorder("my-pkg", "0.1", backends=("rapl",), powercap_root=tree.root) as run:
        tree.add("intel-rapl:0", 3.0)
        inner = EnergyMeter(backends=("rapl",), powercap_root=tree.root)
        with inner:  # a library measuring a step inside the command's region
            assert len(meter_module._running) == 1
            tree.add("intel-rapl:0", 1.0)
        time.sleep(0.05)
    assert inner.report.joules == pytest.approx({"cpu": 1.0})
    assert run.report.joules == pytest.approx({"cpu": 4.0})
    assert run.wall_time_s >= 0.05
    record = run.write(
        tmp_path / "results.json",
        config=Settings(),
        metrics={"loss": 0.1},
        headline=Headline("loss", 0.1, higher_is_better=False),
        artifacts=["plot.png"],
    )
    back = RunRecord.read(tmp_path / "results.json")
    assert back == record
    assert back.headline == {"name": "loss", "value": 0.1, "unit": "", "paper": None,
                             "higher_is_better": False}  # fmt: skip
    assert back.energy["total_joules"] == pytest.approx(4.0) and back.config == {"epochs": 2}
    assert back.wall_time_s == run.wall_time_s and back.package == "my-pkg"


def test_only_rank_0_writes(tmp_path, powercap):
    tree = powercap({"intel-rapl:0": "package-0"})

    class Rank1(SerialComm):
        def Get_rank(self) -> int:
            return 1

    with Recorder("p", "1", comm=Rank1(), backends=("rapl",), powercap_root=tree.root) as run:
        pass
    run.write(tmp_path / "results.json", config={}, metrics={}, headline=None)
    assert not (tmp_path / "results.json").exists()


def test_no_record_before_the_region_ends():
    run = Recorder("p", "1", backends=())
    with pytest.raises(RuntimeError, match="not finished"):
        run.record(config={}, metrics={}, headline=None)
