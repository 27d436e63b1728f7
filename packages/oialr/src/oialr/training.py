"""Training a recipe with OIALR or at full rank, data parallel over MPI ranks.

The loop is the plain one a user already has, plus ``OIALR.step()`` after each optimizer step.
Every rank sees its slice of the same global batches (the batches do not depend on the number
of ranks), gradients are averaged by ``DistributedDataParallel``, and validation is spread over
the ranks. A checkpoint after every ``checkpoint_every`` epochs holds the model, the optimizer,
the learning-rate schedule and OIALR's state, so a run resumes exactly where it stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset, default_collate

from oialr.config import TrainConfig
from oialr.data import load_split
from oialr.recipes import Recipe
from oialr.schedule import OIALR, LayerEvent, count_parameters
from shared_hpc import (
    Comm,
    Headline,
    UserError,
    atomic_path,
    check_resume,
    file_fingerprint,
    get_comm,
    torch_distributed,
)

__all__ = ["EpochRecord", "TrainResult", "train"]


@dataclass(frozen=True)
class EpochRecord:
    """Where a run stood after one epoch.

    Attributes:
        epoch: Epochs done.
        step: Optimizer steps done.
        train_loss: Mean training loss of the epoch, over all ranks.
        validation: Validation accuracy (classification) or mean squared error (forecast).
        trainable: Trainable parameters of the model.
        total: All weights, frozen bases included.
        ranks: Rank of each layer OIALR manages (empty at full rank).
        seconds: Training time so far (validation excluded).
    """

    epoch: int
    step: int
    train_loss: float
    validation: float
    trainable: int
    total: int
    ranks: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    """A finished run.

    Attributes:
        recipe: The recipe's name.
        full_rank: Whether OIALR was off.
        metric: ``"accuracy"`` or ``"mse"``.
        test: The metric on the test data after the last epoch.
        history: One record per epoch.
        dense_parameters: Trainable parameters of the dense network (the reference for shares).
        seconds_per_step: Mean wall time of one training step on this rank.
        events: What OIALR did (empty at full rank).
    """

    recipe: str
    full_rank: bool
    metric: str
    test: float
    history: list[EpochRecord]
    dense_parameters: int
    seconds_per_step: float
    events: list[LayerEvent] = field(default_factory=list)

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "accuracy"

    @property
    def trainable_share(self) -> float:
        """Trainable parameters at the end as a share of the dense network's."""
        return self.history[-1].trainable / self.dense_parameters

    def metrics(self) -> dict[str, Any]:
        """The figures a run record keeps."""
        last = self.history[-1]
        return {
            "test_" + self.metric: self.test,
            "validation_" + self.metric: last.validation,
            "trainable_parameters": last.trainable,
            "total_parameters": last.total,
            "dense_parameters": self.dense_parameters,
            "trainable_share": self.trainable_share,
            "seconds_per_step": self.seconds_per_step,
            "ranks": last.ranks,
            "epochs": last.epoch,
            "steps": last.step,
        }

    def headline(self) -> Headline:
        """Test metric of the run, naming the share of trainable parameters."""
        mode = "full rank" if self.full_rank else f"{self.trainable_share:.1%} trainable"
        return Headline(
            f"test {self.metric} ({self.recipe}, {mode})",
            self.test,
            higher_is_better=self.higher_is_better,
        )


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.momentum > 0,
            weight_decay=config.weight_decay,
        )
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _lr_factor(config: TrainConfig, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.lr_schedule == "constant":
            return 1.0
        progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _global_batches(n: int, batch: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The epoch's global batches: a seeded permutation, the last incomplete batch dropped."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return [order[i : i + batch] for i in range(0, n - batch + 1, batch)]


def _batch(dataset: Dataset, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples ``index`` of ``dataset`` as one batch (tensors in memory are sliced)."""
    if isinstance(dataset, TensorDataset):
        x, y = dataset.tensors
        return x[index], y[index]
    return default_collate([dataset[int(i)] for i in index])


@torch.no_grad()
def _evaluate(model: nn.Module, dataset: Dataset, task: str, comm: Comm) -> float:
    """Accuracy or mean squared error over ``dataset``, each rank scoring its share."""
    model.eval()
    rank, size = comm.Get_rank(), comm.Get_size()
    shard = np.arange(rank, len(dataset), size)
    score, count = 0.0, 0
    for start in range(0, len(shard), 512):
        x, y = _batch(dataset, shard[start : start + 512])
        out = model(x)
        if task == "classify":
            score += float((out.argmax(1) == y).sum())
            count += len(y)
        else:
            score += float(((out - y) ** 2).sum())
            count += y.numel()
    model.train()
    score, count = comm.allreduce(np.array([score, count]))
    return float(score / count)


def _fingerprint(recipe: Recipe, config: TrainConfig) -> dict[str, Any]:
    """What the data are: the dataset's name, and a file's content where it is read from disk."""
    if recipe.dataset == "cifar10":
        first = Path(config.data or "data") / "cifar-10-batches-py" / "data_batch_1"
        return file_fingerprint(first, name=recipe.dataset)
    return {"name": recipe.dataset}


def train(
    recipe: Recipe,
    config: TrainConfig,
    comm: Comm | None = None,
    *,
    checkpoint: Path | None = None,
    resume: bool = False,
    force_resume: bool = False,
    progress: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Train ``recipe`` with ``config``; OIALR unless ``config.full_rank``.

    Args:
        recipe: Dataset and network.
        config: The settings.
        comm: Ranks training together, data parallel (default: ``get_comm()``).
        checkpoint: File for checkpoints (rank 0 writes it); ``None`` for none.
        resume: Continue from ``checkpoint`` if it exists.
        force_resume: Resume even if the checkpoint was made with other data.
        progress: Called after every epoch (on every rank).

    Raises:
        UserError: The batch does not divide over the ranks, the data are missing, or the
            checkpoint belongs to other data or another network.
    """
    comm = get_comm() if comm is None else comm
    world = comm.Get_size()
    if config.batch_size % world:
        raise UserError(f"batch_size {config.batch_size} does not divide over {world} ranks")
    split = load_split(recipe.dataset, config)
    if len(split.train) < config.batch_size:
        raise UserError(
            f"batch_size {config.batch_size} exceeds the {len(split.train)} training samples"
        )
    torch.manual_seed(config.seed)
    model = recipe.build(split, config.model)
    dense_parameters = count_parameters(model)[0]
    optimizer = _optimizer(model, config)
    steps_per_epoch = len(split.train) // config.batch_size
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_factor(config, steps_per_epoch * config.epochs)
    )
    loss_fn = nn.CrossEntropyLoss() if split.task == "classify" else nn.MSELoss()
    with torch_distributed(comm) as dist_info:
        oialr = None if config.full_rank else OIALR(model, optimizer, config.schedule)
        if oialr is None and dist_info.group:
            from torch.nn.parallel import DistributedDataParallel

            wrapped: nn.Module = DistributedDataParallel(model)
        else:
            wrapped = model
        history: list[EpochRecord] = []
        start_epoch, seconds, steps = 0, 0.0, 0
        data_id = _fingerprint(recipe, config)
        if resume and checkpoint is not None and checkpoint.exists():
            saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
            check_resume("data", saved["data"], data_id, force=force_resume)
            if saved["recipe"] != recipe.name or saved["full_rank"] != config.full_rank:
                raise UserError(
                    f"{checkpoint} is a {saved['recipe']} run "
                    f"({'full rank' if saved['full_rank'] else 'OIALR'}); start a new folder"
                )
            if oialr is not None:
                oialr.load_state_dict(saved["oialr"])
            try:
                model.load_state_dict(saved["model"])
            except RuntimeError:
                raise UserError(f"{checkpoint} holds a network of another size") from None
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            history = [EpochRecord(**r) for r in saved["history"]]
            start_epoch, seconds, steps = len(history), history[-1].seconds, history[-1].step
        local = config.batch_size // world
        rank = comm.Get_rank()
        for epoch in range(start_epoch, config.epochs):
            losses = []
            began = time.perf_counter()
            for batch in _global_batches(len(split.train), config.batch_size, config.seed, epoch):
                x, y = _batch(split.train, batch[rank * local : (rank + 1) * local])
                call = oialr.model if oialr is not None else wrapped
                loss = loss_fn(call(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                # the gradients' norm is the same on every rank (DDP averaged them), so a
                # diverging run stops on all ranks at the same step, before the weights take it
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), math.inf)
                if not torch.isfinite(norm):
                    raise UserError(
                        f"training diverged at step {steps + 1} (loss {loss.item():.4g}, gradient "
                        f"norm {norm.item():.4g}); lower the learning rate (--lr)"
                    )
                optimizer.step()
                scheduler.step()
                if oialr is not None:
                    oialr.step()
                losses.append(loss.item())
                steps += 1
            seconds += time.perf_counter() - began
            train_loss = comm.allreduce(sum(losses)) / (len(losses) * world)
            validation = _evaluate(model, split.validation, split.task, comm)
            trainable, total = count_parameters(model)
            record = EpochRecord(
                epoch + 1,
                steps,
                train_loss,
                validation,
                trainable,
                total,
                oialr.ranks() if oialr is not None else {},
                seconds,
            )
            history.append(record)
            last = epoch + 1 == config.epochs
            if (
                checkpoint is not None
                and config.checkpoint_every
                and ((epoch + 1) % config.checkpoint_every == 0 or last)
            ):
                if rank == 0:
                    state = {
                        "recipe": recipe.name,
                        "full_rank": config.full_rank,
                        "data": data_id,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "oialr": oialr.state_dict() if oialr is not None else None,
                        "history": [vars(r) for r in history],
                    }
                    with atomic_path(checkpoint) as tmp:
                        torch.save(state, tmp)
                comm.barrier()
            if progress is not None:  # after the checkpoint: an interrupt here loses nothing
                progress(record)
        test = _evaluate(model, split.test, split.task, comm)
    return TrainResult(
        recipe.name,
        config.full_rank,
        "accuracy" if split.task == "classify" else "mse",
        test,
        history,
        dense_parameters,
        seconds / max(1, steps),
        list(oialr.events) if oialr is not None else [],
    )
