"""Neuron Transplantation: concatenate the members into one wide model, prune it back to size.

The wide model stacks the members' first layers, puts every middle layer block-diagonally (member
k's channels only see member k's channels) and concatenates the last layer along its inputs with
member k's block scaled by its weight (1/K for an ensemble of K), its bias the weighted mean.
Batch norms are concatenated with their statistics. So before pruning, the wide model computes
exactly the weighted average of the members' outputs: the ensemble.

Pruning then keeps, in every hidden layer, the original number of channels with the largest
group L2 magnitude (what the authors used through Torch-Pruning's ``MagnitudeImportance(p=2)``:
the mean, over the layers a channel touches, of the squared norms of its weights — its outgoing
row, its batch-norm scale, its incoming column in the next layer). The pruned model has exactly
the members' shapes and is a copy of member 0's class, so it loads into that class.

Weights let fusion proceed pairwise with every member counting equally: fusing a model that
already holds n members with one more takes weights n/(n+1) and 1/(n+1). (The authors' iterative
fusion averaged each pair 1/2-1/2, so the first member ended with weight 1/2^(K-1).)
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import fx, nn

from neuron_transplantation.config import VARIANTS
from neuron_transplantation.graph import Chain, same_architecture, trace_chain
from shared_hpc import UserError

__all__ = [
    "Transplant",
    "concatenate",
    "fuse_transplant",
    "group_importance",
    "prune",
    "transplant",
]


@dataclass
class Transplant:
    """One fusion step.

    Attributes:
        wide: The concatenated model (as wide as all members together), equal to the weighted
            ensemble average; a ``torch.fx.GraphModule`` running the members' forward pass.
        model: The wide model pruned back to the members' shapes, of member 0's class.
        kept: Per hidden layer, the wide channels that survived pruning.
    """

    wide: fx.GraphModule
    model: nn.Module
    kept: list[torch.Tensor]


def _set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, module)


def _resize(module: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Module:
    """A copy of a Linear or Conv2d ``module`` holding ``weight`` and ``bias``."""
    new = copy.deepcopy(module)
    new.weight = nn.Parameter(weight)
    if bias is not None:
        new.bias = nn.Parameter(bias)
    if isinstance(new, nn.Linear):
        new.out_features, new.in_features = weight.shape[:2]
    else:
        new.out_channels, new.in_channels = weight.shape[:2]
    return new


def _resize_norm(module: nn.Module, tensors: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of a batch norm ``module`` with its per-channel tensors replaced."""
    new = copy.deepcopy(module)
    for key, value in tensors.items():
        if key in ("weight", "bias"):
            setattr(new, key, nn.Parameter(value))
        else:
            setattr(new, key, value)
    new.num_features = len(next(iter(tensors.values())))
    return new


def _norm_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """The per-channel tensors of a batch norm (affine parameters and running statistics)."""
    keys = ("weight", "bias", "running_mean", "running_var")
    return {k: getattr(module, k).detach() for k in keys if getattr(module, k, None) is not None}


def _block_diagonal(blocks: Sequence[torch.Tensor]) -> torch.Tensor:
    """Weights (out, in, ...) placed on the diagonal of one (Σ out, Σ in, ...) tensor."""
    out = sum(b.shape[0] for b in blocks)
    width = sum(b.shape[1] for b in blocks)
    result = blocks[0].new_zeros((out, width, *blocks[0].shape[2:]))
    row = col = 0
    for block in blocks:
        result[row : row + block.shape[0], col : col + block.shape[1]] = block
        row, col = row + block.shape[0], col + block.shape[1]
    return result


def _check_weights(weights: Sequence[float], members: int) -> torch.Tensor:
    w = torch.tensor(list(weights), dtype=torch.float64)
    if len(w) != members or bool((w <= 0).any()) or abs(float(w.sum()) - 1.0) > 1e-9:
        raise UserError(f"fusion weights must be {members} positive numbers summing to 1")
    return w


def concatenate(
    members: Sequence[nn.Module], chain: Chain, weights: Sequence[float] | None = None
) -> fx.GraphModule:
    """The wide model that computes the ``weights``-average of the members' outputs.

    Args:
        members: Models of one architecture whose layer order is ``chain``.
        chain: The traced layer order (``trace_chain`` of any member).
        weights: One positive weight per member summing to 1 (default: equal).

    Returns:
        A ``GraphModule`` with member 0's forward pass and every layer widened.
    """
    k = len(members)
    w = _check_weights(weights if weights is not None else [1.0 / k] * k, k)
    last = len(chain.layers) - 1
    root = copy.deepcopy(members[0])
    for i, layer in enumerate(chain.layers):
        modules = [m.get_submodule(layer.name) for m in members]
        weight = [m.weight.detach() for m in modules]
        bias = [m.bias.detach() for m in modules] if modules[0].bias is not None else None
        if i == 0 and i == last:  # one layer only: its average is exact
            new_w = sum(wk.to(x.dtype) * x for wk, x in zip(w, weight, strict=True))
            new_b = sum(wk.to(x.dtype) * x for wk, x in zip(w, bias, strict=True)) if bias else None
        elif i == 0:
            new_w = torch.cat(weight, 0)
            new_b = torch.cat(bias, 0) if bias else None
        elif i == last:
            new_w = torch.cat([wk.to(x.dtype) * x for wk, x in zip(w, weight, strict=True)], 1)
            new_b = sum(wk.to(x.dtype) * x for wk, x in zip(w, bias, strict=True)) if bias else None
        else:
            new_w = _block_diagonal(weight)
            new_b = torch.cat(bias, 0) if bias else None
        _set_module(root, layer.name, _resize(modules[0], new_w, new_b))
        if layer.norm:
            norms = [_norm_tensors(m.get_submodule(layer.norm)) for m in members]
            stacked = {key: torch.cat([n[key] for n in norms]) for key in norms[0]}
            _set_module(
                root, layer.norm, _resize_norm(members[0].get_submodule(layer.norm), stacked)
            )
    wide = fx.GraphModule(root, copy.deepcopy(chain.graph))
    wide.train(members[0].training)
    return wide


