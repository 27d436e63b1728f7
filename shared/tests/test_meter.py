"""EnergyMeter usage, report aggregation and the meter's overhead."""

from __future__ import annotations

import time

import pytest

from shared_hpc.energy import EnergyMeter, EnergyReport, NodeReading


def test_context_manager_decorator_and_start_stop_agree(powercap):
    tree = powercap({"intel-rapl:0": "package-0"})
    meter = EnergyMeter(backends=("rapl",), powercap_root=tree.root)

    @meter
    def train(joules: float) -> str:
        tree.add("intel-rapl:0", joules)
        return "done"

    assert train.energy_report is None
    assert train(4.0) == "done"
    assert train.energy_report.joules == pytest.approx({"cpu": 4.0})
    assert train(1.5) == "done"
    assert train.energy_report.joules == pytest.approx({"cpu": 1.5})

    meter.start()
    tree.add("intel-rapl:0", 2.0)
    assert meter.stop().joules == pytest.approx({"cpu": 2.0})


def test_meter_stops_and_reports_when_the_body_raises(powercap):
    tree = powercap({"intel-rapl:0": "package-0"})
    meter = EnergyMeter(backends=("rapl",), powercap_root=tree.root)
    with pytest.raises(KeyError), meter:
        tree.add("intel-rapl:0", 1.0)
        raise KeyError("boom")
    assert meter.report.joules == pytest.approx({"cpu": 1.0})
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


def test_co2_uses_codecarbons_grid_intensity():
    report = EnergyReport.from_readings(
        [NodeReading("a", {"cpu": 3.6e6}, {"cpu": "rapl"}, {"cpu": 1})],
        3600.0,
        country_iso_code="FRA",
    )
    from codecarbon.input import DataSource

    grams = DataSource().get_global_energy_mix_data()["FRA"]["carbon_intensity"]
    assert report.co2_kg() == pytest.approx(grams / 1000)
    assert report.co2_kg(pue=1.5) == pytest.approx(1.5 * grams / 1000)
    report.country_iso_code = "XXX"
    with pytest.raises(ValueError, match="XXX"):
        report.co2_kg()


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
