"""Which layers share which channels, read from the forward graph (``torch.fx``).

Fusion needs to know, for every weighted layer, which channels it reads and which it writes. The
authors' code took the layer order from ``named_modules()``, the order attributes were assigned
in ``__init__``, which need not be the order ``forward`` calls them and knows nothing of
residual connections. Here the model is traced symbolically and every tensor on its data path is
followed from the input to the output.

Channels are collected into *groups*: the output channels of a layer form one group, and two
groups joined by an addition (a residual connection) become one, because channel ``c`` of both
summands is the same channel afterwards. Each group is either

- the input (shared by all members: never widened),
- hidden (widened to the members' channels side by side, pruned back afterwards), or
- the output (averaged over the members).

Supported: ``Linear``, ``Conv1d`` and ``Conv2d`` (``groups=1``), ``BatchNorm1d/2d`` on hidden
channels, channel-wise activations, pooling, dropout, flatten (module, ``torch.flatten``,
``view``/``reshape`` to (batch, features); a hard-coded ``view(-1, n)`` is rewritten to
``flatten(x, 1)`` so that it runs on the wider model), additions and subtractions of hidden
channels (residual connections, projection shortcuts), scaling by constants, and anything at all
on the raw input. Refused with a ``UserError`` naming the operation: ``LayerNorm`` (it
normalises across all features, so over the members' concatenated features it would mix them),
attention, concatenation, grouped convolutions, parameters outside the layers, a layer called
twice, a non-linear operation after the last layer.
"""

from __future__ import annotations

import copy
import math
import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from shared_hpc import UserError

__all__ = ["INPUT", "Layer", "Network", "Norm", "same_architecture", "trace_network"]

INPUT = -1
"""The group of the network's input channels."""

WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
POOLS = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    F.max_pool1d,
    F.max_pool2d,
    F.avg_pool1d,
    F.avg_pool2d,
    F.adaptive_avg_pool1d,
    F.adaptive_avg_pool2d,
    F.adaptive_max_pool1d,
    F.adaptive_max_pool2d,
)
LINEAR_OPS = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Identity,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    F.dropout,
    F.avg_pool1d,
    F.avg_pool2d,
    F.adaptive_avg_pool1d,
    F.adaptive_avg_pool2d,
)
"""Operations the ensemble average passes through unchanged (allowed after the last layer)."""
ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    torch.relu,
    torch.tanh,
    torch.sigmoid,
    F.relu,
    F.relu6,
    F.leaky_relu,
    F.elu,
    F.gelu,
    F.silu,
    "relu",
    "tanh",
    "sigmoid",
)
JOINS = (operator.add, operator.sub, operator.iadd, torch.add, torch.sub, "add", "sub")
SCALINGS = (operator.mul, operator.truediv, operator.neg, torch.mul, "mul", "div")
FLATTENS = (nn.Flatten, torch.flatten, torch.reshape, "view", "reshape", "flatten")
SIZE_QUERIES = ("size", "dim", getattr)


@dataclass(frozen=True)
class Layer:
    """One weighted layer on the data path.

    Attributes:
        name: Qualified name of the ``Linear`` or ``Conv1d/2d`` module.
        source: Group of the channels it reads (``INPUT`` for the network's input).
        target: Group of the channels it writes.
        spread: Input features per channel of ``source``: the spatial size at a flatten between
            a convolution and a linear layer, else 1.
    """

    name: str
    source: int
    target: int
    spread: int


@dataclass(frozen=True)
class Norm:
    """A batch norm and the (hidden) group it normalises."""

    name: str
    group: int


