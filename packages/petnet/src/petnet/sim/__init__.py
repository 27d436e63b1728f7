"""Monte-Carlo PET acquisition: scanner presets, sources, physics and detector response."""

from petnet.scanner import PRESETS, Scanner, preset
from petnet.sim.acquisition import AcquisitionConfig
from petnet.sim.simulate import SimulationConfig, simulate
from petnet.sim.sources import Source, WaterCylinder

__all__ = [
    "PRESETS",
    "AcquisitionConfig",
    "Scanner",
    "SimulationConfig",
    "Source",
    "WaterCylinder",
    "preset",
    "simulate",
]
