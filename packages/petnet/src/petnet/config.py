"""Every setting of petnet, in one place: the dataclasses that each command's flags and TOML fill.

Each lives in the module that uses it and is re-exported here. Every key of a TOML file is
also a flag of its command (``--train.epochs 8``, ``--activity-mbq 100``); a flag wins over the
file, the file over the default.

A training run (``petnet train data.h5 --output run/ --config run.toml``)::

    [model]
    architecture = "ring"  # or "dense" (the paper's)
    hidden = [64, 64]

    [encoding]
    bin_width_ns = 0.5
    energy_window_kev = [350.0, 650.0]

    [train]
    epochs = 8
    lr = 0.002

A simulation of one source in a preset scanner (``petnet simulate --config sim.toml``)::

    scanner = "preclinical"
    source_kind = "cylinder"
    activity_mbq = 100.0
    duration_ms = 2.0

A full simulation: any scanner, several sources (``--scanner``, ``--duration-ms`` and
``--seed`` still change it)::

    [simulation]
    duration_s = 0.004
    seed = 1

    [simulation.scanner]
    name = "small"

    [[simulation.sources]]
    kind = "cylinder"
    activity_bq = 5e7
    radius_mm = 20.0
    length_mm = 16.0

    [[simulation.sources]]
    kind = "point"
    activity_bq = 1e6
    position_mm = [10.0, 0.0, 0.0]

    [simulation.water]
    radius_mm = 20.0
    length_mm = 16.0
"""

from petnet.evaluate import CompareConfig
from petnet.model import ModelConfig
from petnet.scanner import Scanner
from petnet.sim import AcquisitionConfig, SimulationConfig, Source, WaterCylinder
from petnet.sorting import SortConfig
from petnet.spikes import EncodingConfig
from petnet.train import PETNetConfig, TrainConfig

__all__ = [
    "AcquisitionConfig",
    "CompareConfig",
    "EncodingConfig",
    "ModelConfig",
    "PETNetConfig",
    "Scanner",
    "SimulationConfig",
    "SortConfig",
    "Source",
    "TrainConfig",
    "WaterCylinder",
]
