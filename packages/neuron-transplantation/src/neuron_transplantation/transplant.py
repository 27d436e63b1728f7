"""Neuron Transplantation: concatenate the members into one wide model, prune it back to size.

The wide model stacks the members' first layers, puts every layer between hidden channels
block-diagonally (member k's channels only see member k's channels; a grouped or depthwise
convolution gets the members' filters one after another, in K times the groups; a layer reading
channels
concatenated from several groups is built part by part) and concatenates the last
layer along its inputs with member k's block scaled by its weight (1/K for an ensemble of K), its
bias the weighted mean. Batch norms are concatenated with their statistics; a layer norm becomes a
``BlockLayerNorm`` that normalises each member's block of channels on its own (one layer norm over
all members' channels would mix them). Parameters outside the layers (class token, position
embedding) are concatenated along their channel axis. Attention heads need nothing of their own:
member k's query, key and value rows are heads k·H to k·H + H - 1 of the wide attention, which
only ever meet each other. Channels joined by a residual addition form one group
(``graph.py``), widened and pruned as one. So before pruning, the wide model computes exactly
the weighted average of the members' outputs: the ensemble.

Pruning then keeps, in every hidden group, the original number of channels with the largest
group L2 magnitude (what the authors used through Torch-Pruning's ``MagnitudeImportance(p=2)``:
the mean, over the layers a channel touches, of the squared norms of its weights — its rows in
the layers writing it, its batch-norm scales, its columns in the layers reading it). The pruned
model has exactly the members' shapes and is a copy of member 0's class, so it loads into it.
Groups split into attention heads are pruned in whole heads (the summed importance of their
channels), so the pruned model has the members' number of heads. A pruned layer norm is one
``LayerNorm`` again, normalising over kept channels that may come from different members: that
step is an approximation (BENCHMARKS.md measures it), unlike the concatenation.

Weights let fusion proceed pairwise with every member counting equally: fusing a model that
already holds n members with one more takes weights n/(n+1) and 1/(n+1). (The authors' iterative
fusion averaged each pair 1/2-1/2, so the first member ended with weight 1/2^(K-1).)
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn

from neuron_transplantation.config import VARIANTS
from neuron_transplantation.graph import (
    INPUT,
    Extra,
    Layer,
    Network,
    same_architecture,
    trace_network,
)
from shared_hpc import UserError

__all__ = [
    "BlockLayerNorm",
    "Transplant",
    "concatenate",
    "fuse_transplant",
    "group_importance",
    "prune",
    "prune_members",
    "transplant",
]


@dataclass
class Transplant:
    """One fusion step.

    Attributes:
        model: The wide model pruned back to the members' shapes, of member 0's class.
        kept: Per hidden group, the wide channels (member k's channel c is k × width + c)
            that survived pruning.
    """

    model: nn.Module
    kept: dict[int, torch.Tensor]


class BlockLayerNorm(nn.Module):
    """A layer norm over each of ``blocks`` equal blocks of the last axis on its own: the wide
    model's stand-in for the members' layer norms.

    Args:
        norm: One member's layer norm (its ``eps``; which affine parameters it has).
        weight: The members' scales side by side (``None`` without them).
        bias: The members' shifts side by side (``None`` without them).
        blocks: Members.
    """

    def __init__(
        self,
        norm: nn.LayerNorm,
        weight: torch.Tensor | None,
        bias: torch.Tensor | None,
        blocks: int,
    ) -> None:
        super().__init__()
        self.blocks, self.eps = blocks, norm.eps
        self.size = norm.normalized_shape[0]
        self.weight = None if weight is None else nn.Parameter(weight)
        self.bias = None if bias is None else nn.Parameter(bias)

    def forward(self, x):
        y = F.layer_norm(x.unflatten(-1, (self.blocks, self.size)), (self.size,), eps=self.eps)
        y = y.flatten(-2)
        if self.weight is not None:
            y = y * self.weight
        return y + self.bias if self.bias is not None else y


def _set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, module)


def _resize(
    module: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None, groups: int = 1
) -> nn.Module:
    """A copy of a Linear or Conv ``module`` holding ``weight`` and ``bias`` (a convolution in
    ``groups`` groups)."""
    new = copy.deepcopy(module)
    new.weight = nn.Parameter(weight)
    if bias is not None:
        new.bias = nn.Parameter(bias)
    if isinstance(new, nn.Linear):
        new.out_features, new.in_features = weight.shape[:2]
    else:
        new.out_channels, new.in_channels, new.groups = (
            weight.shape[0],
            weight.shape[1] * groups,
            groups,
        )
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


def _extra(model: nn.Module, extra: Extra) -> torch.Tensor:
    return model.state_dict(keep_vars=True)[extra.name].detach()


def _set_extra(root: nn.Module, extra: Extra, value: torch.Tensor) -> None:
    """Replace the parameter (or buffer) ``extra`` of ``root`` by ``value``."""
    parent, _, leaf = extra.name.rpartition(".")
    owner = root.get_submodule(parent) if parent else root
    if leaf in owner._parameters:
        setattr(owner, leaf, nn.Parameter(value))
    else:
        owner.register_buffer(leaf, value)


def _extra_norms(tensor: torch.Tensor, axis: int) -> torch.Tensor:
    """Squared norm of each channel's entries of a parameter whose channels lie along ``axis``."""
    return tensor.detach().pow(2).movedim(axis, 0).reshape(tensor.shape[axis], -1).sum(1)


def _by_name(layers: Sequence[Layer]) -> dict[str, list[Layer]]:
    """Layers by module name: a layer reading concatenated channels has one entry per part."""
    parts: dict[str, list[Layer]] = {}
    for layer in layers:
        parts.setdefault(layer.name, []).append(layer)
    return parts


def _part(weight: torch.Tensor, layer: Layer, members: int = 1) -> torch.Tensor:
    """The input columns of ``weight`` that read ``layer.source`` (all of them unless the layer
    reads concatenated channels); ``members``: the weight is a wide model's, K times wider."""
    if layer.columns is None:
        return weight
    start, stop = layer.columns
    return weight[:, members * start : members * stop]


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


def _combine(
    weights: list[torch.Tensor], w: torch.Tensor, reads_hidden: bool, writes_hidden: bool
) -> torch.Tensor:
    """One layer of the wide model from the members' (out, in, ...) ``weights``."""
    scaled = [wk.to(x.dtype) * x for wk, x in zip(w, weights, strict=True)]
    if reads_hidden and writes_hidden:
        return _block_diagonal(weights)
    if reads_hidden:  # into the output: member k's inputs, scaled by its weight
        return torch.cat(scaled, 1)
    if writes_hidden:  # from the input: every member's channels stacked
        return torch.cat(weights, 0)
    return sum(scaled)  # input straight to output: the average is exact


def concatenate(
    members: Sequence[nn.Module], network: Network, weights: Sequence[float] | None = None
) -> fx.GraphModule:
    """The wide model that computes the ``weights``-average of the members' outputs.

    Every hidden group becomes the members' channels side by side (member k's block k), so a
    residual addition adds member k's block to member k's block; a layer between hidden groups
    (a projection shortcut included) is block-diagonal.

    Args:
        members: Models of one architecture whose channel groups are ``network``.
        network: The traced groups (``trace_network`` of any member).
        weights: One positive weight per member summing to 1 (default: equal).

    Returns:
        A ``GraphModule`` with member 0's forward pass and every hidden group widened.
    """
    k = len(members)
    w = _check_weights(weights if weights is not None else [1.0 / k] * k, k)
    root = copy.deepcopy(members[0])
    for name, parts in _by_name(network.layers).items():
        layer = parts[0]
        modules = [m.get_submodule(name) for m in members]
        writes = layer.target != network.output
        weights = [m.weight.detach() for m in modules]
        if layer.channelwise:  # one filter per channel: the members' filters one after another
            new_w = torch.cat(weights)
        else:  # part by part of concatenated inputs (one part otherwise)
            new_w = torch.cat(
                [_combine([_part(x, la) for x in weights], w, la.source != INPUT, writes)
                 for la in parts], 1
            )  # fmt: skip
        new_b = None
        if modules[0].bias is not None:
            biases = [m.bias.detach() for m in modules]
            new_b = torch.cat(biases) if writes else _combine(biases, w, False, False)
        groups = k * modules[0].groups if layer.channelwise else 1
        _set_module(root, layer.name, _resize(modules[0], new_w, new_b, groups))
    for norm in network.norms:
        tensors = [_norm_tensors(m.get_submodule(norm.name)) for m in members]
        stacked = {key: torch.cat([t[key] for t in tensors]) for key in tensors[0]}
        module = members[0].get_submodule(norm.name)
        if isinstance(module, nn.LayerNorm):
            wide_norm = BlockLayerNorm(module, stacked.get("weight"), stacked.get("bias"), k)
        else:
            wide_norm = _resize_norm(module, stacked)
        _set_module(root, norm.name, wide_norm)
    for extra in network.extras:
        tensors = [_extra(m, extra) for m in members]
        _set_extra(root, extra, torch.cat(tensors, extra.axis))
    wide = fx.GraphModule(root, copy.deepcopy(network.graph))
    wide.train(members[0].training)
    return wide


def _columns(weight: torch.Tensor, spread: int) -> torch.Tensor:
    """Squared norm of each input channel's weights (``spread`` inputs per channel)."""
    per_input = weight.detach().pow(2).transpose(0, 1).reshape(weight.shape[1], -1).sum(1)
    return per_input.reshape(-1, spread).sum(1)


def group_importance(
    model: nn.Module, network: Network, group: int, members: int = 1
) -> torch.Tensor:
    """Group L2 magnitude of every channel of hidden ``group`` of ``model``.

    The mean over the channel's group of squared L2 norms: its rows in every layer that writes
    the group, its norms' scales (if affine), its entries in parameters outside the layers, its
    input columns in every layer that reads it. ``members``: ``model`` is the wide model of that
    many members (to find the columns of concatenated parts).
    """
    parts = []
    for layer in network.writers(group):
        weight = model.get_submodule(layer.name).weight.detach()
        parts.append(weight.pow(2).reshape(weight.shape[0], -1).sum(1))
    for norm in network.norms_of(group):
        module = model.get_submodule(norm.name)
        if module.weight is not None:
            parts.append(module.weight.detach().pow(2))
    for extra in network.extras_of(group):
        parts.append(_extra_norms(_extra(model, extra), extra.axis))
    for layer in network.readers(group):
        weight = _part(model.get_submodule(layer.name).weight, layer, members)
        parts.append(_columns(weight, layer.spread))
    return torch.stack(parts).mean(0)


def _keep(importance: torch.Tensor, width: int, unit: int) -> torch.Tensor:
    """The ``width`` channels to keep, in ascending order: whole units (attention heads of
    ``unit`` channels) of the largest summed importance."""
    per_unit = importance.reshape(-1, unit).sum(1)
    order = torch.sort(per_unit, descending=True, stable=True).indices
    units = torch.sort(order[: width // unit]).values
    return (units[:, None] * unit + torch.arange(unit)[None, :]).reshape(-1)


def _input_index(kept: torch.Tensor, spread: int) -> torch.Tensor:
    """Input features that belong to the channels ``kept`` (``spread`` per channel)."""
    return (kept[:, None] * spread + torch.arange(spread)[None, :]).reshape(-1)


def prune(
    wide: nn.Module, network: Network, template: nn.Module
) -> tuple[nn.Module, dict[int, torch.Tensor]]:
    """Prune ``wide`` to the widths of ``template`` by group L2 magnitude, group by group.

    Returns:
        A copy of ``template`` holding the kept weights, and the kept channels per hidden group.
    """
    widths, wider = network.widths(template), network.widths(wide)
    k = max([wider[g] // widths[g] for g in network.hidden], default=1)
    kept: dict[int, torch.Tensor] = {}
    for group in network.hidden:
        importance = group_importance(wide, network, group, k)
        kept[group] = _keep(importance, widths[group], network.unit(group))
    state: dict[str, torch.Tensor] = {}
    for name, parts in _by_name(network.layers).items():
        layer = parts[0]
        module = wide.get_submodule(name)
        weight = module.weight.detach()
        if layer.target in kept:
            weight = weight[kept[layer.target]]
        if not layer.channelwise:
            pieces = [_part(weight, la, k) for la in parts]
            pieces = [
                piece[:, _input_index(kept[la.source], la.spread)] if la.source in kept else piece
                for piece, la in zip(pieces, parts, strict=True)
            ]
            weight = torch.cat(pieces, 1)
        state[f"{layer.name}.weight"] = weight
        if module.bias is not None:
            bias = module.bias.detach()
            state[f"{layer.name}.bias"] = bias[kept[layer.target]] if layer.target in kept else bias
    for norm in network.norms:
        for key, value in _norm_tensors(wide.get_submodule(norm.name)).items():
            state[f"{norm.name}.{key}"] = value[kept[norm.group]]
    for extra in network.extras:
        state[extra.name] = _extra(wide, extra).index_select(extra.axis, kept[extra.group])
    model = copy.deepcopy(template)
    missing = set(model.state_dict()) - set(state)
    state.update({key: model.state_dict()[key] for key in missing})  # num_batches_tracked
    model.load_state_dict(state)
    return model, kept


def _member_importance(
    members: Sequence[nn.Module], network: Network, group: int, w: torch.Tensor
) -> torch.Tensor:
    """``group_importance`` of the wide model, computed from the members' own weights.

    A wide channel's weights are its member's weights padded with zeros (scaled by the member's
    weight in the layers writing the output), so its squared norms are the member's.
    """
    scores = []
    for k, member in enumerate(members):
        parts = []
        for layer in network.writers(group):
            weight = member.get_submodule(layer.name).weight.detach()
            parts.append(weight.pow(2).reshape(weight.shape[0], -1).sum(1))
        for norm in network.norms_of(group):
            module = member.get_submodule(norm.name)
            if module.weight is not None:
                parts.append(module.weight.detach().pow(2))
        for extra in network.extras_of(group):
            parts.append(_extra_norms(_extra(member, extra), extra.axis))
        for layer in network.readers(group):
            weight = _part(member.get_submodule(layer.name).weight, layer)
            column = _columns(weight, layer.spread)
            scale = float(w[k]) ** 2 if layer.target == network.output else 1.0
            parts.append(column * scale)
        scores.append(torch.stack(parts).mean(0))
    return torch.cat(scores)


def _by_member(wide_index: torch.Tensor, width: int, members: int) -> list[torch.Tensor]:
    """Sorted wide indices split into member-local indices, member by member."""
    owner = wide_index // width
    return [wide_index[owner == k] - k * width for k in range(members)]


def _pruned_weight(
    weights: list[torch.Tensor],
    w: torch.Tensor,
    rows: list[torch.Tensor] | None,
    cols: list[torch.Tensor] | None,
) -> torch.Tensor:
    """The kept block of a wide layer, built from the members' weights (``None``: all)."""
    if rows is None and cols is None:
        return sum(wk.to(x.dtype) * x for wk, x in zip(w, weights, strict=True))
    if cols is None:
        return torch.cat([x[r] for x, r in zip(weights, rows, strict=True)])
    if rows is None:
        return torch.cat(
            [wk.to(x.dtype) * x[:, c] for wk, x, c in zip(w, weights, cols, strict=True)], 1
        )
    shape = (sum(len(r) for r in rows), sum(len(c) for c in cols), *weights[0].shape[2:])
    result = weights[0].new_zeros(shape)
    row = col = 0
    for x, r, c in zip(weights, rows, cols, strict=True):
        result[row : row + len(r), col : col + len(c)] = x[r][:, c]
        row, col = row + len(r), col + len(c)
    return result


def prune_members(
    members: Sequence[nn.Module], network: Network, weights: Sequence[float] | None = None
) -> tuple[nn.Module, dict[int, torch.Tensor]]:
    """``prune(concatenate(members, network, weights), network, members[0])`` without building
    the wide model: importance and kept weights are read from the members block by block, so
    memory stays at the members' size instead of K² times a member's middle layers.
    """
    k = len(members)
    w = _check_weights(weights if weights is not None else [1.0 / k] * k, k)
    widths = network.widths(members[0])
    kept: dict[int, torch.Tensor] = {}
    for group in network.hidden:
        importance = _member_importance(members, network, group, w)
        kept[group] = _keep(importance, widths[group], network.unit(group))
    local = {g: _by_member(index, widths[g], k) for g, index in kept.items()}
    state: dict[str, torch.Tensor] = {}
    for name, parts in _by_name(network.layers).items():
        layer = parts[0]
        modules = [m.get_submodule(name) for m in members]
        weights = [m.weight.detach() for m in modules]
        rows = local.get(layer.target)
        if layer.channelwise:
            state[f"{name}.weight"] = _pruned_weight(weights, w, rows, None)
        else:
            pieces = []
            for la in parts:
                cols = None
                if la.source in local:
                    cols = [_input_index(c, la.spread) for c in local[la.source]]
                pieces.append(_pruned_weight([_part(x, la) for x in weights], w, rows, cols))
            state[f"{name}.weight"] = torch.cat(pieces, 1)
        if modules[0].bias is not None:
            biases = [m.bias.detach() for m in modules]
            state[f"{layer.name}.bias"] = _pruned_weight(biases, w, rows, None)
    for norm in network.norms:
        tensors = [_norm_tensors(m.get_submodule(norm.name)) for m in members]
        for key in tensors[0]:
            parts = [t[key][r] for t, r in zip(tensors, local[norm.group], strict=True)]
            state[f"{norm.name}.{key}"] = torch.cat(parts)
    for extra in network.extras:
        parts = [_extra(m, extra).index_select(extra.axis, r)
                 for m, r in zip(members, local[extra.group], strict=True)]  # fmt: skip
        state[extra.name] = torch.cat(parts, extra.axis)
    model = copy.deepcopy(members[0])
    missing = set(model.state_dict()) - set(state)
    state.update({key: model.state_dict()[key] for key in missing})  # num_batches_tracked
    model.load_state_dict(state)
    return model, kept


def transplant(
    members: Sequence[nn.Module], network: Network, weights: Sequence[float] | None = None
) -> Transplant:
    """Concatenate ``members`` (weighted) and prune the result back to their size, block by
    block from the members (the wide model is never built; ``concatenate`` builds it)."""
    model, kept = prune_members(members, network, weights)
    return Transplant(model, kept)


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
    network = trace_network(members[0], example)
    if variant == "one-shot":
        return transplant(members, network).model
    if variant == "iterative":
        fused, count = members[0], 1
        for member in members[1:]:
            share = [count / (count + 1), 1 / (count + 1)]
            fused = transplant([fused, member], network, share).model
            count += 1
        return fused
    level = [(m, 1) for m in members]
    while len(level) > 1:
        paired = []
        for (a, na), (b, nb) in zip(level[::2], level[1::2], strict=False):
            paired.append(
                (transplant([a, b], network, [na / (na + nb), nb / (na + nb)]).model, na + nb)
            )
        level = paired + (level[-1:] if len(level) % 2 else [])
    return level[0][0]
