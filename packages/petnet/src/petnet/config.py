"""All settings of petnet as dataclasses, each loadable from TOML with ``shared_hpc.load_config``.

A training run (``petnet train --config run.toml``)::

    [model]
    architecture = "ring"  # or "dense" (the paper's)
    hidden = [64, 64]

    [encoding]
    bin_width_ns = 0.5
    energy_window_kev = [350.0, 650.0]

    [train]
    epochs = 8
    lr = 0.002

A simulation (``petnet simulate --config sim.toml``)::

    duration_s = 0.004
    seed = 1

    [scanner]
    name = "small"

    [[sources]]
    kind = "cylinder"
    activity_bq = 5e7
    radius_mm = 20.0
    length_mm = 16.0

    [water]
    radius_mm = 20.0
    length_mm = 16.0
"""

from petnet.model import ModelConfig
from petnet.scanner import Scanner
from petnet.sim import SimulationConfig, Source, WaterCylinder
from petnet.spikes import EncodingConfig
from petnet.train import PETNetConfig, TrainConfig

__all__ = [
    "EncodingConfig",
    "ModelConfig",
    "PETNetConfig",
    "Scanner",
    "SimulationConfig",
    "Source",
    "TrainConfig",
    "WaterCylinder",
]
