"""Training the members (one per MPI rank at a time) and fine-tuning a fused model.

Members differ only in their seed (initialisation and shuffling) and, with ``shards``, in the
part of the training data they see; member i gets ``seed + i`` and is trained on rank
``i % size``, so the ensemble is the same for any number of ranks. Rank 0
gathers the trained weights. Every choice (the best member, the epoch curves) is made on the
validation split; test accuracy is computed once, for the final report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neuron_transplantation.config import FinetuneConfig, TrainConfig
from neuron_transplantation.data import Split
from neuron_transplantation.models import ModelSpec, build_model
from shared_hpc import Comm, Headline, UserError, atomic_path, get_comm

MEMBER_FILE = "members/member-{}.pt"
"""A finished member, saved as soon as it is trained (for resuming)."""

__all__ = [
    "Members",
    "accuracy",
    "finetune",
    "reset_batch_norm",
    "shard",
    "train_epochs",
    "train_members",
]


def accuracy(model: nn.Module, data: TensorDataset) -> float:
    """Share of ``data`` that ``model`` classifies correctly (in eval mode; mode restored)."""
    was_training = model.training
    model.eval()
    x, y = data.tensors
    with torch.no_grad():
        correct = sum(
            int((model(x[i : i + 1024]).argmax(1) == y[i : i + 1024]).sum())
            for i in range(0, len(y), 1024)
        )
    model.train(was_training)
    return correct / len(y)


def reset_batch_norm(model: nn.Module, data: TensorDataset, batch: int = 256) -> bool:
    """Recompute every batch norm's running statistics of ``model`` on ``data``, in place.

    Fusion changes what reaches each batch norm (pruned channels are missing from the sums,
    averaged weights mix members), so the statistics it carries no longer fit; one pass over the
    training data without gradients fixes them (as in REPAIR, Jordan et al. 2022). Only the
    batch norms run in training mode; the statistics are exact averages over ``data``.

    Returns:
        Whether ``model`` has a batch norm.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return False
    was_training = model.training
    model.eval()
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches
        norm.train()
    with torch.no_grad():
        for x, *_ in DataLoader(data, batch_size=batch):
            model(x)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    model.train(was_training)
    return True


