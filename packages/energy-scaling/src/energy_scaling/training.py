"""Train one point of a sweep, data parallel, and measure what it cost.

Every optimizer update consumes one global batch of a seeded permutation. The batch is cut into
``ranks × accumulation`` micro-batches of ``local_batch`` samples; rank ``r`` takes micro-batches
``a·ranks + r``. Each backward pass but the last of an update runs under DDP's ``no_sync``, so
gradients cross the network once per update, and each loss is divided by the accumulation
count: the update equals that of one pass over the whole global batch (up to BatchNorm, whose
statistics are per micro-batch, as with any data-parallel run without SyncBatchNorm). The same
layout makes one rank with accumulation 2 process exactly the micro-batches of two ranks.

Energy is read through shared-hpc's ``EnergyMeter`` between validations (inside a command's
``Recorder`` it reuses the recorder's sensors), so time *and* energy to the target metric are
measured at the validation where the target was first met.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset, default_collate

from energy_scaling.config import SweepConfig, TrainConfig
from energy_scaling.data import Samples
from energy_scaling.models import build_model
from energy_scaling.sweep import Point
from shared_hpc import Comm, EnergyMeter, Headline, UserError, get_comm, torch_distributed

__all__ = ["Evaluation", "PointResult", "TrainingDiverged", "train_point"]


class TrainingDiverged(UserError):
    """The loss became NaN or infinite (the learning rate is too large for this batch)."""


@dataclass(frozen=True)
class Evaluation:
    """One validation during training.

    Attributes:
        update: Optimizer updates so far.
        epoch: Epochs so far (fractional between epoch ends).
        seconds: Wall time since training began.
        joules: Energy since training began, all nodes and device kinds.
        metric: The validation metric.
        train_loss: Mean training loss since the previous validation.
    """

    update: int
    epoch: float
    seconds: float
    joules: float
    metric: float
    train_loss: float


@dataclass
class PointResult:
    """What one point's training reached and cost.

    Attributes:
        point: The configuration.
        metric: Name of the validation metric.
        higher_is_better: Whether a larger metric is better.
        history: Every validation, in order.
        seconds: Wall time of the training (validations included).
        samples: Training samples processed (all ranks).
        updates: Optimizer updates.
        device: ``cpu`` or ``gpu``: what a device-hour counts.
        joules: Energy per device kind (``cpu``, ``dram``, ``gpu``), all nodes.
        methods: Per kind, the method that produced its number (``rapl``, ``nvml``,
            ``estimated``).
        measured: Every number comes from a hardware counter.
        target: The target metric, if one was set.
        precision: ``fp32`` or ``bf16``.
        model: The trained network (rank-local; not part of the metrics).
    """

    point: Point
    metric: str
    higher_is_better: bool
    history: list[Evaluation]
    seconds: float
    samples: int
    updates: int
    device: str
    joules: dict[str, float]
    methods: dict[str, str]
    measured: bool
    target: float | None = None
    precision: str = "fp32"
    model: nn.Module | None = field(default=None, repr=False)

    @property
    def final(self) -> float:
        return self.history[-1].metric

    @property
    def best(self) -> float:
        pick = max if self.higher_is_better else min
        return pick(e.metric for e in self.history)

    @property
    def device_hours(self) -> float:
        return self.point.ranks * self.seconds / 3600.0

    @property
    def energy_j(self) -> float:
        return sum(self.joules.values())

    def reached(self) -> Evaluation | None:
        """The first validation that met the target (``None``: not met or no target)."""
        if self.target is None:
            return None
        for e in self.history:
            if (e.metric >= self.target) if self.higher_is_better else (e.metric <= self.target):
                return e
        return None

    def metrics(self) -> dict[str, Any]:
        """The point's record: metric, time, device-hours, energy by kind and method, rates."""
        hit = self.reached()
        hours = self.device_hours
        return {
            "point": self.point.id,
            "ranks": self.point.ranks,
            "global_batch": self.point.global_batch,
            "local_batch": self.point.local_batch,
            "accumulation": self.point.accumulation,
            "lr": self.point.lr,
            "precision": self.precision,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "final_metric": self.final,
            "best_metric": self.best,
            "target": self.target,
            "wall_time_s": self.seconds,
            "time_to_target_s": hit.seconds if hit else None,
            "energy_to_target_j": hit.joules if hit else None,
            "device": self.device,
            "device_hours": hours,
            "energy_j": self.energy_j,
            "energy_by_device_j": dict(self.joules),
            "energy_methods": dict(self.methods),
            "energy_measured": self.measured,
            "samples": self.samples,
            "updates": self.updates,
            "samples_per_device_hour": self.samples / hours if hours else None,
            "updates_per_device_hour": self.updates / hours if hours else None,
            "throughput_samples_per_s": self.samples / self.seconds if self.seconds else None,
            "history": [vars(e) for e in self.history],
        }

    def headline(self) -> Headline:
        return Headline(
            f"validation {self.metric} at {self.point.id}",
            self.final,
            higher_is_better=self.higher_is_better,
        )


