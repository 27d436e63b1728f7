"""Training with data parallelism over MPI ranks (torch DistributedDataParallel on gloo/NCCL).

Every rank draws the same shuffled order of samples each epoch and takes every ``size``-th
batch of it, so ranks see disjoint data and take the same number of steps. After each epoch
the validation singles are scored (each rank predicts its share, the flags are summed), rank 0
writes ``last.pt`` (for resume) and, when validation F1 improved, ``best.pt``, both atomically.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from petnet.__about__ import __version__
from petnet.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from petnet.inference import PETNetSorter, build_model
from petnet.loss import count_timing_loss
from petnet.metrics import score
from petnet.model import ModelConfig
from petnet.patches import hit_patches
from petnet.singles import Singles
from petnet.spikes import EncodingConfig, SpikeStream, densify, encode, window_starts
from shared_hpc import EnergyMeter, get_comm, load_config, torch_distributed


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; ``batch_size`` is per rank (patches or windows)."""

    epochs: int = 5
    batch_size: int = 512
    window_bins: int = 64  # dense architecture: time bins per training window
    lr: float = 2e-3
    timing_weight: float = 0.1
    count_window_bins: int | None = 1  # None: count over the whole sample, as in the paper
    miss_weight: float = 2.0  # cost of a missed target spike relative to an extra spike
    grad_clip: float = 1.0
    validation_fraction: float = 0.2
    max_steps_per_epoch: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.window_bins < 8:
            raise ValueError("epochs and batch_size must be >= 1, window_bins >= 8")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError("validation_fraction must be in (0, 1)")
        if not self.miss_weight > 0:
            raise ValueError(f"miss_weight must be > 0, got {self.miss_weight}")
        if self.count_window_bins is not None and self.count_window_bins < 1:
            raise ValueError("count_window_bins must be >= 1 or None")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise ValueError("max_steps_per_epoch must be >= 1 or None")


@dataclass(frozen=True)
class PETNetConfig:
    """Everything a training run needs besides data; loadable from TOML sections."""

    model: ModelConfig = field(default_factory=ModelConfig)
    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class TrainResult:
    best_f1: float
    best_epoch: int
    history: list[dict[str, float]]
    best_checkpoint: Path
    last_checkpoint: Path
    wall_time_s: float
    energy: dict[str, Any] | None
    world_size: int


def split_by_time(singles: Singles, validation_fraction: float) -> tuple[Singles, Singles]:
    """Earlier part for training, the last ``validation_fraction`` of the time for validation."""
    if len(singles) < 2:
        raise ValueError("training needs at least two singles")
    t0, t1 = singles.time_ns[0], singles.time_ns[-1]
    cut = np.searchsorted(singles.time_ns, t0 + (1 - validation_fraction) * (t1 - t0))
    return singles.subset(slice(0, cut)), singles.subset(slice(cut, None))


class _Samples:
    """Training samples of one architecture: hit indices (ring) or window starts (dense)."""

    def __init__(self, stream: SpikeStream, singles: Singles, config: PETNetConfig) -> None:
        self.stream, self.singles, self.config = stream, singles, config
        self.dense = config.model.architecture == "dense"
        length = config.train.window_bins
        self.index = window_starts(stream, length, length) if self.dense else np.arange(len(stream))

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, picks: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        if self.dense:
            x, y = densify(
                self.stream, self.index[picks], cfg.train.window_bins, cfg.encoding, device
            )
            return x, y
        x, y = hit_patches(
            self.stream,
            self.index[picks],
            self.singles.scanner,
            cfg.encoding,
            cfg.model.geometry_scales,
        )
        return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)


