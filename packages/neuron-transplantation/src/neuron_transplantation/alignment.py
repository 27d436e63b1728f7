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

Both act on the per-channel tensors the traced ``Chain`` names: a layer's rows, its bias, its
batch norm (parameters and statistics) and the next layer's input columns.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from neuron_transplantation.graph import Chain

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


def _apply(state: dict[str, torch.Tensor], chain: Chain, i: int, mapping: torch.Tensor) -> None:
    """Map hidden layer ``i``'s channels by ``mapping`` (new × old) in ``state``, in place."""
    layer, following = chain.layers[i], chain.layers[i + 1]
    mapping = mapping.to(state[f"{layer.name}.weight"].dtype)
    weight = state[f"{layer.name}.weight"]
    state[f"{layer.name}.weight"] = torch.einsum("ba,a...->b...", mapping, weight)
    keys = [f"{layer.name}.bias"] + [f"{layer.norm}.{k}" for k in NORM_KEYS if layer.norm]
    for key in keys:
        if key in state:
            state[key] = mapping @ state[key]
    nxt = state[f"{following.name}.weight"]
    grouped = nxt.reshape(nxt.shape[0], weight.shape[0], following.spread, -1)
    mapped = torch.einsum("oasr,ba->obsr", grouped, mapping)
    state[f"{following.name}.weight"] = mapped.reshape(nxt.shape)


def _rows(state: dict[str, torch.Tensor], chain: Chain, i: int) -> torch.Tensor:
    """Each output channel of layer ``i`` as one vector: weights, bias, batch-norm affine."""
    layer = chain.layers[i]
    weight = state[f"{layer.name}.weight"]
    parts = [weight.reshape(weight.shape[0], -1)]
    keys = [f"{layer.name}.bias"] + [f"{layer.norm}.{k}" for k in ("weight", "bias") if layer.norm]
    parts += [state[k][:, None] for k in keys if k in state]
    return torch.cat(parts, 1).double()


def _columns(state: dict[str, torch.Tensor], chain: Chain, i: int) -> torch.Tensor:
    """Each output channel of layer ``i`` as the vector of its weights in layer ``i + 1``."""
    following = chain.layers[i + 1]
    nxt = state[f"{following.name}.weight"]
    channels = state[f"{chain.layers[i].name}.weight"].shape[0]
    grouped = nxt.reshape(nxt.shape[0], channels, following.spread, -1)
    return grouped.transpose(0, 1).reshape(channels, -1).double()


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
    chain: Chain,
    rng: np.random.Generator,
    max_sweeps: int,
) -> dict[str, torch.Tensor]:
    """``member`` permuted to match ``anchor`` by coordinate descent over the hidden layers."""
    from scipy.optimize import linear_sum_assignment

    hidden = len(chain.layers) - 1
    orders = [np.arange(anchor[f"{chain.layers[i].name}.weight"].shape[0]) for i in range(hidden)]

    def permuted(skip: int | None) -> dict[str, torch.Tensor]:
        state = dict(member)
        for i in range(hidden):
            if i != skip:
                _apply(state, chain, i, _permutation(orders[i]))
        return state

    for _ in range(max_sweeps):
        changed = False
        for i in rng.permutation(hidden):
            state = permuted(skip=int(i))
            similarity = _rows(anchor, chain, i) @ _rows(state, chain, i).T
            similarity += _columns(anchor, chain, i) @ _columns(state, chain, i).T
            _, order = linear_sum_assignment(similarity.numpy(), maximize=True)
            changed |= not np.array_equal(order, orders[i])
            orders[i] = order
        if not changed:
            break
    return permuted(skip=None)


def weight_matching_fuse(
    members: Sequence[nn.Module], chain: Chain, seed: int = 0, max_sweeps: int = 100
) -> nn.Module:
    """Permute every member onto member 0 by weight matching, then average the weights.

    Args:
        members: Models of one architecture whose layer order is ``chain``.
        chain: The traced layer order.
        seed: Seed of the order in which layers are visited.
        max_sweeps: Upper bound on passes over all layers (it stops once none changes).
    """
    rng = np.random.default_rng(seed)
    anchor = _tensors(members[0])
    aligned = [members[0]] + [
        _load(members[0], _match(anchor, _tensors(m), chain, rng, max_sweeps)) for m in members[1:]
    ]
    return average_weights(aligned)


def _transport(anchor: dict[str, torch.Tensor], member: dict[str, torch.Tensor], chain: Chain):
    """``member`` aligned onto ``anchor`` by exact optimal transport, layer by layer."""
    import ot

    state = dict(member)
    for i in range(len(chain.layers) - 1):
        theirs, ours = _rows(state, chain, i).numpy(), _rows(anchor, chain, i).numpy()
        n_a, n_b = len(theirs), len(ours)
        cost = ot.dist(theirs, ours, metric="euclidean")
        plan = ot.emd(np.full(n_a, 1.0 / n_a), np.full(n_b, 1.0 / n_b), cost)
        _apply(state, chain, i, torch.from_numpy(plan.T * n_b).float())
    return state


def ot_fuse(members: Sequence[nn.Module], chain: Chain) -> nn.Module:
    """Align every member onto member 0 by optimal transport, then average the weights."""
    anchor = _tensors(members[0])
    aligned = [members[0]] + [
        _load(members[0], _transport(anchor, _tensors(m), chain)) for m in members[1:]
    ]
    return average_weights(aligned)
