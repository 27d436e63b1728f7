"""Training the members (one per MPI rank at a time) and fine-tuning a fused model.

Members differ only in their seed (initialisation and shuffling); member i gets ``seed + i`` and
is trained on rank ``i % size``, so the ensemble is the same for any number of ranks. Rank 0
gathers the trained weights. Every choice (the best member, the epoch curves) is made on the
validation split; test accuracy is computed once, for the final report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neuron_transplantation.config import FinetuneConfig, TrainConfig
from neuron_transplantation.data import Split
from neuron_transplantation.models import ModelSpec, build_model
from shared_hpc import Comm, Headline, get_comm

__all__ = ["Members", "accuracy", "finetune", "train_epochs", "train_members"]


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


def train_epochs(
    model: nn.Module,
    split: Split,
    epochs: int,
    lr: float,
    momentum: float,
    batch: int,
    seed: int,
    progress: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``model`` in place with SGD and cross-entropy; validation accuracy after each epoch.

    Returns:
        Validation accuracy before training and after every epoch (``epochs + 1`` values).
    """
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(split.train, batch_size=batch, shuffle=True, generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    loss_fn = nn.CrossEntropyLoss()
    curve = [accuracy(model, split.validation)]
    for epoch in range(1, epochs + 1):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
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


def spec_for(config: TrainConfig, split: Split) -> ModelSpec:
    """The architecture ``config`` asks for, sized for ``split``."""
    return ModelSpec(config.arch, split.input_shape, split.classes, config.width, config.depth)


def train_members(
    config: TrainConfig,
    split: Split,
    comm: Comm | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> Members:
    """Train ``config.members`` members, member i on rank ``i % size``; gather them on rank 0.

    Args:
        config: The settings.
        split: The data (the same on every rank).
        comm: The ranks that share the work (default: ``get_comm()``).
        progress: Called on the training rank with (member, epoch, validation accuracy).
    """
    comm = get_comm() if comm is None else comm
    rank, size = comm.Get_rank(), comm.Get_size()
    spec = spec_for(config, split)
    mine = []
    for i in range(rank, config.members, size):
        torch.manual_seed(config.seed + i)
        model = build_model(spec)
        report = None if progress is None else (lambda e, a, i=i: progress(i, e, a))
        curve = train_epochs(
            model,
            split,
            config.epochs,
            config.lr,
            config.momentum,
            config.batch,
            config.seed + i,
            report,
        )
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
