"""Energy measurement: RAPL and NVML counters where readable, codecarbon's estimate otherwise."""

from shared_hpc.energy.meter import EnergyMeter, probe_sensors
from shared_hpc.energy.report import EnergyReport, NodeReading
from shared_hpc.energy.sensor import EnergyWarning

__all__ = ["EnergyMeter", "EnergyReport", "EnergyWarning", "NodeReading", "probe_sensors"]