def _lr_factor(warmup: int, total: int, schedule: str) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _batch(dataset: Dataset, index: np.ndarray, device: torch.device) -> tuple[Any, Any]:
    if isinstance(dataset, TensorDataset):
        x, y = dataset.tensors
        x, y = x[index], y[index]
    else:
        x, y = default_collate([dataset[int(i)] for i in index])
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


class _Loss:
    """Cross-entropy for classes; latitude-weighted MSE for forecasts (and its RMSE metric)."""

    def __init__(self, samples: Samples, device: torch.device) -> None:
        self.task = samples.task
        w = samples.lat_weights
        self.weights = None if w is None else w.to(device).reshape(1, 1, -1, 1)

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.task == "classify":
            return nn.functional.cross_entropy(out, y)
        return ((out - y) ** 2 * self.weights).mean()

    def score(self, out: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """(sum, count) whose ratio over all batches is accuracy or the weighted MSE."""
        if self.task == "classify":
            return float((out.argmax(1) == y).sum()), float(len(y))
        return float(((out - y) ** 2 * self.weights).sum()), float(y.numel())


@torch.no_grad()
def _validate(
    model: nn.Module,
    dataset: Dataset,
    loss: _Loss,
    comm: Comm,
    device: torch.device,
    batch: int,
    bf16: bool,
) -> float:
    """The validation metric, each rank scoring every ``size``-th sample."""
    model.eval()
    shard = np.arange(comm.Get_rank(), len(dataset), comm.Get_size())
    total = np.zeros(2)
    for start in range(0, len(shard), batch):
        x, y = _batch(dataset, shard[start : start + batch], device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        total += loss.score(out.float(), y)
    model.train()
    total = comm.allreduce(total)
    ratio = float(total[0] / max(total[1], 1.0))
    return ratio if loss.task == "classify" else math.sqrt(ratio)


def _update(
    wrapped: nn.Module,
    group: bool,
    loss_fn: _Loss,
    samples: Samples,
    batch: np.ndarray,
    point: Point,
    rank: int,
    device: torch.device,
    bf16: bool,
) -> torch.Tensor:
    """Forward and backward passes of this rank's micro-batches of one global batch; the
    gradients are all-reduced only with the last one. Returns this rank's loss as a tensor on
    the device (reading it would wait for the device at every update)."""
    wrapped.zero_grad(set_to_none=True)
    acc, local = point.accumulation, point.local_batch
    step_loss = torch.zeros((), device=device)
    for a in range(acc):
        chunk = a * point.ranks + rank
        x, y = _batch(samples.train, batch[chunk * local : (chunk + 1) * local], device)
        quiet = group and a < acc - 1
        with wrapped.no_sync() if quiet else contextlib.nullcontext():  # type: ignore[operator]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = loss_fn(wrapped(x), y) / acc
            loss.backward()
        step_loss += loss.detach()
    return step_loss


def _optimizer(model: nn.Module, config: TrainConfig, lr: float) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=lr,
            momentum=config.momentum,
            nesterov=config.momentum > 0,
            weight_decay=config.weight_decay,
        )
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=config.weight_decay)


class _EnergyLog:
    """Energy since training began, read from shared-hpc's meter at every validation.

    The meter is stopped and restarted at each reading (collective over ``comm``); inside a
    command's ``Recorder`` it shares the recorder's sensors instead of opening them again.
    """

    def __init__(self, comm: Comm, enabled: bool) -> None:
        self.meter = EnergyMeter(comm) if enabled else None
        self.total = 0.0
        self.joules: dict[str, float] = {}
        self.methods: dict[str, set[str]] = {}

    def start(self) -> None:
        if self.meter is not None:
            self.meter.start()

    def read(self) -> float:
        """Stop the meter, add its report, and return the energy so far in joules."""
        if self.meter is not None:
            report = self.meter.stop()
            self.total += report.total_joules
            for kind, value in report.joules.items():
                self.joules[kind] = self.joules.get(kind, 0.0) + value
                self.methods.setdefault(kind, set()).add(report.methods[kind])
        return self.total

    def abandon(self) -> None:
        """After a failure: release the sensors without a collective call."""
        if self.meter is not None:
            self.meter.abandon()


def _device(name: str, info: Any) -> torch.device:
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    from shared_hpc import resolve_device

    resolve_device("cuda")
    return info.device if info.device.type == "cuda" else torch.device("cuda")


