"""The settings of every command: dataclasses validated on construction, loadable from TOML.

``weathermixer train`` takes a ``RunConfig`` (tables ``[data]``, ``[model]``, ``[train]``),
``generate`` a ``SimulationConfig``, ``evaluate`` an ``EvaluateConfig`` and ``benchmark`` a
``BenchmarkConfig``; every field is also a flag (``--train.steps``, ``--model.embed-dim``,
``--data.path``). Example ``run.toml``::

    grid = "2x2"
    output = "runs/era5-5deg"

    [data]
    path = "/data/era5/5.625deg/*.nc"
    static_path = "/data/era5/5.625deg/constants.nc"
    train_period = "1979-01-01:2015-12-31"
    valid_period = "2016-01-01:2016-12-31"
    test_period = "2018-01-01:2018-12-31"

    [model]
    patch = 2
    embed_dim = 512
    depth = 8

    [train]
    steps = 20000
    batch_size = 4
    finetune_steps = 2000
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from shared_hpc import UserError
from weathermixer.data import Variables
from weathermixer.grid import GridSpec
from weathermixer.model import ModelConfig
from weathermixer.simulate import SimulationConfig

__all__ = [
    "BenchmarkConfig",
    "DataConfig",
    "EvaluateConfig",
    "ModelConfig",
    "Precision",
    "RunConfig",
    "SimulationConfig",
    "TrainConfig",
]

Precision = Literal["auto", "fp32", "bf16"]
# The shape of the demo's data (and of the default variables at 5.625°).
_DEMO_SHAPE = {"state_channels": 12, "extra_channels": 4, "grid": (32, 64)}
_DEFAULT_SPLIT = {"train": (0.0, 0.7), "valid": (0.7, 0.85), "test": (0.85, 1.0)}


def _period_bounds(name: str, text: str) -> tuple[np.datetime64, np.datetime64]:
    """Start and end (inclusive) of a ``START:END`` period; a bare end date is a whole day."""
    try:
        start, end = (np.datetime64(s.strip(), "s") for s in text.split(":", 1))
    except ValueError:
        raise UserError(f"{name} must be 'START:END' dates, got {text!r}") from None
    if end.astype("datetime64[D]") == end:
        end = end + np.timedelta64(86399, "s")
    return start, end


def period_indices(name: str, text: str, times: np.ndarray) -> np.ndarray:
    """Indices of ``times`` in the period ``text`` ('START:END', inclusive).

    Args:
        name: The setting's name, for the error message.
        text: The period.
        times: The data's time stamps (datetime64).

    Raises:
        UserError: The period is malformed or holds none of ``times``.
    """
    start, end = _period_bounds(name, text)
    index = np.flatnonzero((times >= start) & (times <= end))
    if index.size == 0:
        raise UserError(
            f"{name} {text!r} holds no time steps (data covers {times[0]} to {times[-1]})"
        )
    return index


@dataclass(frozen=True)
class DataConfig:
    """Where the data is, which variables, the lead time and the train/valid/test periods.

    Attributes:
        path: netCDF file, folder of netCDF files, glob or zarr store.
        static_path: Separate file with the static fields; empty: they are in the data.
        pressure: Variables on pressure levels (ERA5 short names).
        levels: Pressure levels in hPa.
        surface: Surface variables.
        static: Static fields the model gets as inputs.
        lead_time_h: Hours between an input and its target.
        train_period: Training times 'START:END' (inclusive, e.g. 1979-01-01:2015-12-31);
            empty: the first 70 % of the time steps.
        valid_period: Validation times; empty: the next 15 %.
        test_period: Test times; empty: the last 15 %.
        stats_path: Normalisation statistics to use; empty: computed into the run folder.
        stats_samples: Training times the statistics are computed from, at most.
        preload: Keep this rank's part of all time steps in memory (small data only).
    """

    path: str = ""
    static_path: str = ""
    pressure: list[str] = field(default_factory=lambda: ["z", "t", "u", "v"])
    levels: list[int] = field(default_factory=lambda: [500, 850])
    surface: list[str] = field(default_factory=lambda: ["t2m", "u10", "v10", "msl"])
    static: list[str] = field(default_factory=lambda: ["geopotential_at_surface", "land_sea_mask"])
    lead_time_h: float = 6.0
    train_period: str = ""
    valid_period: str = ""
    test_period: str = ""
    stats_path: str = ""
    stats_samples: int = 1000
    preload: bool = False

    def __post_init__(self) -> None:
        _ = self.variables  # refuses empty or repeated channels
        if not self.lead_time_h > 0:
            raise UserError(f"data.lead_time_h must be positive, got {self.lead_time_h}")
        if self.stats_samples < 1:
            raise UserError(f"data.stats_samples must be >= 1, got {self.stats_samples}")
        for which in _DEFAULT_SPLIT:
            text = getattr(self, f"{which}_period")
            if text:
                _period_bounds(f"data.{which}_period", text)

    @property
    def variables(self) -> Variables:
        """The state and static variables, as the reader takes them."""
        return Variables(
            tuple(self.pressure), tuple(self.levels), tuple(self.surface), tuple(self.static)
        )

    def absolute(self) -> DataConfig:
        """The same with absolute paths, so a run directory works from any directory."""

        def resolve(path: str) -> str:
            return os.path.abspath(path) if path else path

        return replace(
            self,
            path=resolve(self.path),
            static_path=resolve(self.static_path),
            stats_path=resolve(self.stats_path),
        )

    def lead_steps(self, interval_s: int) -> int:
        """The lead time in time steps of the data.

        Args:
            interval_s: Seconds between the data's time steps.

        Raises:
            UserError: The lead time is not a whole number of time steps.
        """
        steps = self.lead_time_h * 3600.0 / interval_s
        if steps < 1 or not np.isclose(steps, round(steps)):
            raise UserError(
                f"lead time {self.lead_time_h} h is not a multiple of the data's "
                f"{interval_s / 3600:g} h time step"
            )
        return round(steps)

    def period(self, which: Literal["train", "valid", "test"], times: np.ndarray) -> np.ndarray:
        """Indices of ``times`` in the period ``which``.

        Args:
            which: ``"train"``, ``"valid"`` or ``"test"``.
            times: The data's time stamps (datetime64).

        Raises:
            UserError: The period holds none of ``times``.
        """
        text = getattr(self, f"{which}_period")
        if not text:
            a, b = _DEFAULT_SPLIT[which]
            return np.arange(int(a * times.size), int(b * times.size))
        return period_indices(f"{which}_period", text, times)


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, schedule, rollout fine-tuning, precision and checkpointing.

    The learning rate warms up linearly to ``lr`` over ``warmup_steps`` and decays along a
    cosine to ``min_lr`` at ``steps``; then ``finetune_steps`` run at ``finetune_lr`` with the
    rollout growing from 2 to ``max_rollout`` steps (GraphCast's curriculum).

    Attributes:
        steps: Training steps before the rollout fine-tuning.
        batch_size: Samples per data-parallel replica and step.
        lr: Peak learning rate.
        min_lr: Learning rate at the end of the cosine decay.
        warmup_steps: Steps of linear warm-up.
        weight_decay: AdamW weight decay (not applied to biases and norms).
        grad_clip: Largest global gradient norm; 0: no clipping.
        finetune_steps: Rollout fine-tuning steps after ``steps``.
        max_rollout: Longest rollout of the fine-tuning curriculum.
        rollout_grad_steps: Back-propagate through only the last that many steps of a rollout
            (the earlier ones run without gradients), each fine-tuning step drawing its length
            from 1 to the curriculum's current maximum; 0: through all steps.
        finetune_lr: Learning rate of the fine-tuning.
        precision: bf16 autocast on GPU ('auto'), always ('bf16') or never ('fp32').
        checkpoint_every: Steps between checkpoints.
        keep_checkpoints: Newest checkpoints kept.
        log_every: Steps between log lines.
        val_every: Steps between validations.
        val_batches: Batches of the validation period per validation.
        roll_longitude: Rotate each batch by a random whole number of patches in longitude
            (augmentation for small data sets).
        seed: Seed of the batch order and the augmentation.
    """

    steps: int = 1000
    batch_size: int = 4
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 50
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    finetune_steps: int = 0
    max_rollout: int = 4
    rollout_grad_steps: int = 0
    finetune_lr: float = 1e-4
    precision: Precision = "auto"
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    log_every: int = 10
    val_every: int = 200
    val_batches: int = 4
    roll_longitude: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        at_least_one = ("steps", "batch_size", "log_every", "checkpoint_every", "val_every")
        for name in (*at_least_one, "val_batches"):
            if getattr(self, name) < 1:
                raise UserError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "weight_decay", "grad_clip", "keep_checkpoints"):
            if not getattr(self, name) >= 0:  # also refuses NaN
                raise UserError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if not self.finetune_lr > 0:
            raise UserError(f"train.finetune_lr must be positive, got {self.finetune_lr}")
        if self.finetune_steps < 0 or self.max_rollout < 1:
            raise UserError("train.finetune_steps must be >= 0 and max_rollout >= 1")
        if self.rollout_grad_steps < 0:
            raise UserError("train.rollout_grad_steps must be >= 0")
        if self.finetune_steps and self.max_rollout < 2:
            raise UserError("rollout fine-tuning needs max_rollout >= 2")
        if not (self.lr > 0 and 0 <= self.min_lr <= self.lr):
            raise UserError(
                f"need lr > 0 and 0 <= min_lr <= lr, got lr={self.lr}, min_lr={self.min_lr}"
            )

    @property
    def total_steps(self) -> int:
        """Training plus fine-tuning steps."""
        return self.steps + self.finetune_steps

    def rollout(self, step: int) -> int:
        """Rollout length of a step: 1, then the curriculum 2 … ``max_rollout``.

        With ``rollout_grad_steps`` the length is drawn from 1 … the curriculum's current
        value, so that short and long leads keep being trained together.

        Args:
            step: The step's index in the schedule.
        """
        if step < self.steps:
            return 1
        k = step - self.steps
        top = min(self.max_rollout, 2 + k * (self.max_rollout - 1) // self.finetune_steps)
        if self.rollout_grad_steps:
            return int(np.random.default_rng([self.seed, step, 3]).integers(1, top + 1))
        return top

    def learning_rate(self, step: int) -> float:
        """Learning rate of a step: warm-up, cosine decay, then the fine-tuning rate.

        Args:
            step: The step's index in the schedule.
        """
        if step >= self.steps:
            return self.finetune_lr
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(1, self.steps - self.warmup_steps)
        progress = (step - self.warmup_steps) / span
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1 + np.cos(np.pi * progress))


