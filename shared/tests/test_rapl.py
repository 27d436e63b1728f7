"""RAPL reader on powercap trees written by the test: packages, DRAM, wrap-around, bad files."""

from __future__ import annotations

import time

import pytest

from shared_hpc.energy import EnergyMeter, EnergyWarning
from shared_hpc.energy.rapl import RaplReader, find_domains
from shared_hpc.energy.sensor import NoSensor, SensorError


def test_finds_packages_and_dram_once_and_skips_overlapping_zones(powercap):
    tree = powercap()
    domains = find_domains(tree.root)
    assert [(d.kind, d.name) for d in domains] == [
        ("cpu", "package-0"),
        ("cpu", "package-1"),
        ("dram", "dram"),
        ("dram", "dram"),
    ]
    assert all(d.max_range_uj == 2**32 for d in domains)


def test_sums_packages_and_dram_separately(powercap):
    tree = powercap()
    reader = RaplReader(tree.root)
    reader.start()
    assert reader.devices == {"cpu": 2, "dram": 2}
    tree.add("intel-rapl:0", 10.0)
    tree.add("intel-rapl:1", 5.5)
    tree.add("intel-rapl:0:2", 2.0)
    tree.add("intel-rapl:1:2", 1.25)
    tree.add("intel-rapl:0:0", 100.0)  # core: part of package-0, must not be added again
    tree.add("intel-rapl:2", 1000.0)  # psys: the whole platform, must not be added
    assert reader.stop() == pytest.approx({"cpu": 15.5, "dram": 3.25})


def test_wrap_around_between_two_reads_is_undone(powercap):
    max_range = 50_000_000  # 50 J, so a 20 J step from 40 J wraps
    tree = powercap({"intel-rapl:0": "package-0"}, max_range_uj=max_range)
    tree.set("intel-rapl:0", 40_000_000)
    reader = RaplReader(tree.root)
    reader.start()
    tree.add("intel-rapl:0", 20.0)
    assert tree.get("intel-rapl:0") == 10_000_000  # wrapped
    reader.sample()
    tree.add("intel-rapl:0", 30.0)  # 10 J -> 40 J, no wrap
    assert reader.stop() == pytest.approx({"cpu": 50.0})


def test_unreadable_dram_drops_only_dram(powercap):
    tree = powercap()
    tree.break_zone("intel-rapl:1:2")
    reader = RaplReader(tree.root)
    reader.start()
    assert reader.kinds == ("cpu",)
    assert reader.devices == {"cpu": 2}
    assert len(reader.problems) == 1 and "dram" in reader.problems[0]
    tree.add("intel-rapl:0", 1.0)
    assert reader.stop() == pytest.approx({"cpu": 1.0})


def test_all_unreadable_is_a_sensor_error_and_no_zones_is_no_sensor(powercap, tmp_path):
    tree = powercap({"intel-rapl:0": "package-0"})
    tree.break_zone("intel-rapl:0")
    with pytest.raises(SensorError, match="root-only"):
        RaplReader(tree.root).start()
    with pytest.raises(NoSensor):
        RaplReader(tmp_path / "missing").start()


def test_garbage_counter_counts_as_unreadable(powercap):
    tree = powercap({"intel-rapl:0": "package-0"})
    (tree.paths["intel-rapl:0"] / "energy_uj").write_text("not a number\n")
    with pytest.raises(SensorError):
        RaplReader(tree.root).start()


def test_meter_reports_rapl_as_measured(powercap):
    tree = powercap()
    meter = EnergyMeter(backends=("rapl",), powercap_root=tree.root, sample_interval_s=0.05)
    with meter:
        tree.add("intel-rapl:0", 3.0)
        time.sleep(0.12)  # let the sampler read in between
        tree.add("intel-rapl:1", 4.0)
        tree.add("intel-rapl:0:2", 1.0)
    report = meter.report
    assert report.joules == pytest.approx({"cpu": 7.0, "dram": 1.0})
    assert report.methods == {"cpu": "rapl", "dram": "rapl"}
    assert report.measured and report.method == "rapl"
    assert report.devices == {"cpu": 2, "dram": 2}
    assert report.total_joules == pytest.approx(8.0)
    assert report.device_hours["cpu"] == pytest.approx(2 * report.seconds / 3600)
    assert report.mean_watts == pytest.approx(8.0 / report.seconds)


def test_unreadable_dram_falls_back_to_estimate_with_one_warning(powercap):
    tree = powercap()
    tree.break_zone("intel-rapl:0:2")
    meter = EnergyMeter(backends=("rapl", "estimated"), powercap_root=tree.root)
    with pytest.warns(EnergyWarning, match="dram") as caught:
        for _ in range(3):  # measured three times, warned once
            with meter:
                tree.add("intel-rapl:0", 2.0)
    assert len([w for w in caught if "dram" in str(w.message)]) == 1
    report = meter.report
    assert report.methods == {"cpu": "rapl", "dram": "estimated"}
    assert report.joules["cpu"] == pytest.approx(2.0)
    assert report.joules["dram"] > 0
    assert not report.measured and report.method == "rapl+estimated"
    assert any("dram" in w for w in report.warnings)


def test_sensor_dying_mid_run_is_estimated_not_raised(powercap):
    tree = powercap({"intel-rapl:0": "package-0"})
    meter = EnergyMeter(backends=("rapl", "estimated"), powercap_root=tree.root)
    meter.start()
    tree.break_zone("intel-rapl:0")
    with pytest.warns(EnergyWarning, match="stopped being readable"):
        report = meter.stop()
    assert report.methods == {"cpu": "estimated", "dram": "estimated"}  # no DRAM zone at all
    assert report.joules["cpu"] > 0


def test_without_a_fallback_a_dead_sensor_leaves_the_kind_out(powercap):
    tree = powercap({"intel-rapl:0": "package-0"})
    tree.break_zone("intel-rapl:0")
    meter = EnergyMeter(backends=("rapl",), powercap_root=tree.root)
    with pytest.warns(EnergyWarning), meter:
        pass
    assert meter.report.joules == {} and meter.report.method == "none"
    assert not meter.report.measured