def _columns(weight: torch.Tensor, spread: int) -> torch.Tensor:
    """Squared norm of each input channel's weights (``spread`` inputs per channel)."""
    per_input = weight.detach().pow(2).transpose(0, 1).reshape(weight.shape[1], -1).sum(1)
    return per_input.reshape(-1, spread).sum(1)


def group_importance(model: nn.Module, chain: Chain, i: int) -> torch.Tensor:
    """Group L2 magnitude of every output channel of hidden layer ``i`` of ``model``.

    The mean over the channel's group of squared L2 norms: its row in layer ``i``, its
    batch-norm scale (if affine), its input columns in layer ``i + 1``.
    """
    layer, following = chain.layers[i], chain.layers[i + 1]
    weight = model.get_submodule(layer.name).weight.detach()
    parts = [weight.pow(2).reshape(weight.shape[0], -1).sum(1)]
    if layer.norm:
        norm = model.get_submodule(layer.norm)
        if norm.weight is not None:
            parts.append(norm.weight.detach().pow(2))
    parts.append(_columns(model.get_submodule(following.name).weight, following.spread))
    return torch.stack(parts).mean(0)


def _input_index(kept: torch.Tensor, spread: int) -> torch.Tensor:
    """Input features that belong to the channels ``kept`` (``spread`` per channel)."""
    return (kept[:, None] * spread + torch.arange(spread)[None, :]).reshape(-1)


def prune(
    wide: nn.Module, chain: Chain, template: nn.Module
) -> tuple[nn.Module, list[torch.Tensor]]:
    """Prune ``wide`` to the widths of ``template`` by group L2 magnitude, layer by layer.

    Returns:
        A copy of ``template`` holding the kept weights, and the kept channels per hidden layer.
    """
    widths = chain.widths(template)
    kept: list[torch.Tensor] = []
    for i in range(len(chain.layers) - 1):
        importance = group_importance(wide, chain, i)
        order = torch.sort(importance, descending=True, stable=True).indices
        kept.append(torch.sort(order[: widths[i]]).values)
    state: dict[str, torch.Tensor] = {}
    for i, layer in enumerate(chain.layers):
        module = wide.get_submodule(layer.name)
        rows = kept[i] if i < len(kept) else torch.arange(module.weight.shape[0])
        weight = module.weight.detach()[rows]
        if i > 0:
            weight = weight[:, _input_index(kept[i - 1], layer.spread)]
        state[f"{layer.name}.weight"] = weight
        if module.bias is not None:
            state[f"{layer.name}.bias"] = module.bias.detach()[rows]
        if layer.norm:
            for key, value in _norm_tensors(wide.get_submodule(layer.norm)).items():
                state[f"{layer.norm}.{key}"] = value[rows]
    model = copy.deepcopy(template)
    missing = set(model.state_dict()) - set(state)
    state.update({key: model.state_dict()[key] for key in missing})  # num_batches_tracked
    model.load_state_dict(state)
    return model, kept


def transplant(
    members: Sequence[nn.Module], chain: Chain, weights: Sequence[float] | None = None
) -> Transplant:
    """Concatenate ``members`` (weighted) and prune the result back to their size."""
    wide = concatenate(members, chain, weights)
    model, kept = prune(wide, chain, members[0])
    return Transplant(wide, model, kept)


def fuse_transplant(
    members: Sequence[nn.Module], example: torch.Tensor, variant: str = "one-shot"
) -> nn.Module:
    """Fuse ``members`` into one model of their size by Neuron Transplantation.

    Args:
        members: Two or more trained models of one architecture.
        example: An input batch (its first sample is used to trace shapes).
        variant: ``one-shot`` (all at once), ``iterative`` (one member after the other) or
            ``hierarchical`` (pairs, then pairs of pairs); every member weighs 1/K in all three.

    Raises:
        UserError: Members of different architectures, an unsupported layer, unknown variant.
    """
    if variant not in VARIANTS:
        raise UserError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    same_architecture(list(members))
    chain = trace_chain(members[0], example)
    if variant == "one-shot":
        return transplant(members, chain).model
    if variant == "iterative":
        fused, count = members[0], 1
        for member in members[1:]:
            fused = transplant([fused, member], chain, [count / (count + 1), 1 / (count + 1)]).model
            count += 1
        return fused
    level = [(m, 1) for m in members]
    while len(level) > 1:
        paired = []
        for (a, na), (b, nb) in zip(level[::2], level[1::2], strict=False):
            paired.append(
                (transplant([a, b], chain, [na / (na + nb), nb / (na + nb)]).model, na + nb)
            )
        level = paired + (level[-1:] if len(level) % 2 else [])
    return level[0][0]