@dataclass(frozen=True)
class RunConfig:
    """Everything ``weathermixer train`` needs.

    Attributes:
        data: The data and its periods.
        model: Size of the model (its channel counts and grid come from the data).
        train: Optimiser, schedule and checkpoints.
        grid: Process grid DxM: D domain ranks (latitude bands) × M tensor ranks (channels);
            the remaining factor of the ranks runs data-parallel replicas.
        output: Run folder (checkpoints, log, statistics, results.json); a run found there is
            resumed.
        force_resume: Resume the run folder's checkpoint even when it was made with other data
            (the two are mixed).
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    grid: str = "1x1"
    output: str = "weathermixer-run"
    force_resume: bool = False

    def __post_init__(self) -> None:
        GridSpec.parse(self.grid)

    @property
    def grid_spec(self) -> GridSpec:
        """The process grid."""
        return GridSpec.parse(self.grid)


@dataclass(frozen=True)
class EvaluateConfig:
    """How a trained model is scored: on which data, against which baselines.

    Attributes:
        data: Data to score on (netCDF file, folder, glob or zarr store in any layout the
            reader takes), normalised with the run's statistics; empty: the run's own data.
        static_path: Separate file with the static fields of ``data``.
        period: Initial times 'START:END'; empty: the run's test period, or all of ``data``.
        climatology: A separate (multi-year) record the climatology is fitted to; empty: the
            run's training period.
        leads_h: Lead times in hours, multiples of the run's lead time; none: 1, 4, 12 and 20
            leads.
        stride_h: Hours between initial times.
        grid: Process grid DxM of the evaluation (any grid: the checkpoint is resharded).
        batch_size: Forecasts per batch and replica.
        max_forecasts: Initial times scored at most; none: every one of the test period.
        max_climatology_samples: Times the climatology is fitted to, at most (drawn at
            random), and consecutive training times the damped persistence is fitted to.
    """

    data: str = ""
    static_path: str = ""
    period: str = ""
    climatology: str = ""
    leads_h: list[float] | None = None
    stride_h: float = 24.0
    grid: str = "1x1"
    batch_size: int = 4
    max_forecasts: int | None = None
    max_climatology_samples: int = 8000

    def __post_init__(self) -> None:
        GridSpec.parse(self.grid)
        if self.period:
            _period_bounds("period", self.period)
        if self.leads_h is not None and not (self.leads_h and min(self.leads_h) > 0):
            raise UserError(f"leads_h must be positive lead times, got {self.leads_h}")
        if not self.stride_h > 0:
            raise UserError(f"stride_h must be positive, got {self.stride_h}")
        for name in ("batch_size", "max_forecasts", "max_climatology_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"{name} must be >= 1, got {value}")


@dataclass(frozen=True)
class BenchmarkConfig:
    """Training steps on synthetic inputs, for time, memory and bytes sent per rank.

    Attributes:
        model: The model; its channel counts and grid shape the synthetic inputs (unset ones
            are the demo data's: 12 state and 4 extra channels on 32 × 64).
        grid: Process grid DxM.
        batch_size: Samples per data-parallel replica.
        steps: Timed steps.
        warmup: Untimed steps before them.
        precision: bf16 autocast on GPU ('auto'), always ('bf16') or never ('fp32').
        compile: torch.compile the model (grid 1x1 only).
        peak_tflops: Peak TFLOP/s of the device, for the model FLOP utilisation; none: not
            computed.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    grid: str = "1x1"
    batch_size: int = 2
    steps: int = 5
    warmup: int = 2
    precision: Precision = "auto"
    compile: bool = False
    peak_tflops: float | None = None

    def __post_init__(self) -> None:
        unset = {k: v for k, v in _DEMO_SHAPE.items() if getattr(self.model, k) is None}
        object.__setattr__(self, "model", replace(self.model, **unset))
        if self.steps < 1 or self.warmup < 0 or self.batch_size < 1:
            raise UserError("need steps >= 1, warmup >= 0 and batch_size >= 1")
        if self.peak_tflops is not None and not self.peak_tflops > 0:
            raise UserError(f"peak_tflops must be positive, got {self.peak_tflops}")
        if self.compile and GridSpec.parse(self.grid).size > 1:
            raise UserError("torch.compile is supported on grid 1x1 (its collectives break graphs)")