@dataclass(frozen=True)
class Network:
    """The weighted layers of a network, the channel groups they share, and its graph.

    Attributes:
        layers: In the order the forward pass calls them.
        norms: Batch norms, in call order.
        output: The group that reaches the output (averaged, never widened).
        graph: The traced graph, with every flatten written as ``torch.flatten(x, 1)`` so that
            it also runs on a wider model.
    """

    layers: tuple[Layer, ...]
    norms: tuple[Norm, ...]
    output: int
    graph: fx.Graph

    @property
    def hidden(self) -> tuple[int, ...]:
        """Hidden groups, in the order their first layer is called."""
        return tuple(sorted({la.target for la in self.layers} - {self.output}))

    def writers(self, group: int) -> list[Layer]:
        """Layers whose output channels are ``group``."""
        return [la for la in self.layers if la.target == group]

    def readers(self, group: int) -> list[Layer]:
        """Layers whose input channels are ``group``."""
        return [la for la in self.layers if la.source == group]

    def norms_of(self, group: int) -> list[Norm]:
        """Batch norms on ``group``."""
        return [n for n in self.norms if n.group == group]

    def widths(self, model: nn.Module) -> dict[int, int]:
        """Channels of every group (input excluded) in ``model``."""
        return {la.target: _out_channels(model.get_submodule(la.name)) for la in self.layers}


@dataclass(frozen=True)
class _Flow:
    """What a tensor on the data path carries: channels of ``group`` along dimension ``dim``,
    ``spread`` features per channel."""

    group: int
    spread: int = 1
    dim: int = 1
    linear: bool = True


