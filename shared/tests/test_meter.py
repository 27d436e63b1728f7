"""EnergyMeter usage, report aggregation and the meter's overhead."""

from __future__ import annotations

import time

import pytest

from shared_hpc import SerialComm
from shared_hpc.energy import EnergyMeter, EnergyReport, NodeReading
from shared_hpc.energy import meter as meter_module


def test_context_manager_and_start_stop_agree(powercap):
    tree = powercap({"intel-rapl:0": "package-0"})
    meter = EnergyMeter(backends=("rapl",), powercap_root=tree.root)
    with meter:
        tree.add("intel-rapl:0", 4.0)
    assert meter.report.joules == pytest.approx({"cpu": 4.0})
    meter.start()
    tree.add("intel-rapl:0", 2.0)
    assert meter.stop().joules == pytest.approx({"cpu": 2.0})


def test_a_meter_inside_a_running_one_shares_its_sensors(powercap):
    tree = powercap({"intel-rapl:0": "package-0", "intel-rapl:0:2": "dram"})
    outer = EnergyMeter(backends=("rapl",), powercap_root=tree.root)
    inner = EnergyMeter(backends=("rapl",), powercap_root=tree.root)
    with outer:
        tree.add("intel-rapl:0", 1.0)
        for step in (2.0, 3.0):
            with inner:
                assert len(meter_module._running) == 1  # one set of sensors, not two
                tree.add("intel-rapl:0", step)
                tree.add("intel-rapl:0:2", step / 10)
            assert inner.report.joules == pytest.approx({"cpu": step, "dram": step / 10})
        tree.add("intel-rapl:0", 0.5)
    assert outer.report.joules == pytest.approx({"cpu": 6.5, "dram": 0.5})
    assert meter_module._running == {}  # closed with the last meter


def test_a_body_that_raises_gets_this_nodes_report_without_a_collective(powercap):
    """Another rank may have failed too and never reach a collective: nobody waits for it."""
    tree = powercap({"intel-rapl:0": "package-0"})

    class NoCollectives(SerialComm):
        def barrier(self) -> None:
            raise AssertionError("a failed rank must not wait for the others")

        def allgather(self, sendobj):
            raise AssertionError("a failed rank must not wait for the others")

    meter = EnergyMeter(SerialComm(), backends=("rapl",), powercap_root=tree.root)
    with pytest.raises(KeyError), meter:
        meter.comm = NoCollectives()
        tree.add("intel-rapl:0", 1.0)
        raise KeyError("boom")
    assert meter.report.joules == pytest.approx({"cpu": 1.0}) and meter.report.ranks == 1
    meter.comm = SerialComm()
    meter.start()  # usable again
    meter.stop()


def test_misuse_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown energy backend"):
        EnergyMeter(backends=("rapl", "wattmeter"))
    with pytest.raises(ValueError, match="positive"):
        EnergyMeter(sample_interval_s=0)
    meter = EnergyMeter(backends=())
    with pytest.raises(RuntimeError, match="not started"):
        meter.stop()
    meter.start()
    with pytest.raises(RuntimeError, match="already running"):
        meter.start()
    assert meter.stop().method == "none"


def test_aggregation_sums_nodes_and_names_mixed_methods():
    a = NodeReading(
        "a", {"cpu": 100.0, "gpu": 400.0}, {"cpu": "rapl", "gpu": "nvml"}, {"cpu": 2, "gpu": 4}
    )
    b = NodeReading(
        "b",
        {"cpu": 50.0, "dram": 10.0},
        {"cpu": "estimated", "dram": "estimated"},
        {"cpu": 1, "dram": 1},
        warnings=["rapl: unreadable"],
    )
    report = EnergyReport.from_readings([a, b], seconds=7200.0, ranks=8)
    assert report.joules == {"cpu": 150.0, "dram": 10.0, "gpu": 400.0}
    assert report.methods == {"cpu": "rapl+estimated", "dram": "estimated", "gpu": "nvml"}
    assert report.devices == {"cpu": 3, "dram": 1, "gpu": 4}
    assert report.device_hours == {"cpu": 6.0, "dram": 2.0, "gpu": 8.0}
    assert report.total_joules == 560.0 and report.mean_watts == pytest.approx(560.0 / 7200)
    assert report.nodes == 2 and report.ranks == 8
    assert not report.measured and report.method == "rapl+nvml+estimated"
    assert report.warnings == ["b: rapl: unreadable"]
    assert "partly estimated" in str(report)
    assert EnergyReport.from_dict(report.to_dict()) == report


def test_measured_only_when_every_number_is_measured():
    a = NodeReading("a", {"cpu": 1.0}, {"cpu": "rapl"}, {"cpu": 1})
    assert EnergyReport.from_readings([a], 1.0).measured
    assert not EnergyReport.from_readings([], 1.0).measured


def _overhead_fraction(seconds: float) -> tuple[float, EnergyReport]:
    from shared_hpc.energy.estimate import power_model

    power_model()  # the one-off codecarbon set-up of this process is measured separately
    meter = EnergyMeter()  # every backend this machine offers
    with meter:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            sum(range(1000))
    return meter.overhead_s / meter.report.seconds, meter.report


def test_fixed_cost_of_a_measurement_is_milliseconds():
    fraction, report = _overhead_fraction(0.5)
    assert report.total_joules > 0
    assert fraction * report.seconds < 0.05  # thread start and join, a few sensor reads


@pytest.mark.slow
def test_overhead_under_one_percent_of_a_ten_second_run():
    fraction, report = _overhead_fraction(10.0)
    print(f"meter overhead: {100 * fraction:.3f} % of {report.seconds:.1f} s ({report.method})")
    assert fraction < 0.01
