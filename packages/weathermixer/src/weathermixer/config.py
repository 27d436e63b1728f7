"""Run configuration: dataclasses, loadable from TOML with ``shared_hpc.load_config``.

Example ``run.toml``::

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

from weathermixer.data import Variables
from weathermixer.grid import GridSpec
from weathermixer.model import ModelConfig


@dataclass
class DataConfig:
    """Where the data is, which variables, lead time and the train/valid/test periods.

    Periods are ``"START:END"`` (inclusive, anything numpy's datetime64 reads); empty means
    the first 70 %, the next 15 % and the last 15 % of the time steps. ``preload`` keeps the
    rank's part of all time steps in memory (small data only; default: lazy reads).
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

    @property
    def variables(self) -> Variables:
        return Variables(
            tuple(self.pressure), tuple(self.levels), tuple(self.surface), tuple(self.static)
        )

    def absolute(self) -> DataConfig:
        """The same with absolute paths, so a run directory works from any directory."""

        def resolve(path: str | list[str]) -> str | list[str]:
            if isinstance(path, (list, tuple)):
                return [os.path.abspath(p) for p in path]
            return os.path.abspath(path) if path else path

        return replace(
            self,
            path=resolve(self.path),
            static_path=resolve(self.static_path),
            stats_path=resolve(self.stats_path),
        )

    def lead_steps(self, interval_s: int) -> int:
        lead_s = self.lead_time_h * 3600.0
        steps = lead_s / interval_s
        if steps < 1 or not np.isclose(steps, round(steps)):
            raise ValueError(
                f"lead time {self.lead_time_h} h is not a multiple of the data's "
                f"{interval_s / 3600:g} h time step"
            )
        return round(steps)

    def period(self, which: str, times: np.ndarray) -> np.ndarray:
        """Indices of ``times`` in the ``which`` period ('train', 'valid', 'test')."""
        text = {"train": self.train_period, "valid": self.valid_period, "test": self.test_period}[
            which
        ]
        n = times.size
        if not text:
            a, b = {"train": (0.0, 0.7), "valid": (0.7, 0.85), "test": (0.85, 1.0)}[which]
            return np.arange(int(a * n), int(b * n))
        try:
            start, end = (np.datetime64(s.strip(), "s") for s in text.split(":", 1))
        except ValueError:
            raise ValueError(f"{which}_period must be 'START:END' dates, got {text!r}") from None
        if end.astype("datetime64[D]") == end:  # a bare end date includes that whole day
            end = end + np.timedelta64(86399, "s")
        index = np.flatnonzero((times >= start) & (times <= end))
        if index.size == 0:
            raise ValueError(
                f"{which}_period {text!r} holds no time steps (data covers "
                f"{times[0]} to {times[-1]})"
            )
        return index


@dataclass
class ArchConfig:
    """Model size (the channel counts and grid come from the data)."""

    patch: int = 2
    embed_dim: int = 128
    token_hidden: int = 256
    channel_hidden: int = 512
    depth: int = 4
    history: int = 2
    seed: int = 0

    def model_config(self, variables: Variables, grid: tuple[int, int]) -> ModelConfig:
        return ModelConfig(
            state_channels=len(variables.state_channels),
            extra_channels=len(variables.extra_channels),
            history=self.history,
            grid=grid,
            patch=self.patch,
            embed_dim=self.embed_dim,
            token_hidden=self.token_hidden,
            channel_hidden=self.channel_hidden,
            depth=self.depth,
            seed=self.seed,
        )


@dataclass
class TrainConfig:
    """Optimiser, schedule, rollout fine-tuning, precision and checkpointing.

    Learning rate: linear warm-up to ``lr`` over ``warmup_steps``, cosine decay to ``min_lr``
    at ``steps``; then ``finetune_steps`` at ``finetune_lr`` with the rollout growing from 2 to
    ``max_rollout`` steps (GraphCast's curriculum). ``batch_size`` is per data-parallel replica.
    ``rollout_grad_steps`` > 0 back-propagates only through the last that many steps of a
    rollout (the earlier ones run without gradients: the "pushforward" trick), so long
    rollouts — which teach the model to damp what it cannot predict — stay affordable; each
    fine-tuning step then draws its length from 1 to the curriculum's current maximum.
    ``roll_longitude`` rotates each batch by a random whole number of patches in longitude
    (augmentation for small data sets; see :func:`weathermixer.train._roll`).
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
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    log_every: int = 10
    val_every: int = 200
    val_batches: int = 4
    roll_longitude: bool = False
    seed: int = 0

    def check(self) -> None:
        for name in ("steps", "batch_size", "log_every", "checkpoint_every", "val_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.finetune_steps < 0 or self.max_rollout < 1:
            raise ValueError("train.finetune_steps must be >= 0 and max_rollout >= 1")
        if self.rollout_grad_steps < 0:
            raise ValueError("train.rollout_grad_steps must be >= 0")
        if self.finetune_steps and self.max_rollout < 2:
            raise ValueError("rollout fine-tuning needs max_rollout >= 2")
        if not (self.lr > 0 and 0 <= self.min_lr <= self.lr):
            raise ValueError(
                f"need lr > 0 and 0 <= min_lr <= lr, got lr={self.lr}, min_lr={self.min_lr}"
            )

    @property
    def total_steps(self) -> int:
        return self.steps + self.finetune_steps

    def rollout(self, step: int) -> int:
        """Rollout length of ``step``: 1, then the curriculum 2 … ``max_rollout``; with
        ``rollout_grad_steps`` a length drawn from 1 … the curriculum's current value, so that
        short and long leads keep being trained together."""
        if step < self.steps:
            return 1
        k = step - self.steps
        top = min(self.max_rollout, 2 + k * (self.max_rollout - 1) // self.finetune_steps)
        if self.rollout_grad_steps:
            return int(np.random.default_rng([self.seed, step, 3]).integers(1, top + 1))
        return top

    def learning_rate(self, step: int) -> float:
        if step >= self.steps:
            return self.finetune_lr
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(1, self.steps - self.warmup_steps)
        progress = (step - self.warmup_steps) / span
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1 + np.cos(np.pi * progress))


@dataclass
class RunConfig:
    """Everything ``weathermixer train`` needs."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ArchConfig = field(default_factory=ArchConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    grid: str = "1x1"
    output: str = "weathermixer-run"

    @property
    def grid_spec(self) -> GridSpec:
        return GridSpec.parse(self.grid)
