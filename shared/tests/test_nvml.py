"""NVML reader: absent here (quietly), measured on a machine with an NVIDIA GPU."""

from __future__ import annotations

import os
import time

import pytest

from shared_hpc.energy import EnergyMeter
from shared_hpc.energy.nvml import NvmlReader, nvml_devices
from shared_hpc.energy.sensor import NoSensor


@pytest.mark.skipif(
    os.path.exists("/proc/driver/nvidia"), reason="this machine has an NVIDIA driver"
)
def test_no_gpu_means_no_sensor_and_no_warning(recwarn):
    with pytest.raises(NoSensor):
        NvmlReader().start()
    assert nvml_devices() == []
    with EnergyMeter(backends=("nvml", "estimated")) as meter:
        pass
    assert "gpu" not in meter.report.joules
    assert not [w for w in recwarn if "nvml" in str(w.message).lower()]


def test_bad_interval():
    with pytest.raises(ValueError, match="positive"):
        NvmlReader(sample_interval_s=0)


@pytest.mark.gpu
def test_gpu_energy_is_measured_while_the_gpu_works():
    torch = pytest.importorskip("torch")
    devices = nvml_devices()
    assert devices, "CUDA is available but NVML sees no GPU"
    a = torch.randn(4096, 4096, device="cuda")
    with EnergyMeter(backends=("nvml",), nvml_sample_interval_s=0.05) as meter:
        end = time.perf_counter() + 3.0
        while time.perf_counter() < end:
            a = (a @ a).tanh_()
        torch.cuda.synchronize()
    report = meter.report
    assert report.methods == {"gpu": "nvml"} and report.measured
    assert report.devices["gpu"] == len(devices)
    watts = report.joules["gpu"] / report.seconds
    # A busy data-centre GPU draws tens to hundreds of watts; zero would mean nothing was read.
    assert 20 < watts < 1500, watts
    print(f"GPU energy: {report}; devices: {devices}")


@pytest.mark.gpu
def test_sampled_power_path_agrees_with_the_counter():
    """Force power sampling on a GPU that has a counter and compare both over one interval."""
    torch = pytest.importorskip("torch")
    if not all(d["energy_counter"] for d in nvml_devices()):
        pytest.skip("needs GPUs with a total-energy counter")
    counter = NvmlReader()
    sampled = NvmlReader(sample_interval_s=0.02)
    counter.start()
    sampled.start()
    for gpu in sampled._gpus:  # pretend the counter is unsupported
        gpu.counter, gpu.last_w, gpu.last_time = False, gpu._power_w(), time.perf_counter()
    a = torch.randn(4096, 4096, device="cuda")
    end = time.perf_counter() + 6.0
    while time.perf_counter() < end:
        a = (a @ a).tanh_()
        sampled.sample()
    torch.cuda.synchronize()
    from_counter = counter.stop()["gpu"]
    from_power = sampled.stop()["gpu"]
    assert from_power == pytest.approx(from_counter, rel=0.25)
    print(f"GPU counter {from_counter:.1f} J vs sampled power {from_power:.1f} J")