def _sum_gradients(model: nn.Module, team: Comm) -> None:
    """Replace every gradient by its sum over the ranks of ``team`` (missing ones count 0)."""
    params = list(model.parameters())
    flat = torch.cat([
        (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params
    ]).double().numpy()  # fmt: skip
    total = np.empty_like(flat)
    team.Allreduce(flat, total)
    offset = 0
    for p in params:
        p.grad = torch.from_numpy(total[offset : offset + p.numel()]).view_as(p).to(p.dtype)
        offset += p.numel()


def train_epochs(
    model: nn.Module,
    split: Split,
    epochs: int,
    lr: float,
    momentum: float,
    batch: int,
    seed: int,
    progress: Callable[[int, float], None] | None = None,
    data: TensorDataset | None = None,
    loss: Callable[..., torch.Tensor] | None = None,
    team: Comm | None = None,
) -> list[float]:
    """Train ``model`` in place with SGD; validation accuracy after each epoch.

    Args:
        data: Training samples ``(x, y, *extra)`` (default: ``split.train``).
        loss: ``loss(output, y, *extra)`` (default: a mean cross-entropy).
        team: Ranks that train this one model together (data parallel): rank j of n computes
            the gradient of samples j, j + n, ... of every batch, and the gradients are summed
            (each weighted by its share of the batch), so every rank takes the step of the
            whole batch. Batch norms see only their rank's samples (no synchronised statistics).

    Returns:
        Validation accuracy before training and after every epoch (``epochs + 1`` values).
    """
    generator = torch.Generator().manual_seed(seed)
    data = split.train if data is None else data
    loader = DataLoader(data, batch_size=batch, shuffle=True, generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    loss_fn = nn.CrossEntropyLoss() if loss is None else loss
    part, parts = (0, 1) if team is None else (team.Get_rank(), team.Get_size())
    curve = [accuracy(model, split.validation)]
    for epoch in range(1, epochs + 1):
        model.train()
        for x, *rest in loader:
            optimizer.zero_grad()
            mine = slice(part, None, parts)
            share = len(x[mine]) / len(x)
            if share:
                (loss_fn(model(x[mine]), *(r[mine] for r in rest)) * share).backward()
            if parts > 1:
                _sum_gradients(model, team)
            optimizer.step()
        curve.append(accuracy(model, split.validation))
        if progress is not None:
            progress(epoch, curve[-1])
    model.eval()
    return curve


@dataclass
class Members:
    """A trained ensemble (complete on rank 0; other ranks hold no models).

    Attributes:
        spec: The members' architecture.
        models: The members in order of their seeds (empty on ranks other than 0).
        seeds: Seed of each member.
        validation: Final validation accuracy of each member.
        ranks: Ranks that trained them.
    """

    spec: ModelSpec
    models: list[nn.Module]
    seeds: list[int]
    validation: list[float]
    ranks: int

    def best(self) -> int:
        """Index of the member with the best validation accuracy."""
        return max(range(len(self.validation)), key=self.validation.__getitem__)

    def metrics(self) -> dict[str, float | int]:
        """The figures a run record keeps."""
        return {
            "members": len(self.seeds),
            "ranks": self.ranks,
            "best_member_validation": self.validation[self.best()],
            "mean_member_validation": sum(self.validation) / len(self.validation),
        }

    def headline(self) -> Headline:
        """The run's one figure: the best member's validation accuracy."""
        return Headline("best member validation accuracy", self.validation[self.best()])


def shard(
    data: TensorDataset, index: int, count: int, seed: int, dirichlet: float = 0.0
) -> TensorDataset:
    """Part ``index`` of ``count`` disjoint parts of ``data``.

    With ``dirichlet`` = 0 the parts are equally large and random (IID). With ``dirichlet`` > 0
    they are skewed by class, as in federated benchmarks (Hsu et al., 2019): for every class a
    share per part is drawn from Dirichlet(``dirichlet``) and the class's samples are cut in
    those proportions; small values give parts that hold a few classes only. Draws in which a
    part gets fewer than 10 samples are repeated (seeded, so every rank cuts the same parts).

    Raises:
        UserError: Not enough samples, or no draw gave every part 10 samples.
    """
    if not 0 <= index < count or count > len(data):
        raise UserError(f"cannot cut {len(data)} samples into {count} shards")
    rng = np.random.default_rng(seed)
    if dirichlet == 0:
        mine = np.array_split(rng.permutation(len(data)), count)[index]
    else:
        labels = data.tensors[1].numpy()
        for _ in range(100):
            parts: list[list[np.ndarray]] = [[] for _ in range(count)]
            for label in np.unique(labels):
                samples = rng.permutation(np.flatnonzero(labels == label))
                cuts = np.cumsum(rng.dirichlet([dirichlet] * count))[:-1] * len(samples)
                for part, piece in zip(parts, np.split(samples, cuts.astype(int)), strict=True):
                    part.append(piece)
            if min(sum(len(p) for p in part) for part in parts) >= 10:
                break
        else:
            raise UserError(
                f"Dirichlet({dirichlet}) shards of {len(data)} samples: no draw gave all "
                f"{count} shards 10 samples; use a larger dirichlet or fewer shards"
            )
        mine = np.concatenate(parts[index])
    mine = torch.as_tensor(np.sort(mine))
    return TensorDataset(*(t[mine] for t in data.tensors))


def spec_for(config: TrainConfig, split: Split) -> ModelSpec:
    """The architecture ``config`` asks for, sized for ``split``."""
    return ModelSpec(config.arch, split.input_shape, split.classes, config.width, config.depth)


def _member_settings(config: TrainConfig, split: Split, index: int) -> dict[str, object]:
    """Everything member ``index``'s weights depend on (the data by digest, not by path)."""
    ignored = ("data", "members", "ranks_per_member")  # ranks change only float rounding
    settings = {k: v for k, v in vars(config).items() if k not in ignored}
    shards = config.members if config.shards else 1
    return {**settings, "shards": shards, "member": index, "data": split.digest}


def _finished(folder: Path, settings: dict[str, object]) -> tuple[dict, float] | None:
    """Member weights and validation accuracy saved by an earlier run with ``settings``.

    Raises:
        UserError: The saved member was trained with other settings.
    """
    path = folder / MEMBER_FILE.format(settings["member"])
    if not path.is_file():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=True)
    stored = saved["settings"]
    changed = sorted(k for k in set(stored) | set(settings) if stored.get(k) != settings.get(k))
    if changed:
        key = changed[0]
        raise UserError(
            f"{path} was trained with {key} = {stored.get(key)!r}, this run has "
            f"{settings.get(key)!r}; rerun with the same settings or use a new --output"
        )
    return saved["state"], saved["validation"]


def train_members(
    config: TrainConfig,
    split: Split,
    comm: Comm | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    folder: Path | None = None,
) -> Members:
    """Train ``config.members`` members, member i on team ``i % teams``; gather them on rank 0.

    A team is ``config.ranks_per_member`` consecutive ranks training one member at a time with
    data parallelism (``train_epochs``'s ``team``); with the default of 1, rank r trains
    members r, r + size, ...

    Args:
        config: The settings.
        split: The data (the same on every rank).
        comm: The ranks that share the work (default: ``get_comm()``).
        progress: Called on the training rank with (member, epoch, validation accuracy).
        folder: Where every finished member is saved at once (``members/member-<i>.pt``);
            members found there from an earlier run with the same settings are not trained
            again, so a crashed or timed-out run resumes member by member.

    Raises:
        UserError: A member in ``folder`` was trained with other settings, or
            ``ranks_per_member`` does not divide the number of ranks.
    """
    comm = get_comm() if comm is None else comm
    rank, size = comm.Get_rank(), comm.Get_size()
    per = config.ranks_per_member
    if size % per:
        raise UserError(f"ranks_per_member ({per}) must divide the number of ranks ({size})")
    team = comm.Split(color=rank // per, key=rank) if per > 1 else None
    leader = rank % per == 0
    spec = spec_for(config, split)
    mine = []
    for i in range(rank // per, config.members, size // per):
        settings = _member_settings(config, split, i)
        done = _finished(folder, settings) if folder is not None else None
        if done is not None:
            mine += [(i, *done)] if leader else []
            continue
        torch.manual_seed(config.seed + i)
        model = build_model(spec)
        report = None if progress is None else (lambda e, a, i=i: progress(i, e, a))
        data = (
            shard(split.train, i, config.members, config.seed, config.dirichlet)
            if config.shards
            else None
        )
        curve = train_epochs(
            model,
            split,
            config.epochs,
            config.lr,
            config.momentum,
            config.batch,
            config.seed + i,
            report,
            data,
            team=team,
        )
        if not leader:
            continue
        if folder is not None:
            payload = {"settings": settings, "state": model.state_dict(), "validation": curve[-1]}
            with atomic_path(folder / MEMBER_FILE.format(i)) as tmp:
                torch.save(payload, tmp)
        mine.append((i, model.state_dict(), curve[-1]))
    gathered = comm.gather(mine, root=0)
    trained = (
        sorted((item for part in gathered for item in part), key=lambda t: t[0])
        if rank == 0
        else []
    )
    models = []
    for _, state, _ in trained:
        model = build_model(spec)
        model.load_state_dict(state)
        models.append(model.eval())
    validation = comm.bcast([acc for _, _, acc in trained], root=0)
    seeds = [config.seed + i for i in range(config.members)]
    return Members(spec, models, seeds, validation, size)


def finetune(
    model: nn.Module,
    split: Split,
    config: FinetuneConfig,
    progress: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Fine-tune ``model`` in place on the training data.

    Returns:
        Validation accuracy right after fusion and after every epoch (``epochs + 1`` values).
    """
    return train_epochs(
        model, split, config.epochs, config.lr, config.momentum, config.batch, config.seed, progress
    )
