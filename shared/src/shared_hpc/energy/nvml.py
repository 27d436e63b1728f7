"""NVIDIA GPU energy through NVML (``pynvml`` from the ``nvidia-ml-py`` distribution).

Volta and newer GPUs keep a total-energy counter in millijoules since the driver was loaded
(``nvmlDeviceGetTotalEnergyConsumption``); the difference of two reads is the energy of the
run, with nothing lost between samples. Older GPUs only report the current board power
(``nvmlDeviceGetPowerUsage``, itself averaged by the driver over about a second), which is
sampled and integrated with the trapezoidal rule. Both cover the whole board (GPU, its memory,
fans and voltage regulators) but not the host's share of the PCIe link or the CPU.

NVML ignores ``CUDA_VISIBLE_DEVICES``, so every GPU of the node is measured, including ones
the job does not use; on a shared node the reading belongs to the whole node.
"""

from __future__ import annotations

import os
import time
from typing import Any

from shared_hpc.energy.sensor import NoSensor, Sensor, SensorError

__all__ = ["NvmlReader", "nvml_devices"]


def _pynvml() -> Any:
    try:
        import pynvml
    except ImportError:
        if os.path.exists("/proc/driver/nvidia"):
            raise SensorError(
                "an NVIDIA driver is loaded but pynvml is missing; "
                "install it with `pip install shared-hpc[gpu]`"
            ) from None
        raise NoSensor("pynvml is not installed and no NVIDIA driver is loaded") from None
    return pynvml


def _init(pynvml: Any) -> None:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as err:
        absent = (pynvml.NVMLError_LibraryNotFound, pynvml.NVMLError_DriverNotLoaded)
        if isinstance(err, absent) and not os.path.exists("/proc/driver/nvidia"):
            raise NoSensor(f"no NVIDIA driver ({err})") from None
        raise SensorError(f"NVML cannot be initialised ({err})") from None


def nvml_devices() -> list[dict[str, Any]]:
    """Name and energy capability of each NVIDIA GPU of this node (empty list without any)."""
    try:
        pynvml = _pynvml()
        _init(pynvml)
    except (NoSensor, SensorError):
        return []
    try:
        found = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            try:
                pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
                counter = True
            except pynvml.NVMLError:
                counter = False
            found.append(
                {
                    "index": index,
                    "name": name.decode() if isinstance(name, bytes) else name,
                    "energy_counter": counter,
                }
            )
        return found
    finally:
        pynvml.nvmlShutdown()


class _Device:
    """One GPU: either a counter (mJ) or integrated power samples (mW)."""

    def __init__(self, pynvml: Any, index: int) -> None:
        self.pynvml = pynvml
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        try:
            self.first_mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            self.counter = True
        except pynvml.NVMLError_NotSupported:
            self.counter = False
        self.joules = 0.0
        self.last_time = time.perf_counter()
        self.last_w = None if self.counter else self._power_w()

    def _power_w(self) -> float:
        return self.pynvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0

    def sample(self) -> None:
        if self.counter:
            return
        now, watts = time.perf_counter(), self._power_w()
        self.joules += 0.5 * (watts + self.last_w) * (now - self.last_time)
        self.last_time, self.last_w = now, watts

    def total_j(self) -> float:
        if self.counter:
            now = self.pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            return (now - self.first_mj) / 1000.0
        self.sample()
        return self.joules


class NvmlReader(Sensor):
    """Sensor for all NVIDIA GPUs of this node (kind ``gpu``)."""

    method = "nvml"

    def __init__(self, sample_interval_s: float = 0.1) -> None:
        super().__init__()
        if sample_interval_s <= 0:
            raise ValueError(f"nvml sample interval must be positive, got {sample_interval_s}")
        self.interval = sample_interval_s
        self._pynvml: Any = None
        self._gpus: list[_Device] = []

    def start(self) -> None:
        pynvml = _pynvml()
        _init(pynvml)
        self._pynvml = pynvml
        try:
            count = pynvml.nvmlDeviceGetCount()
            if count == 0:
                raise NoSensor("NVML sees no GPU")
            self._gpus = [_Device(pynvml, i) for i in range(count)]
        except pynvml.NVMLError as err:
            pynvml.nvmlShutdown()
            raise SensorError(f"NVML cannot read the GPUs ({err})") from None
        except NoSensor:
            pynvml.nvmlShutdown()
            raise
        self.kinds = ("gpu",)
        self.devices = {"gpu": count}
        if not all(g.counter for g in self._gpus):
            self.sample_interval_s = self.interval
        self.origin = self.mark()

    def sample(self) -> None:
        for gpu in self._gpus:
            gpu.sample()

    def mark(self) -> float:
        return sum(g.total_j() for g in self._gpus)

    def joules_since(self, mark: float) -> dict[str, float]:
        return {"gpu": self.mark() - mark}

    def close(self) -> None:
        if self._pynvml is not None:
            self._pynvml.nvmlShutdown()
            self._pynvml = None
