"""codecarbon fallback on this machine: real codecarbon, offline, quiet."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from shared_hpc.energy import EnergyMeter
from shared_hpc.energy.estimate import _tdp_table, cpu_busy_fraction, lookup_tdp, power_model
from shared_hpc.energy.rapl import RaplReader
from shared_hpc.energy.sensor import NoSensor, SensorError


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(1000))


def _rapl_readable() -> bool:
    try:
        RaplReader().start()
    except (NoSensor, SensorError):
        return False
    return True


@pytest.mark.parametrize(
    "model",
    [
        "Intel(R) Xeon(R) Platinum 8368 CPU @ 2.40GHz",
        "AMD EPYC 7763 64-Core Processor",
        "Intel(R) Core(TM) i7-8565U CPU @ 1.80GHz",
        "AMD Ryzen 9 5950X 16-Core Processor",
        "AMD EPYC",
        "Some Unknown CPU 9000",
    ],
)
def test_tdp_lookup_agrees_with_codecarbon(model):
    from codecarbon.core.cpu import TDP

    finder = TDP.__new__(TDP)  # only its table lookup, without re-detecting this machine's CPU
    expected = finder._get_cpu_power_from_registry(model)
    found = lookup_tdp(model)
    assert (found[0] if found else None) == expected


def test_the_shipped_table_is_codecarbons():
    from codecarbon.input import DataSource

    theirs = DataSource().get_cpu_power_data()
    theirs = dict(zip(theirs["Name"], theirs["TDP"], strict=True))
    ours = _tdp_table()
    assert len(ours) > 4000
    same = [name for name, tdp in ours.items() if name in theirs and float(theirs[name]) == tdp]
    assert len(same) == len(ours)  # codecarbon may add models; it changed none of ours


def test_power_model_uses_codecarbons_ram_model_and_the_default_tdp_rule():
    from codecarbon.core.util import count_cpus
    from codecarbon.external.ram import RAM

    model = power_model()
    assert model.ram_w == RAM(tracking_mode="machine").total_power().W
    found = lookup_tdp(model.cpu_model)
    assert model.tdp_w == (found[0] if found else 4.0 * count_cpus())
    assert model.cpu_watts(1.0) == model.cpu_max_w == model.tdp_w * model.sockets


def test_busy_fraction():
    import psutil

    before = psutil.cpu_times()
    step = {"user": 3.0, "idle": 1.0}
    after = type(before)(*[getattr(before, f) + step.get(f, 0.0) for f in before._fields])
    assert cpu_busy_fraction(before, after) == pytest.approx(0.75)
    assert cpu_busy_fraction(before, before) == 0.0


def test_estimate_is_within_codecarbons_power_bounds():
    model = power_model()
    meter = EnergyMeter(backends=("estimated",), sample_interval_s=0.2)
    with meter:
        _busy(1.0)
    report = meter.report
    seconds = report.seconds
    assert report.methods == {"cpu": "estimated", "dram": "estimated"}
    assert not report.measured and report.method == "estimated"
    assert model.cpu_max_w * 0.1 * seconds * 0.95 <= report.joules["cpu"]
    assert report.joules["cpu"] <= model.cpu_max_w * seconds * 1.05
    assert report.joules["dram"] == pytest.approx(model.ram_w * seconds, rel=0.05)
    assert report.devices == {"cpu": model.sockets, "dram": model.sockets}


@pytest.mark.skipif(_rapl_readable(), reason="codecarbon would use RAPL here, not its estimate")
def test_estimate_matches_codecarbon_offline_tracker(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from codecarbon import OfflineEmissionsTracker

    tracker = OfflineEmissionsTracker(
        country_iso_code="DEU",
        save_to_file=False,
        log_level="error",
        measure_power_secs=1,
        tracking_mode="machine",
        allow_multiple_runs=True,
    )
    tracker.start()  # the first start probes the hardware; measure on the second
    tracker.stop()
    meter = EnergyMeter(backends=("estimated",), sample_interval_s=1.0)
    tracker.start()
    meter.start()
    _busy(3.0)
    report = meter.stop()
    tracker.stop()
    theirs = tracker.final_emissions_data
    assert report.joules["dram"] == pytest.approx(theirs.ram_energy * 3.6e6, rel=0.05)
    assert report.joules["cpu"] == pytest.approx(theirs.cpu_energy * 3.6e6, rel=0.25)
    assert list(tmp_path.iterdir()) == []  # no emissions.csv


def test_estimate_is_quiet_and_writes_no_files(tmp_path):
    code = (
        "import time\n"
        "from shared_hpc import EnergyMeter\n"
        "meter = EnergyMeter(backends=('estimated',))\n"
        "with meter:\n"
        "    time.sleep(0.5)\n"
        "print(meter.report.method, meter.report.total_joules > 0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "estimated True"
    assert out.stderr == ""
    assert list(tmp_path.iterdir()) == []
