"""Every setting of petnet: the dataclasses that each command's flags and TOML fill.

The settings of the network, its training and its evaluation are defined here, free of torch
and norse, so that building a command's flags (and refusing a bad one) costs no heavy import;
those of the simulator and the sorters live beside them and are re-exported. Every key of a
TOML file is also a flag of its command (``--train.epochs 8``, ``--activity-mbq 100``); a flag
wins over the file, the file over the default.

A training run (``petnet train data.h5 --output run/ --config run.toml``)::

    [model]
    architecture = "ring"  # or "dense" (the paper's)
    hidden = [64, 64]

    [encoding]
    bin_width_ns = 0.25
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

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from petnet.classical import ENERGY_WINDOW_KEV, POLICIES, WINDOW_NS, check_settings
from petnet.scanner import Scanner
from petnet.sim import AcquisitionConfig, SimulationConfig, Source, WaterCylinder
from petnet.sorting import SortConfig
from shared_hpc import UserError

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

Architecture = Literal["dense", "ring"]
Surrogate = Literal["super", "tanh", "triangle", "circ", "heavi_erfc"]
MAX_LR = 1.0  # the largest peak learning rate accepted (the default is 0.002)


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


@dataclass(frozen=True)
class ModelConfig:
    """Network shape and neuron settings.

    Attributes:
        architecture: ring (one small network shared by every crystal, ours) or dense (the
            paper's, fully connected over all crystals).
        hidden: Neurons per hidden layer (per crystal for ring).
        geometry_scales: Opposite-arc input channels, each half as wide as the previous.
        beta: Initial leak of the hidden neurons: v ← β·v + input.
        output_beta: Initial leak of the output neurons.
        learn_leak: Learn each neuron's leak.
        threshold: Membrane threshold of every neuron.
        surrogate: norse's surrogate gradient of the spike function.
        surrogate_alpha: Sharpness of the surrogate gradient.
        init_gain: Factor on PyTorch's default hidden weights (sparse spikes need a push).
        direct_init: Initial weights of own spike and widest arc on the output neuron; none:
            (0.6, 0.6) for ring, (0.6, 0.45) for dense, where crystals without a hit are read
            out too and two partners must not fire.
        current_noise: Standard deviation of the noise on input currents while training
            (gives decisions a margin).
        quiescent: Keep every neuron's bias below the current that would make it fire
            without input, so the network is silent at rest and can run event-driven
            (``petnet.events``); checkpoints of petnet 0.1 load with ``False``.
    """

    architecture: Architecture = "ring"
    hidden: tuple[int, ...] = (64, 64)
    geometry_scales: int = 2
    beta: float = 0.9
    output_beta: float = 0.9
    learn_leak: bool = True
    threshold: float = 1.0
    surrogate: Surrogate = "super"
    surrogate_alpha: float = 10.0
    init_gain: float = 3.0
    direct_init: tuple[float, float] | None = None
    current_noise: float = 0.1
    quiescent: bool = True

    def __post_init__(self) -> None:
        if self.architecture not in ("dense", "ring"):
            raise UserError(f"architecture must be 'dense' or 'ring', got {self.architecture!r}")
        if not self.hidden or min(self.hidden) < 1:
            raise UserError(f"hidden sizes must be >= 1, got {self.hidden}")
        if self.geometry_scales < 1:
            raise UserError(f"geometry_scales must be >= 1, got {self.geometry_scales}")
        for name in ("beta", "output_beta"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise UserError(f"{name} must be in (0, 1), got {getattr(self, name)}")
        if self.surrogate not in Surrogate.__args__:  # type: ignore[attr-defined]
            raise UserError(f"unknown surrogate {self.surrogate!r}")
        for name in ("threshold", "surrogate_alpha", "init_gain"):
            if not _positive(getattr(self, name)):
                raise UserError(f"{name} must be finite and > 0, got {getattr(self, name)}")
        if not (math.isfinite(self.current_noise) and self.current_noise >= 0):
            raise UserError(f"current_noise must be finite and >= 0, got {self.current_noise}")


# input channels per crystal and bin: the hit itself, its energy / 511 keV, and where in the
# bin it arrived (0 to 1), which keeps timing finer than the bin width
CHANNELS = ("spike", "energy", "time")
DEFAULT_CHANNELS = ("spike", "energy")


@dataclass(frozen=True)
class EncodingConfig:
    """How singles become spike trains and how output spikes are read back.

    Attributes:
        bin_width_ns: Width of a time bin in ns.
        max_gap_bins: Longest silence kept in whole-scanner windows, and the history of a
            per-hit patch, in bins.
        energy_window_kev: (low, high) in keV of the singles the network reads; none: all.
        tolerance_bins: How many bins after a single an output spike may come and still mark
            it.
        channels: Input channels per crystal and bin: spike (always first), energy, time.
    """

    bin_width_ns: float = 0.25
    max_gap_bins: int = 32
    energy_window_kev: tuple[float, float] | None = (350.0, 650.0)
    tolerance_bins: int = 8
    channels: tuple[str, ...] = DEFAULT_CHANNELS

    def __post_init__(self) -> None:
        if not _positive(self.bin_width_ns):
            raise UserError(f"bin_width_ns must be finite and > 0, got {self.bin_width_ns}")
        if self.max_gap_bins < 1 or self.tolerance_bins < 0:
            raise UserError("max_gap_bins must be >= 1 and tolerance_bins >= 0")
        if self.channels[:1] != ("spike",) or not set(self.channels) <= set(CHANNELS):
            raise UserError(f"channels must start with 'spike' and come from {CHANNELS}")
        if len(set(self.channels)) != len(self.channels):
            raise UserError(f"channels must not repeat, got {self.channels}")

    @property
    def warmup_bins(self) -> int:
        """Input a window needs before the first output it is trusted for."""
        return self.max_gap_bins + self.tolerance_bins


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Attributes:
        epochs: Passes over the training data.
        batch_size: Samples per step and rank (patches for ring, windows for dense).
        window_bins: Time bins per training window (dense architecture).
        lr: Peak learning rate of the one-cycle schedule, at most 1.
        timing_weight: Weight of the spike-timing term of the loss.
        count_window_bins: Bins per window of the spike-count term; none: the whole sample,
            as in the paper.
        miss_weight: Cost of a missed target spike relative to an extra spike.
        grad_clip: Largest gradient norm.
        validation_fraction: Last part of the data (in time) used for validation when no
            validation singles are given.
        max_steps_per_epoch: At most this many steps per epoch; none: the whole data. The
            default (4 × 250 steps of 512) trains the small scanner in a few minutes on 2
            cores and is the recipe BENCHMARKS.md uses.
        seed: Seed of the initial weights, the sample order and the training noise.
    """

    epochs: int = 4
    batch_size: int = 512
    window_bins: int = 64
    lr: float = 2e-3
    timing_weight: float = 0.1
    count_window_bins: int | None = 1
    miss_weight: float = 2.0
    grad_clip: float = 1.0
    validation_fraction: float = 0.2
    max_steps_per_epoch: int | None = 250
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.window_bins < 8:
            raise UserError("epochs and batch_size must be >= 1, window_bins >= 8")
        if not (_positive(self.lr) and self.lr <= MAX_LR):
            # Adam moves every weight by about lr per step; the neurons fire at 1.0
            raise UserError(f"lr must be in (0, {MAX_LR}], got {self.lr}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise UserError("validation_fraction must be in (0, 1)")
        for name in ("miss_weight", "grad_clip"):
            if not _positive(getattr(self, name)):
                raise UserError(f"{name} must be finite and > 0, got {getattr(self, name)}")
        if not (math.isfinite(self.timing_weight) and self.timing_weight >= 0):
            raise UserError(f"timing_weight must be finite and >= 0, got {self.timing_weight}")
        if self.count_window_bins is not None and self.count_window_bins < 1:
            raise UserError("count_window_bins must be >= 1 or None")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise UserError("max_steps_per_epoch must be >= 1 or None")


@dataclass(frozen=True)
class PETNetConfig:
    """Everything a training run needs besides data; TOML tables ``[model]``, ``[encoding]``,
    ``[train]``, flags ``--model.*``, ``--encoding.*``, ``--train.*``.

    Attributes:
        model: The network's shape and neurons.
        encoding: How singles become spike trains.
        train: The optimisation.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class CompareConfig:
    """How the methods are compared.

    Attributes:
        window_ns: Coincidence window of the classical sorters and of the pairing of PETNet's
            flagged singles, in ns.
        energy_window_kev: (low, high) in keV of the singles the classical sorters read; none:
            all of them.
        policies: GATE multiples policies to run, one row each.
        delayed_offset_ns: Delay of the GATE sorter's second window (a randoms estimate) in ns;
            none: no delayed window.
        repeats: Timing runs per method; the median counts.
    """

    window_ns: float = WINDOW_NS
    energy_window_kev: tuple[float, float] | None = ENERGY_WINDOW_KEV
    policies: tuple[str, ...] = POLICIES
    delayed_offset_ns: float | None = 100.0
    repeats: int = 3

    def __post_init__(self) -> None:
        check_settings(self.window_ns, self.energy_window_kev, None, self.delayed_offset_ns)
        for policy in self.policies:
            check_settings(self.window_ns, policy=policy)
        if self.repeats < 1:
            raise UserError(f"repeats must be >= 1, got {self.repeats}")
