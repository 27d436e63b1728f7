"""Members trained on disjoint shards of the data, and FedAvg on the same shards as a baseline.

Beyond the paper: when every rank holds its own part of the data (federated learning, or data
parallelism without synchronisation), each member sees one shard only, and fusing them is the
only way to one model that learned from all of it. The established baseline there is FedAvg
(McMahan et al., 2017): one shared initialisation, a few local epochs on every shard, the
weights averaged (each shard weighted by its size), repeated for several rounds. Both use the
same shards and the same number of local epochs per shard, so they cost the same computation;
FedAvg communicates once per round, NT once at the end.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from neuron_transplantation.config import TrainConfig
from neuron_transplantation.data import Split
from neuron_transplantation.models import build_model
from neuron_transplantation.train import accuracy, shard, spec_for, train_epochs
from shared_hpc import Comm, UserError, get_comm

__all__ = ["fedavg"]


def _mean(tensors: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """The weighted mean of floating-point tensors; other tensors (step counts) from the first."""
    if not tensors[0].is_floating_point():
        return tensors[0]
    return sum(w * t.double() for w, t in zip(weights, tensors, strict=True)).to(tensors[0].dtype)


def fedavg(
    config: TrainConfig,
    split: Split,
    rounds: int,
    comm: Comm | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[nn.Module, list[float]]:
    """FedAvg over ``config.members`` shards, shard i trained on rank ``i % size``.

    Every round trains a copy of the global model ``config.epochs // rounds`` epochs on every
    shard and averages the copies' weights (floating-point tensors; batch-norm step counts are
    taken from shard 0).

    Returns:
        The global model (on every rank) and its validation accuracy after every round.

    Raises:
        UserError: ``rounds`` does not divide ``config.epochs``.
    """
    if rounds < 1 or config.epochs % rounds:
        raise UserError(f"rounds ({rounds}) must divide the epochs ({config.epochs})")
    comm = get_comm() if comm is None else comm
    rank, size = comm.Get_rank(), comm.Get_size()
    torch.manual_seed(config.seed)
    model = build_model(spec_for(config, split)).eval()
    shards = {
        i: shard(split.train, i, config.members, config.seed, config.dirichlet)
        for i in range(config.members)
    }
    weights = torch.tensor([len(shards[i]) for i in sorted(shards)], dtype=torch.float64)
    weights /= weights.sum()
    curve = []
    for round_ in range(rounds):
        local = []
        for i in range(rank, config.members, size):
            trained = copy.deepcopy(model)
            seed = config.seed + 1000 * round_ + i
            train_epochs(
                trained, split, config.epochs // rounds, config.lr, config.momentum, config.batch,
                seed, data=shards[i],
            )  # fmt: skip
            local.append((i, trained.state_dict()))
        gathered = sorted(
            (item for part in comm.allgather(local) for item in part), key=lambda t: t[0]
        )
        states = [state for _, state in gathered]
        average = {key: _mean([s[key] for s in states], weights) for key in states[0]}
        model.load_state_dict(average)
        curve.append(accuracy(model, split.validation))
        if progress is not None:
            progress(round_ + 1, curve[-1])
    return model, curve
