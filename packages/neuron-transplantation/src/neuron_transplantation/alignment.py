"""The baselines that fuse by averaging weights: plain, after weight matching, after OT.

Hidden channels of two independently trained networks are in arbitrary order, so plain weight
averaging mixes unrelated neurons. Both alignment methods reorder every member's hidden channels
towards an anchor member (member 0) before averaging:

- Weight matching (Ainsworth et al., "Git Re-Basin", 2022, its Algorithm 1): one permutation per
  hidden layer maximising the summed inner products of the anchor's and the member's weights,
  found by coordinate descent over the layers with SciPy's linear assignment.
- Optimal-transport fusion (Singh & Jaggi, "Model Fusion via Optimal Transport", 2020, the
  weight-based variant): layer by layer from the input, the member's incoming weights (with its
  inputs already aligned) are transported onto the anchor's with exact OT (POT's ``ot.emd``,
  uniform marginals, Euclidean ground cost); the transport map then aligns the next layer's
  inputs. With equal widths the exact transport is a permutation.

Both permute whole channel groups (``graph.Network``): the rows and biases of every layer writing
a group, its norms (parameters and statistics), its entries in parameters outside the layers
(class token, position embedding) and the columns of every layer reading it, so channels joined
by a residual addition move together. Groups split into attention heads are permuted in whole
heads (a head's channels keep their order; permuting within heads is not searched). In a
residual network OT aligns the groups in the order of their first layer with the weights as
they are at that moment; a group joined by additions also holds rows of later layers whose
inputs are not aligned yet (Singh & Jaggi's OT fusion is defined for chains; this is an
approximation there).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from neuron_transplantation.graph import Network

__all__ = ["average_weights", "ot_fuse", "weight_matching_fuse"]

NORM_KEYS = ("weight", "bias", "running_mean", "running_var")


def average_weights(members: Sequence[nn.Module]) -> nn.Module:
    """A copy of member 0 holding the mean of every floating-point tensor of the members."""
    states = [m.state_dict() for m in members]
    mean = {
        key: torch.stack([s[key] for s in states]).mean(0) if value.is_floating_point() else value
        for key, value in states[0].items()
    }
    model = copy.deepcopy(members[0])
    model.load_state_dict(mean)
    return model


def _tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _apply(
    state: dict[str, torch.Tensor], network: Network, group: int, mapping: torch.Tensor
) -> None:
    """Map hidden ``group``'s channels by ``mapping`` (new × old) in ``state``, in place."""
    for layer in network.writers(group):
        weight = state[f"{layer.name}.weight"]
        mapping = mapping.to(weight.dtype)
        state[f"{layer.name}.weight"] = torch.einsum("ba,a...->b...", mapping, weight)
        if f"{layer.name}.bias" in state:
            state[f"{layer.name}.bias"] = mapping @ state[f"{layer.name}.bias"]
    for norm in network.norms_of(group):
        for key in NORM_KEYS:
            if f"{norm.name}.{key}" in state:
                state[f"{norm.name}.{key}"] = mapping @ state[f"{norm.name}.{key}"]
    for extra in network.extras_of(group):
        tensor = state[extra.name].movedim(extra.axis, 0)
        moved = (mapping.to(tensor.dtype) @ tensor.reshape(len(mapping), -1)).reshape(tensor.shape)
        state[extra.name] = moved.movedim(0, extra.axis)
    for layer in network.readers(group):
        whole = state[f"{layer.name}.weight"]
        start, stop = layer.columns or (0, whole.shape[1])
        nxt = whole[:, start:stop]
        grouped = nxt.reshape(nxt.shape[0], len(mapping), layer.spread, -1)
        mapped = torch.einsum("oasr,ba->obsr", grouped, mapping.to(nxt.dtype))
        mapped = mapped.reshape(nxt.shape)
        state[f"{layer.name}.weight"] = torch.cat([whole[:, :start], mapped, whole[:, stop:]], 1)


def _rows(state: dict[str, torch.Tensor], network: Network, group: int) -> torch.Tensor:
    """Each channel of ``group`` as one vector: weights and biases of the layers writing it,
    norms' affine parameters, its entries in parameters outside the layers."""
    parts = []
    for layer in network.writers(group):
        weight = state[f"{layer.name}.weight"]
        parts.append(weight.reshape(weight.shape[0], -1))
        if f"{layer.name}.bias" in state:
            parts.append(state[f"{layer.name}.bias"][:, None])
    for norm in network.norms_of(group):
        parts += [state[f"{norm.name}.{k}"][:, None] for k in ("weight", "bias")
                  if f"{norm.name}.{k}" in state]  # fmt: skip
    for extra in network.extras_of(group):
        tensor = state[extra.name].movedim(extra.axis, 0)
        parts.append(tensor.reshape(tensor.shape[0], -1))
    return torch.cat(parts, 1).double()