def train_point(
    sweep: SweepConfig,
    point: Point,
    samples: Samples,
    comm: Comm | None = None,
    *,
    progress: Callable[[Evaluation], None] | None = None,
    measure_energy: bool = True,
) -> PointResult:
    """Train ``sweep``'s model at ``point`` on ``samples`` over the ranks of ``comm``.

    Args:
        sweep: Model and training recipe.
        point: Ranks, batch sizes and learning rate; ``comm`` must have ``point.ranks`` ranks.
        samples: Training and validation data.
        comm: The ranks training together (default: ``get_comm()``).
        progress: Called after every validation (on every rank).
        measure_energy: Read the energy meter at every validation (off: no energy figures,
            for measuring the meter's own overhead).

    Raises:
        UserError: ``comm`` has another size than the point, or the global batch exceeds the
            training samples.
        TrainingDiverged: The loss became NaN or infinite.
    """
    comm = get_comm() if comm is None else comm
    if comm.Get_size() != point.ranks:
        raise UserError(f"point {point.id} needs {point.ranks} rank(s); this job has "
                        f"{comm.Get_size()}")  # fmt: skip
    train_cfg = sweep.train
    n = len(samples.train)
    per_epoch = n // point.global_batch
    if per_epoch < 1:
        raise UserError(
            f"global batch {point.global_batch} exceeds the {n} training samples ({point.id})"
        )
    total = per_epoch * train_cfg.epochs
    if train_cfg.max_steps:
        total = min(total, train_cfg.max_steps)
    every = max(1, per_epoch // train_cfg.evals_per_epoch)
    torch.manual_seed(train_cfg.seed)
    model = build_model(sweep.model, samples)
    with torch_distributed(comm) as info:
        device = _device(sweep.device, info)
        model.to(device)
        wrapped: nn.Module = model
        if info.group:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            wrapped = DistributedDataParallel(model, device_ids=ids)
        optimizer = _optimizer(model, train_cfg, point.lr)
        warmup = round(train_cfg.warmup_epochs * per_epoch)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, _lr_factor(warmup, total, train_cfg.schedule)
        )
        loss_fn = _Loss(samples, device)
        bf16 = train_cfg.precision == "bf16"
        rank, ranks = comm.Get_rank(), point.ranks
        history: list[Evaluation] = []
        losses: list[torch.Tensor] = []
        update, seconds = 0, 0.0
        energy = _EnergyLog(comm, measure_energy)
        energy.start()
        began = time.perf_counter()
        epoch = 0
        try:
            while update < total:
                order = np.random.default_rng([train_cfg.seed, epoch]).permutation(n)
                for first in range(0, per_epoch * point.global_batch, point.global_batch):
                    if update >= total:
                        break
                    batch = order[first : first + point.global_batch]
                    step_loss = _update(
                        wrapped, info.group, loss_fn, samples, batch, point, rank, device, bf16
                    )
                    optimizer.step()
                    scheduler.step()
                    losses.append(step_loss)
                    update += 1
                    if update % every and update < total:
                        continue
                    metric = _validate(
                        model,
                        samples.validation,
                        loss_fn,
                        comm,
                        device,
                        max(point.local_batch, 256),
                        bf16,
                    )
                    joules = energy.read()
                    seconds = time.perf_counter() - began
                    mean_loss = comm.allreduce(float(torch.stack(losses).sum())) / (
                        len(losses) * ranks
                    )
                    if not math.isfinite(mean_loss):  # the same on every rank: all stop
                        raise TrainingDiverged(
                            f"training diverged before update {update} of {point.id} (lr "
                            f"{point.lr:.4g}); lower train.base_lr or lengthen the warm-up"
                        )
                    losses = []
                    evaluation = Evaluation(update, update / per_epoch, seconds, joules, metric,
                                            mean_loss)  # fmt: skip
                    history.append(evaluation)
                    if progress is not None:
                        progress(evaluation)
                    if update < total:
                        energy.start()
                epoch += 1
        except BaseException:
            energy.abandon()  # no collective on the way out: another rank may have failed
            raise
    return PointResult(
        point=point,
        metric=samples.metric,
        higher_is_better=samples.higher_is_better,
        history=history,
        seconds=seconds,
        samples=update * point.global_batch,
        updates=update,
        device="gpu" if device.type == "cuda" else "cpu",
        joules=energy.joules,
        methods={k: "+".join(sorted(v)) for k, v in energy.methods.items()},
        measured=bool(energy.methods)
        and all(m <= {"rapl", "nvml"} for m in energy.methods.values()),
        target=train_cfg.target,
        precision=train_cfg.precision,
        model=model,
    )