def train(
    singles: Singles,
    config: PETNetConfig,
    output_dir: str | os.PathLike[str],
    validation: Singles | None = None,
    resume: str | os.PathLike[str] | None = None,
    comm: Any = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train on ``singles`` (ground truth needed); validation defaults to its last part."""
    if not singles.has_truth or (validation is not None and not validation.has_truth):
        raise ValueError("training needs singles with ground truth (decay_id, scattered)")
    comm = get_comm() if comm is None else comm
    output_dir = Path(output_dir)
    payload = None
    if resume is not None:
        payload = load_checkpoint(resume)
        config = _resumed_config(payload, config, comm.Get_size(), resume)
        if payload["scanner"] != singles.scanner.to_dict():
            raise CheckpointError(f"{resume} was trained on another scanner than these singles")
    if validation is None:
        singles, validation = split_by_time(singles, config.train.validation_fraction)
    if validation.scanner != singles.scanner:
        raise ValueError("training and validation singles come from different scanners")
    log = log or (lambda message: None)
    started = time.perf_counter()
    with EnergyMeter(comm) as meter, torch_distributed(comm) as info:
        result = _fit(singles, validation, config, output_dir, payload, info, log)
    result.energy = meter.report.to_dict()
    result.wall_time_s = time.perf_counter() - started
    return result


def _resumed_config(
    payload: dict[str, Any], config: PETNetConfig, world_size: int, path: Any
) -> PETNetConfig:
    """The model and encoding stored in the checkpoint with this run's training settings;
    configuring a different (non-default) model or encoding, or rank count, is refused."""
    stored_world = payload.get("world_size")
    if stored_world != world_size:
        raise CheckpointError(
            f"{path} was written by a run on {stored_world} rank(s); resume it on the same "
            f"number of ranks (this run has {world_size})"
        )
    model = load_config(ModelConfig, payload["model"])
    encoding = load_config(EncodingConfig, payload["encoding"])
    if (config.model, config.encoding) != (ModelConfig(), EncodingConfig()) and (
        config.model != model or config.encoding != encoding
    ):
        raise CheckpointError(
            f"{path} holds a different model or encoding than the one configured; "
            "resume without them or start a new run"
        )
    return PETNetConfig(model=model, encoding=encoding, train=config.train)


def _fit(
    singles: Singles,
    validation: Singles,
    config: PETNetConfig,
    output_dir: Path,
    payload: dict[str, Any] | None,
    info: Any,
    log: Callable[[str], None],
) -> TrainResult:
    rank, world = info.rank, info.world_size
    device = info.device
    cfg = config.train
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    scanner = singles.scanner
    net = build_model(scanner, config.encoding, config.model).to(device)
    torch.manual_seed(cfg.seed + 7919 * (rank + 1))  # training noise differs per rank
    samples = _Samples(encode(singles, config.encoding), singles, config)
    steps = len(samples) // (cfg.batch_size * world)
    if cfg.max_steps_per_epoch is not None:
        steps = min(steps, cfg.max_steps_per_epoch)
    if steps < 1:
        raise ValueError(
            f"{len(samples)} training samples are too few for {world} rank(s) × batch size "
            f"{cfg.batch_size}; simulate longer or lower the batch size"
        )
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps, pct_start=0.1
    )
    start_epoch, best_f1, best_epoch, history = 0, -1.0, -1, []
    if payload is not None:
        net.load_state_dict(payload["state_dict"])
        optimizer.load_state_dict(payload["optimizer"])
        schedule.load_state_dict(payload["scheduler"])
        start_epoch = payload["epoch"] + 1
        best_f1, best_epoch = payload["best_f1"], payload["best_epoch"]
        history = list(payload["history"])
        torch.set_rng_state(payload["rng_states"][rank])
        if payload["steps_per_epoch"] != steps or payload["train"]["epochs"] != cfg.epochs:
            raise CheckpointError(
                "the checkpoint's schedule does not match this run (steps per epoch or epochs "
                "changed); resume with the same data, batch size and number of epochs"
            )
    model = DistributedDataParallel(net) if world > 1 else net
    sorter = PETNetSorter(net, scanner, config.encoding, device=device)
    common = {
        "version": __version__,
        "scanner": scanner.to_dict(),
        "model": asdict(config.model),
        "encoding": asdict(config.encoding),
        "train": asdict(cfg),
        "world_size": world,
        "steps_per_epoch": steps,
    }
    best_path, last_path = output_dir / "best.pt", output_dir / "last.pt"
    for epoch in range(start_epoch, cfg.epochs):
        tic = time.perf_counter()
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(samples))
        net.train()
        total = torch.zeros(2, device=device)
        for step in range(steps):
            picks = order[(step * world + rank) * cfg.batch_size :][: cfg.batch_size]
            x, y = samples.batch(picks, device)
            out = model(x)
            loss = count_timing_loss(
                out,
                y,
                timing_weight=cfg.timing_weight,
                tolerance_bins=config.encoding.tolerance_bins,
                count_window_bins=cfg.count_window_bins,
                miss_weight=cfg.miss_weight,
            )
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch}, step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            optimizer.step()
            schedule.step()
            total += torch.stack([loss.detach(), torch.ones((), device=device)])
        if world > 1:
            dist.all_reduce(total)
        rng_states = [torch.get_rng_state()]
        if world > 1:
            rng_states = [None] * world
            dist.all_gather_object(rng_states, torch.get_rng_state())
        scores = _validate(sorter, validation, rank, world, device)
        record = {
            "epoch": epoch,
            "loss": float(total[0] / total[1]),
            "val_f1": scores.f1,
            "val_precision": scores.precision,
            "val_recall": scores.recall,
            "seconds": time.perf_counter() - tic,
        }
        history.append(record)
        improved = scores.f1 > best_f1
        if improved:
            best_f1, best_epoch = scores.f1, epoch
        if rank == 0:
            state = {
                **common,
                "state_dict": net.state_dict(),
                "epoch": epoch,
                "best_f1": best_f1,
                "best_epoch": best_epoch,
                "history": history,
                "val_f1": scores.f1,
            }
            if improved:
                save_checkpoint(best_path, state)
            save_checkpoint(
                last_path,
                {
                    **state,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": schedule.state_dict(),
                    "rng_states": rng_states,
                },
            )
        log(
            f"epoch {epoch}: loss {record['loss']:.4f}, validation F1 {scores.f1:.4f} "
            f"(P {scores.precision:.4f}, R {scores.recall:.4f}), {record['seconds']:.1f} s"
        )
        if world > 1:
            dist.barrier()
    return TrainResult(best_f1, best_epoch, history, best_path, last_path, 0.0, None, world)


def _validate(sorter: PETNetSorter, singles: Singles, rank: int, world: int, device: Any):
    """Each rank predicts its share; flags and spurious spikes are summed over ranks."""
    decoded = sorter.predict(singles, shard=(rank, world))
    flags = torch.from_numpy(decoded.flags.astype(np.int32)).to(device)
    spurious = torch.tensor([decoded.spurious], device=device)
    if world > 1:
        dist.all_reduce(flags)
        dist.all_reduce(spurious)
    return score(singles, flags.cpu().numpy() > 0, int(spurious.item()))