def _units(vectors: torch.Tensor, network: Network, group: int) -> torch.Tensor:
    """Channel vectors joined into one vector per unit (attention head) of ``group``."""
    return vectors.reshape(len(vectors) // network.unit(group), -1)


def _per_channel(mapping: torch.Tensor, network: Network, group: int) -> torch.Tensor:
    """A (new × old) map of units as the map of their channels."""
    return torch.kron(mapping.contiguous(), torch.eye(network.unit(group), dtype=mapping.dtype))


def _columns(state: dict[str, torch.Tensor], network: Network, group: int) -> torch.Tensor:
    """Each channel of ``group`` as the vector of its weights in the layers reading it."""
    channels = len(_rows(state, network, group))
    parts = []
    for layer in network.readers(group):
        nxt = state[f"{layer.name}.weight"]
        if layer.columns is not None:
            nxt = nxt[:, layer.columns[0] : layer.columns[1]]
        grouped = nxt.reshape(nxt.shape[0], channels, layer.spread, -1)
        parts.append(grouped.transpose(0, 1).reshape(channels, -1))
    return torch.cat(parts, 1).double()


def _permutation(order: np.ndarray) -> torch.Tensor:
    """The matrix that puts old channel ``order[b]`` at new position ``b``."""
    mapping = torch.zeros(len(order), len(order))
    mapping[torch.arange(len(order)), torch.as_tensor(order)] = 1.0
    return mapping


def _load(template: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    model = copy.deepcopy(template)
    model.load_state_dict(state)
    return model


def _match(
    anchor: dict[str, torch.Tensor],
    member: dict[str, torch.Tensor],
    network: Network,
    rng: np.random.Generator,
    max_sweeps: int,
) -> dict[str, torch.Tensor]:
    """``member`` permuted to match ``anchor`` by coordinate descent over the hidden groups."""
    from scipy.optimize import linear_sum_assignment

    hidden = network.hidden
    orders = {g: np.arange(len(_rows(anchor, network, g)) // network.unit(g)) for g in hidden}

    def permuted(skip: int | None) -> dict[str, torch.Tensor]:
        state = dict(member)
        for g in hidden:
            if g != skip:
                _apply(state, network, g, _per_channel(_permutation(orders[g]), network, g))
        return state

    for _ in range(max_sweeps):
        changed = False
        for g in rng.permutation(hidden):
            state = permuted(skip=int(g))
            mine = torch.cat([_rows(anchor, network, g), _columns(anchor, network, g)], 1)
            theirs = torch.cat([_rows(state, network, g), _columns(state, network, g)], 1)
            similarity = _units(mine, network, g) @ _units(theirs, network, g).T
            _, order = linear_sum_assignment(similarity.numpy(), maximize=True)
            changed |= not np.array_equal(order, orders[g])
            orders[g] = order
        if not changed:
            break
    return permuted(skip=None)


def weight_matching_fuse(
    members: Sequence[nn.Module], network: Network, seed: int = 0, max_sweeps: int = 100
) -> nn.Module:
    """Permute every member onto member 0 by weight matching, then average the weights.

    Args:
        members: Models of one architecture whose channel groups are ``network``.
        network: The traced channel groups.
        seed: Seed of the order in which layers are visited.
        max_sweeps: Upper bound on passes over all layers (it stops once none changes).
    """
    rng = np.random.default_rng(seed)
    anchor = _tensors(members[0])
    aligned = [members[0]] + [
        _load(members[0], _match(anchor, _tensors(m), network, rng, max_sweeps))
        for m in members[1:]
    ]
    return average_weights(aligned)


def _transport(
    anchor: dict[str, torch.Tensor], member: dict[str, torch.Tensor], network: Network
) -> dict[str, torch.Tensor]:
    """``member`` aligned onto ``anchor`` by exact optimal transport, group by group."""
    import ot

    state = dict(member)
    for g in network.hidden:
        theirs = _units(_rows(state, network, g), network, g).numpy()
        ours = _units(_rows(anchor, network, g), network, g).numpy()
        n_a, n_b = len(theirs), len(ours)
        cost = ot.dist(theirs, ours, metric="euclidean")
        plan = ot.emd(np.full(n_a, 1.0 / n_a), np.full(n_b, 1.0 / n_b), cost)
        mapping = torch.from_numpy(plan.T * n_b).float()
        _apply(state, network, g, _per_channel(mapping, network, g))
    return state


def ot_fuse(members: Sequence[nn.Module], network: Network) -> nn.Module:
    """Align every member onto member 0 by optimal transport, then average the weights."""
    anchor = _tensors(members[0])
    aligned = [members[0]] + [
        _load(members[0], _transport(anchor, _tensors(m), network)) for m in members[1:]
    ]
    return average_weights(aligned)