def _out_channels(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def _has_parameters(model: nn.Module, name: str) -> bool:
    return next(model.get_submodule(name).parameters(), None) is not None


def _kind(node: fx.Node, model: nn.Module) -> object:
    """The module class, function or method name a node calls."""
    if node.op == "call_module":
        return type(model.get_submodule(node.target))
    return node.target


def _is(kind: object, options: tuple) -> bool:
    if isinstance(kind, type):
        return any(isinstance(o, type) and issubclass(kind, o) for o in options)
    return any(kind is o or (isinstance(o, str) and kind == o) for o in options)


def _describe(node: fx.Node, model: nn.Module) -> str:
    if node.op == "call_module":
        return f"{node.target} ({type(model.get_submodule(node.target)).__name__})"
    return f"{node.op} {getattr(node.target, '__name__', node.target)}"


class _Groups:
    """Union-find over channel groups (an addition merges two)."""

    def __init__(self) -> None:
        self.parent: list[int] = []

    def new(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, g: int) -> int:
        if g == INPUT:
            return INPUT
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def join(self, a: int, b: int) -> int:
        a, b = self.find(a), self.find(b)
        self.parent[max(a, b)] = min(a, b)
        return min(a, b)


def _trace(model: nn.Module, example: torch.Tensor) -> fx.GraphModule:
    try:
        traced = fx.symbolic_trace(model)
    except Exception as err:
        raise UserError(f"cannot trace {type(model).__name__} with torch.fx: {err}") from None
    shaped = copy.deepcopy(traced).eval()  # shape propagation must not touch batch statistics
    with torch.no_grad():
        ShapeProp(shaped).propagate(example[:1])
    return shaped


def _shape(node: fx.Node) -> tuple[int, ...]:
    return tuple(node.meta["tensor_meta"].shape)


def trace_network(model: nn.Module, example: torch.Tensor) -> Network:
    """Trace ``model`` on a batch like ``example``: its layers and the channel groups they share.

    Raises:
        UserError: The model cannot be traced or uses an operation fusion does not handle.
    """
    name = type(model).__name__
    traced = _trace(model, example)
    graph = copy.deepcopy(traced.graph)
    copies = {n.name: n for n in graph.nodes}
    groups = _Groups()
    flows: dict[str, _Flow] = {}
    layers: list[tuple[str, int, int, int]] = []
    norms: list[tuple[str, int]] = []
    output: _Flow | None = None
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            flows[node.name] = _Flow(INPUT)
            continue
        if node.op == "get_attr":
            raise UserError(f"{name}: {node.target} is outside the fusable layers")
        inputs = [flows[a.name] for a in node.all_input_nodes if a.name in flows]
        if node.op == "output":
            if not isinstance(node.args[0], fx.Node) or node.args[0].name not in flows:
                raise UserError(f"{name} must return one tensor")
            output = flows[node.args[0].name]
            continue
        if not inputs or _is(_kind(node, model), SIZE_QUERIES):
            continue  # size arithmetic, constants
        kind = _kind(node, model)
        owns = node.op == "call_module" and _has_parameters(model, node.target)
        if all(f.group == INPUT for f in inputs) and not (owns or _is(kind, WEIGHTED + NORMS)):
            flows[node.name] = _Flow(INPUT)  # the same computation in every member
            continue
        flows[node.name] = _step(node, kind, inputs, model, groups, layers, norms, copies, graph)
    if output is None or output.group == INPUT:
        raise UserError(f"{name} has no Linear or Conv layer between input and output")
    return _finish(model, layers, norms, groups, groups.find(output.group), flows, graph)


def _step(
    node: fx.Node,
    kind: object,
    inputs: list[_Flow],
    model: nn.Module,
    groups: _Groups,
    layers: list[tuple[str, int, int, int]],
    norms: list[tuple[str, int]],
    copies: dict[str, fx.Node],
    graph: fx.Graph,
) -> _Flow:
    """The flow out of ``node``, recording layers and norms on the way."""
    name = type(model).__name__
    flow = _Flow(groups.find(inputs[0].group), inputs[0].spread, inputs[0].dim, inputs[0].linear)
    if _is(kind, JOINS) and len(inputs) == 2:
        a, b = (_Flow(groups.find(f.group), f.spread, f.dim, f.linear) for f in inputs)
        tensors = [_shape(n) for n in node.all_input_nodes if "tensor_meta" in n.meta]
        if INPUT in (a.group, b.group):
            raise UserError(f"{name}: {node.name} adds the raw input to hidden channels")
        if (a.spread, a.dim) != (b.spread, b.dim) or len(set(tensors)) != 1:
            raise UserError(f"{name}: {node.name} joins tensors of different layouts")
        return _Flow(groups.join(a.group, b.group), a.spread, a.dim, a.linear and b.linear)
    if len(inputs) != 1:
        raise UserError(f"{name}: unsupported operation {_describe(node, model)} on two tensors")
    if _is(kind, WEIGHTED):
        module = model.get_submodule(node.target)
        if any(layer[0] == node.target for layer in layers):
            raise UserError(f"{node.target} is called twice in {name}")
        if isinstance(module, nn.Conv1d | nn.Conv2d) and module.groups != 1:
            raise UserError(f"{node.target}: grouped convolutions are not supported")
        before = _shape(node.all_input_nodes[0])
        wanted = len(before) - 1 if isinstance(module, nn.Linear) else 1
        if flow.group != INPUT and (flow.dim != wanted or (wanted != 1 and flow.spread != 1)):
            raise UserError(f"{node.target} does not read its input's channel dimension")
        target = groups.new()
        layers.append((node.target, flow.group, target, flow.spread))
        return _Flow(target, 1, len(_shape(node)) - 1 if isinstance(module, nn.Linear) else 1)
    if _is(kind, NORMS):
        if flow.dim != 1 or flow.spread != 1:
            raise UserError(f"{node.target}: a batch norm must normalise a layer's channels")
        norms.append((node.target, flow.group))
        return _Flow(flow.group, 1, 1, False)
    if _is(kind, FLATTENS):
        before, after = _shape(node.all_input_nodes[0]), _shape(node)
        if len(after) != 2 or after[0] != before[0] or (len(before) > 2 and flow.dim != 1):
            raise UserError(f"{node.name}: only a flatten to (batch, features) is supported")
        copied = copies[node.name]
        with graph.inserting_after(copied):
            flat = graph.call_function(torch.flatten, (copies[node.all_input_nodes[0].name], 1))
        copied.replace_all_uses_with(flat)
        graph.erase_node(copied)
        copies[node.name] = flat
        return _Flow(flow.group, flow.spread * math.prod(before[2:]), 1, flow.linear)
    if _is(kind, POOLS):
        if flow.dim != 1:
            raise UserError(f"{node.name}: pooling over a layer's channel dimension")
        return _Flow(flow.group, flow.spread, 1, flow.linear and _is(kind, LINEAR_OPS))
    if _is(kind, ELEMENTWISE):
        return _Flow(flow.group, flow.spread, flow.dim, False)
    if _is(kind, SCALINGS):  # x * 2 and x / 2 are linear; x * x and 2 / x are not
        tensors = [a for a in (*node.args, *node.kwargs.values()) if isinstance(a, fx.Node)]
        divides = _is(kind, (operator.truediv, "div"))
        linear = len(tensors) == 1 and not (divides and node.args[0] is not tensors[0])
        return _Flow(flow.group, flow.spread, flow.dim, flow.linear and linear)
    if _is(kind, LINEAR_OPS + JOINS):  # dropout, x + 1, x + x
        return flow
    if node.op == "call_module" and isinstance(model.get_submodule(node.target), nn.LayerNorm):
        raise UserError(
            f"{name}: unsupported operation {_describe(node, model)}: a LayerNorm over the "
            "members' concatenated features normalises across members, so the wide model "
            "would not be the ensemble"
        )
    raise UserError(f"{name}: unsupported operation {_describe(node, model)}")


def _finish(
    model: nn.Module,
    layers: list[tuple[str, int, int, int]],
    norms: list[tuple[str, int]],
    groups: _Groups,
    output: int,
    flows: dict[str, _Flow],
    graph: fx.Graph,
) -> Network:
    """Number the groups by first use, check the output group, remove dead size queries."""
    name = type(model).__name__
    order: dict[int, int] = {}
    for _, _, target, _ in layers:
        order.setdefault(groups.find(target), len(order))
    number = {**order, INPUT: INPUT}
    out = number[output]
    final = tuple(
        Layer(layer, number[groups.find(src)], number[groups.find(dst)], spread)
        for layer, src, dst, spread in layers
    )
    for layer in final:
        if layer.source == out:
            raise UserError(f"{name}: {layer.name} reads the output channels of another layer")
    found = tuple(Norm(n, number[groups.find(g)]) for n, g in norms)
    if any(n.group == out for n in found):
        raise UserError(f"{name}: a batch norm after the last layer cannot be averaged over")
    if any(groups.find(f.group) == output and not f.linear for f in flows.values()):
        raise UserError(
            f"{name}: a non-linear operation after the last layer; the ensemble averages the "
            "last layer's outputs"
        )
    owned = {
        f"{module}.{key}" for module in [la.name for la in final] + [n.name for n in found]
        for key in model.get_submodule(module).state_dict()
    }  # fmt: skip
    stray = sorted(set(model.state_dict()) - owned)
    if stray:
        raise UserError(f"{name}: {stray[0]} is outside the fusable layers")
    for node in reversed(list(graph.nodes)):  # size queries a replaced flatten used
        if not node.users and (
            (node.op == "call_method" and node.target in ("size", "dim"))
            or (node.op == "call_function" and node.target in (getattr, operator.getitem))
        ):
            graph.erase_node(node)
    return Network(final, found, out, graph)


def same_architecture(models: list[nn.Module]) -> None:
    """Refuse members that differ in class or in any parameter's name or shape.

    Raises:
        UserError: Fewer than two members, or two that differ (naming the first difference).
    """
    if len(models) < 2:
        raise UserError(f"fusion needs at least two members, got {len(models)}")
    first = models[0]
    shapes = {k: tuple(v.shape) for k, v in first.state_dict().items()}
    for i, other in enumerate(models[1:], start=1):
        if type(other) is not type(first):
            raise UserError(
                f"members differ in architecture: member 0 is {type(first).__name__}, "
                f"member {i} is {type(other).__name__}"
            )
        theirs = {k: tuple(v.shape) for k, v in other.state_dict().items()}
        for key in sorted(set(shapes) | set(theirs)):
            if shapes.get(key) != theirs.get(key):
                raise UserError(
                    f"members differ in architecture: {key} is {shapes.get(key)} in member 0 "
                    f"and {theirs.get(key)} in member {i}"
                )
