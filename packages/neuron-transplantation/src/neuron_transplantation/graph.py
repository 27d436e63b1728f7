"""Which layers share which channels, read from the forward graph (``torch.fx``).

Fusion needs to know, for every weighted layer, which channels it reads and which it writes. The
authors' code took the layer order from ``named_modules()``, the order attributes were assigned
in ``__init__``, which need not be the order ``forward`` calls them and knows nothing of
residual connections. Here the model is traced symbolically and every tensor on its data path is
followed from the input to the output, along with the axis that holds its channels.

Channels are collected into *groups*: the output channels of a layer form one group, and two
groups joined by an addition (a residual connection) or by concatenation along another axis
(a class token before the patch tokens) become one, because channel ``c`` of both is the same
channel afterwards. Each group is either

- the input (shared by all members: never widened),
- hidden (widened to the members' channels side by side, pruned back afterwards), or
- the output (averaged over the members).

Supported: ``Linear``, ``Conv1d`` and ``Conv2d`` (grouped ones with as many outputs as inputs),
``BatchNorm1d/2d`` and ``LayerNorm`` (over the channel axis) on hidden channels, channel-wise
activations, pooling, dropout, flatten (module, ``torch.flatten``, ``view``/``reshape``; a
hard-coded ``view(-1, n)`` is rewritten to ``flatten(x, 1)`` and a hard-coded channel count in a
reshape to ``-1``, so that they run on the wider model), transposes, indexing along other axes
(``x[:, 0]``), additions and subtractions of hidden channels (residual connections, projection
shortcuts), scaling by constants, parameters outside the layers that are added to, multiplied
with or concatenated to hidden channels (class token, position embedding), multi-head attention
through ``F.scaled_dot_product_attention`` on heads split off the channel axis (query, key and
value become one group that is pruned in whole heads), concatenation along the channel axis
(Inception's branches: the channels of several groups side by side, read by a layer that is
then listed once per part with the columns of that part), and anything at all on the raw input.
Refused with a ``UserError`` naming the operation: norms, additions and reshapes of
concatenated channels (DenseNet), grouped convolutions with more or fewer outputs than inputs, a
layer called twice, a non-linear operation after the last layer.
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from shared_hpc import UserError

__all__ = [
    "INPUT",
    "Extra",
    "Layer",
    "Network",
    "Norm",
    "same_architecture",
    "trace_network",
]

INPUT = -1
"""The group of the network's input channels."""

WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)
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
    "contiguous",
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
TRANSPOSES = (torch.transpose, "transpose")
CONCAT_SAFE = WEIGHTED + POOLS + ELEMENTWISE + FLATTENS + LINEAR_OPS + SCALINGS
"""What may follow a concatenation of channels: it keeps them channel by channel, or reads it."""
CATS = (torch.cat, torch.concat)
SIZE_QUERIES = ("size", "dim", getattr)
PARAM = -2
"""The 'group' of a parameter outside the layers before it meets a hidden tensor."""
CONCAT = -3
"""The 'group' of channels concatenated from several groups (``_Flow.segments``)."""


@dataclass(frozen=True)
class Layer:
    """One weighted layer on the data path.

    Attributes:
        name: Qualified name of the ``Linear`` or ``Conv1d/2d`` module.
        source: Group of the channels it reads (``INPUT`` for the network's input).
        target: Group of the channels it writes.
        spread: Input features per channel of ``source``: the spatial size at a flatten between
            a convolution and a linear layer, else 1.
        channelwise: A grouped convolution with as many outputs as inputs (depthwise: one
            channel per group): output group j reads input group j only, so it writes the group
            it reads (``source == target``), is widened by stacking the members' filters and
            pruned row by row; its group is kept in whole convolution groups (``units``).
        columns: The input features (start, stop) of one member's weight that read ``source``
            when the layer reads channels concatenated from several groups: such a layer
            appears once per part; ``None`` when it reads one group.
    """

    name: str
    source: int
    target: int
    spread: int
    channelwise: bool = False
    columns: tuple[int, int] | None = None


@dataclass(frozen=True)
class Norm:
    """A batch norm or layer norm and the (hidden) group it normalises."""

    name: str
    group: int


@dataclass(frozen=True)
class Extra:
    """A parameter outside the layers (class token, position embedding) on a hidden group.

    Attributes:
        name: Qualified name of the parameter.
        group: The hidden group whose channels lie along ``axis``.
        axis: The parameter's axis of those channels.
    """

    name: str
    group: int
    axis: int


@dataclass(frozen=True)
class Network:
    """The weighted layers of a network, the channel groups they share, and its graph.

    Attributes:
        layers: In the order the forward pass calls them.
        norms: Batch norms and layer norms, in call order.
        output: The group that reaches the output (averaged, never widened).
        graph: The traced graph, with every flatten written as ``torch.flatten(x, 1)`` and
            every reshape free of channel counts, so that it also runs on a wider model.
        extras: Parameters outside the layers, on hidden groups.
        units: Channels per attention head, or per convolution group of a grouped
            convolution, of the groups split so (pruned and permuted in whole units); other
            groups have 1.
    """

    layers: tuple[Layer, ...]
    norms: tuple[Norm, ...]
    output: int
    graph: fx.Graph
    extras: tuple[Extra, ...] = ()
    units: dict[int, int] = field(default_factory=dict)

    @property
    def hidden(self) -> tuple[int, ...]:
        """Hidden groups, in the order their first layer is called."""
        return tuple(sorted({la.target for la in self.layers} - {self.output}))

    def writers(self, group: int) -> list[Layer]:
        """Layers whose output channels are ``group`` (each once, also if it reads several
        concatenated parts)."""
        found = {la.name: la for la in self.layers if la.target == group}
        return list(found.values())

    def readers(self, group: int) -> list[Layer]:
        """Layers whose input channels are ``group`` (depthwise convolutions are writers only)."""
        return [la for la in self.layers if la.source == group and not la.channelwise]

    def norms_of(self, group: int) -> list[Norm]:
        """Batch norms and layer norms on ``group``."""
        return [n for n in self.norms if n.group == group]

    def extras_of(self, group: int) -> list[Extra]:
        """Parameters outside the layers on ``group``."""
        return [e for e in self.extras if e.group == group]

    def unit(self, group: int) -> int:
        """Channels that are kept or moved together in ``group`` (a head's size, else 1)."""
        return self.units.get(group, 1)

    def widths(self, model: nn.Module) -> dict[int, int]:
        """Channels of every group (input excluded) in ``model``."""
        return {la.target: _out_channels(model.get_submodule(la.name)) for la in self.layers}


@dataclass(frozen=True)
class _Flow:
    """What a tensor on the data path carries: channels of ``group`` along dimension ``dim``,
    ``spread`` features per channel; split into heads (along ``dim``) of ``inner`` channels
    (along axis ``inner``) after attention's reshape; ``param`` names a parameter outside the
    layers that has not met a hidden tensor yet; ``segments`` lists the (group, channels) of
    channels concatenated from several groups (``group`` is then ``CONCAT``)."""

    group: int
    spread: int = 1
    dim: int = 1
    linear: bool = True
    inner: int | None = None
    param: str = ""
    segments: tuple[tuple[int, int], ...] = ()


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
        if g < 0:
            return g  # INPUT, PARAM
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
    return _Tracer(model, _trace(model, example)).run()


def _axis(value: object, ndim: int) -> int:
    return int(value) % ndim


class _Tracer:
    """One walk over a traced graph: the flow of every node and the layers, norms, parameters
    and attention heads met on the way (groups as the union-find numbers them)."""

    def __init__(self, model: nn.Module, traced: fx.GraphModule) -> None:
        self.model, self.traced, self.name = model, traced, type(model).__name__
        self.graph = copy.deepcopy(traced.graph)  # rewritten where the wide model needs it
        self.copies = {n.name: n for n in self.graph.nodes}
        self.groups = _Groups()
        self.flows: dict[str, _Flow] = {}
        self.layers: list[tuple[str, int, int, int, bool, tuple[int, int] | None]] = []
        self.norms: list[tuple[str, int]] = []
        self.extras: list[tuple[str, int, int]] = []  # parameter, group, axis from the end
        self.units: list[tuple[int, int]] = []  # group, channels per head

    def fail(self, message: str) -> UserError:
        return UserError(f"{self.name}: {message}")

    def run(self) -> Network:
        output: _Flow | None = None
        for node in self.traced.graph.nodes:
            if node.op == "placeholder":
                self.flows[node.name] = _Flow(INPUT)
                continue
            if node.op == "get_attr":
                self.flows[node.name] = _Flow(PARAM, param=node.target)
                continue
            if node.op == "output":
                if not isinstance(node.args[0], fx.Node) or node.args[0].name not in self.flows:
                    raise self.fail("the model must return one tensor")
                output = self.flows[node.args[0].name]
                continue
            kind = _kind(node, self.model)
            args = [a for a in node.all_input_nodes if a.name in self.flows]
            if not args or _is(kind, SIZE_QUERIES):
                continue  # size arithmetic, constants
            inputs = [self.flows[a.name] for a in args]
            inputs = [replace(f, group=self.groups.find(f.group)) for f in inputs]
            owns = node.op == "call_module" and _has_parameters(self.model, node.target)
            if all(f.group == INPUT for f in inputs) and not (owns or _is(kind, WEIGHTED + NORMS)):
                self.flows[node.name] = _Flow(INPUT)  # the same computation in every member
                continue
            self.flows[node.name] = self.step(node, kind, args, inputs)
        if output is None or output.group in (INPUT, PARAM):
            raise self.fail("no Linear or Conv layer between input and output")
        if output.group == CONCAT:
            raise self.fail("the model returns channels concatenated from several layers")
        return self.finish(self.groups.find(output.group))

    def step(self, node: fx.Node, kind: object, args: list[fx.Node], inputs: list[_Flow]) -> _Flow:
        """The flow out of ``node``, recording layers, norms, parameters and heads on the way."""
        if kind is F.scaled_dot_product_attention:
            return self.attention(node)
        if _is(kind, CATS):
            return self.concatenation(node)
        hidden = [(a, f) for a, f in zip(args, inputs, strict=True) if f.group != PARAM]
        params = [f for f in inputs if f.group == PARAM]
        if any(f.group == CONCAT for f in inputs) and not (
            len(inputs) == 1 and _is(kind, CONCAT_SAFE)
        ):
            raise self.fail(
                f"unsupported operation {_describe(node, self.model)} on channels concatenated "
                "from several layers (only layers, activations, pooling, dropout, scaling and "
                "flatten may follow a concatenation of channels)"
            )
        if not hidden:
            if _is(kind, ("expand",)):
                return inputs[0]
            raise self.fail(f"{params[0].param} is used by {_describe(node, self.model)}")
        if params:
            multiplies = _is(kind, (operator.mul, torch.mul, "mul"))
            if len(hidden) != 1 or len(params) != 1 or not (_is(kind, JOINS) or multiplies):
                raise self.fail(f"{params[0].param} is used by {_describe(node, self.model)}")
            source, flow = hidden[0]
            self.attach(params[0].param, flow, len(_shape(source)))
            return replace(flow, dim=flow.dim + len(_shape(node)) - len(_shape(source)))
        if _is(kind, JOINS) and len(inputs) == 2:
            a, b = inputs
            tensors = [_shape(n) for n in args]
            if INPUT in (a.group, b.group):
                raise self.fail(f"{node.name} adds the raw input to hidden channels")
            if (a.spread, a.dim, a.inner) != (b.spread, b.dim, b.inner) or len(set(tensors)) != 1:
                raise self.fail(f"{node.name} joins tensors of different layouts")
            return replace(
                a, group=self.groups.join(a.group, b.group), linear=a.linear and b.linear
            )
        if len(inputs) != 1:
            raise self.fail(f"unsupported operation {_describe(node, self.model)} on two tensors")
        flow = inputs[0]
        if _is(kind, WEIGHTED):
            return self.layer(node, flow)
        if _is(kind, NORMS):
            return self.norm(node, flow)
        if _is(kind, FLATTENS):
            return self.reshape(node, kind, flow)
        if _is(kind, TRANSPOSES):
            ndim = len(_shape(node))
            a, b = (_axis(x, ndim) for x in node.args[1:3])
            swap = {a: b, b: a}
            inner = None if flow.inner is None else swap.get(flow.inner, flow.inner)
            return replace(flow, dim=swap.get(flow.dim, flow.dim), inner=inner)
        if kind is operator.getitem:
            return self.index(node, flow)
        if _is(kind, ("mean", torch.mean)):
            return self.mean(node, flow)
        if _is(kind, POOLS):
            if flow.dim != 1 or flow.inner is not None:
                raise self.fail(f"{node.name}: pooling over a layer's channel dimension")
            return replace(flow, linear=flow.linear and _is(kind, LINEAR_OPS))
        if _is(kind, ELEMENTWISE):
            return replace(flow, linear=False)
        if _is(kind, SCALINGS):  # x * 2 and x / 2 are linear; x * x and 2 / x are not
            tensors = [a for a in (*node.args, *node.kwargs.values()) if isinstance(a, fx.Node)]
            divides = _is(kind, (operator.truediv, "div"))
            linear = len(tensors) == 1 and not (divides and node.args[0] is not tensors[0])
            return replace(flow, linear=flow.linear and linear)
        if _is(kind, LINEAR_OPS + JOINS):  # dropout, x + 1, x + x
            return flow
        if node.op == "call_module" and isinstance(
            self.model.get_submodule(node.target), nn.MultiheadAttention
        ):
            raise self.fail(
                f"unsupported operation {_describe(node, self.model)}: write attention with "
                "separate query, key and value Linear layers and "
                "F.scaled_dot_product_attention (as models.ViT does)"
            )
        raise self.fail(f"unsupported operation {_describe(node, self.model)}")

    def layer(self, node: fx.Node, flow: _Flow) -> _Flow:
        module = self.model.get_submodule(node.target)
        if any(layer[0] == node.target for layer in self.layers):
            raise UserError(f"{node.target} is called twice in {self.name}")
        if isinstance(module, nn.Conv1d | nn.Conv2d) and module.groups != 1:
            return self.depthwise(node, module, flow)
        before = _shape(node.all_input_nodes[0])
        wanted = len(before) - 1 if isinstance(module, nn.Linear) else 1
        if flow.group != INPUT and (
            flow.dim != wanted or flow.inner is not None or (wanted != 1 and flow.spread != 1)
        ):
            raise UserError(f"{node.target} does not read its input's channel dimension")
        target = self.groups.new()
        if flow.segments:  # one entry per concatenated part, with its columns
            start = 0
            for group, channels in flow.segments:
                stop = start + channels * flow.spread
                self.layers.append((node.target, group, target, flow.spread, False, (start, stop)))
                start = stop
        else:
            self.layers.append((node.target, flow.group, target, flow.spread, False, None))
        return _Flow(target, 1, len(_shape(node)) - 1 if isinstance(module, nn.Linear) else 1)

    def depthwise(self, node: fx.Node, module: nn.Module, flow: _Flow) -> _Flow:
        """A grouped convolution with as many outputs as inputs (depthwise: one channel per
        group): output group j reads input group j only, so it writes the channels it reads,
        kept and permuted in whole convolution groups."""
        if module.in_channels != module.out_channels:
            raise UserError(
                f"{node.target}: grouped convolutions with more or fewer output than input "
                "channels are not supported"
            )
        if flow.group in (INPUT, CONCAT):
            raise self.fail(f"{node.target}: a grouped convolution of the raw input or of "
                            "concatenated channels")  # fmt: skip
        if flow.dim != 1 or flow.spread != 1 or flow.inner is not None:
            raise UserError(f"{node.target} does not read its input's channel dimension")
        self.layers.append((node.target, flow.group, flow.group, 1, True, None))
        if module.groups < module.in_channels:
            self.units.append((flow.group, module.in_channels // module.groups))
        return replace(flow, linear=False)

    def norm(self, node: fx.Node, flow: _Flow) -> _Flow:
        module = self.model.get_submodule(node.target)
        if flow.group == INPUT:
            raise self.fail(f"{node.target} normalises the raw input with each member's own "
                            "parameters")  # fmt: skip
        if isinstance(module, nn.LayerNorm):
            shape = _shape(node)
            if flow.dim != len(shape) - 1 or tuple(module.normalized_shape) != shape[-1:]:
                raise self.fail(f"{node.target}: a layer norm must normalise a layer's channels")
        elif flow.dim != 1:
            raise self.fail(f"{node.target}: a batch norm must normalise a layer's channels")
        if flow.spread != 1 or flow.inner is not None:
            raise self.fail(f"{node.target}: a norm must normalise a layer's channels")
        self.norms.append((node.target, flow.group))
        return replace(flow, linear=False)

    def attach(self, param: str, flow: _Flow, ndim: int) -> None:
        """Record ``param`` as lying along ``flow``'s channels (in a tensor of ``ndim`` axes)."""
        if flow.group == INPUT:
            raise self.fail(f"{param} is combined with the raw input; members differ in it")
        if flow.inner is not None or flow.spread != 1:
            raise self.fail(f"{param} is combined with heads or flattened channels")
        self.extras.append((param, flow.group, flow.dim - ndim))

    def concatenation(self, node: fx.Node) -> _Flow:
        ndim = len(_shape(node))
        axis = _axis(node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0), ndim)
        parts = [self.flows.get(a.name) for a in node.args[0]]
        if any(f is None for f in parts):
            raise self.fail(f"{node.name} concatenates a tensor off the data path")
        parts = [replace(f, group=self.groups.find(f.group)) for f in parts]
        hidden = [f for f in parts if f.group != PARAM]
        if not hidden or any(f.group == INPUT for f in hidden):
            raise self.fail(f"{node.name} concatenates the raw input or parameters alone")
        first = hidden[0]
        if any(
            (f.dim, f.inner, f.spread) != (first.dim, first.inner, first.spread) for f in hidden
        ):
            raise self.fail(f"{node.name} concatenates tensors of different layouts")
        if axis == first.dim and first.inner is None and len(hidden) == len(parts):
            segments: list[tuple[int, int]] = []
            for f, source in zip(parts, node.args[0], strict=True):
                segments += f.segments or [(f.group, _shape(source)[axis])]
            linear = all(f.linear for f in parts)
            return _Flow(CONCAT, first.spread, first.dim, linear, segments=tuple(segments))
        if axis in (first.dim, first.inner) or any(f.group == CONCAT for f in hidden):
            raise self.fail(
                f"unsupported operation {node.name}: concatenation of heads, of parameters "
                "along the channel axis, or of concatenated channels along another axis"
            )
        group = first.group
        for f in hidden[1:]:
            group = self.groups.join(group, f.group)
        for f in parts:
            if f.group == PARAM:
                self.attach(f.param, first, ndim)
        return replace(first, group=group, linear=all(f.linear for f in hidden))

    def attention(self, node: fx.Node) -> _Flow:
        extra = [a for a in (*node.args[3:], *node.kwargs.values()) if isinstance(a, fx.Node)]
        if len(node.args) < 3 or extra:
            raise self.fail(f"{node.name}: attention needs query, key and value and no mask")
        q, k, v = (self.flows.get(a.name) if isinstance(a, fx.Node) else None
                   for a in node.args[:3])  # fmt: skip
        ndim = len(_shape(node))
        for f in (q, k, v):
            if f is None or f.group in (INPUT, PARAM) or f.inner != ndim - 1 or f.dim >= ndim - 2:
                raise self.fail(
                    f"{node.name}: attention must read a layer's channels split into heads "
                    "(reshape to (..., heads, head size) on the channel axis, heads before "
                    "the tokens)"
                )
        if len({q.dim, k.dim, v.dim}) != 1 or len({_shape(a)[-1] for a in node.args[:3]}) != 1:
            raise self.fail(f"{node.name}: query, key and value must have the same heads")
        group = self.groups.join(self.groups.join(q.group, k.group), v.group)
        self.units.append((group, _shape(node.args[0])[-1]))
        return _Flow(group, 1, v.dim, False, v.inner)

    def index(self, node: fx.Node, flow: _Flow) -> _Flow:
        items = node.args[1] if isinstance(node.args[1], tuple) else (node.args[1],)
        ndim = len(_shape(node.all_input_nodes[0]))
        moved: dict[int, int] = {}
        for axis, item in enumerate(items):
            if axis in (flow.dim, flow.inner) and item != slice(None):
                raise self.fail(f"{node.name} selects some of a layer's channels")
            if isinstance(item, slice):
                moved[axis] = len(moved)
            elif not isinstance(item, int) or isinstance(item, bool):
                raise self.fail(f"{node.name}: only integers and slices index hidden tensors")
        for axis in range(len(items), ndim):
            moved[axis] = len(moved)
        inner = None if flow.inner is None else moved[flow.inner]
        return replace(flow, dim=moved[flow.dim], inner=inner)

    def mean(self, node: fx.Node, flow: _Flow) -> _Flow:
        ndim = len(_shape(node.all_input_nodes[0]))
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        if dims is None:
            raise self.fail(f"{node.name} averages over a layer's channels")
        dims = {_axis(d, ndim) for d in (dims if isinstance(dims, tuple | list) else (dims,))}
        if dims & {flow.dim, flow.inner}:
            raise self.fail(f"{node.name} averages over a layer's channels")
        if node.kwargs.get("keepdim", node.args[2] if len(node.args) > 2 else False):
            return flow
        inner = None if flow.inner is None else flow.inner - sum(d < flow.inner for d in dims)
        return replace(flow, dim=flow.dim - sum(d < flow.dim for d in dims), inner=inner)

    def reshape(self, node: fx.Node, kind: object, flow: _Flow) -> _Flow:
        """A flatten or reshape: to (batch, features) as before, else splitting the channel axis
        into heads, merging heads back, or moving the channel axis."""
        before, after = _shape(node.all_input_nodes[0]), _shape(node)
        if len(after) == 2 and after[0] == before[0] and flow.inner is None:
            if len(before) > 2 and flow.dim != 1:
                raise self.fail(f"{node.name}: only a flatten to (batch, features) is supported")
            copied = self.copies[node.name]
            with self.graph.inserting_after(copied):
                flat = self.graph.call_function(
                    torch.flatten, (self.copies[node.all_input_nodes[0].name], 1)
                )
            copied.replace_all_uses_with(flat)
            self.graph.erase_node(copied)
            self.copies[node.name] = flat
            return replace(flow, spread=flow.spread * math.prod(before[2:]), dim=1)
        if flow.segments:
            raise self.fail(f"{node.name} reshapes channels concatenated from several layers")
        p = 0
        while p < min(len(before), len(after)) and before[p] == after[p]:
            p += 1
        q = 0
        while q < min(len(before), len(after)) - p and before[-1 - q] == after[-1 - q]:
            q += 1
        shift, middle = len(after) - len(before), list(range(p, len(before) - q))

        def moved(axis: int) -> int | None:
            return axis if axis < p else (axis + shift if axis >= len(before) - q else None)

        def source(axis: int) -> int | None:  # the input axis an output axis keeps
            return axis if axis < p else (axis - shift if axis >= len(after) - q else None)

        dim, inner = moved(flow.dim), None if flow.inner is None else moved(flow.inner)
        if dim is not None and (flow.inner is None or inner is not None):
            self.free(node, dim, None, source)
            return replace(flow, dim=dim, inner=inner)
        if flow.inner is None and middle == [flow.dim] and len(after) - q - p == 2:
            self.free(node, p, after[p + 1], source)  # split into heads of after[p + 1]
            return replace(flow, dim=p, inner=p + 1)
        if middle == [flow.dim, flow.inner] and len(after) - q - p == 1:
            self.free(node, p, None, source)  # heads merged back into channels
            return replace(flow, dim=p, inner=None)
        raise self.fail(f"{node.name} reshapes a layer's channels together with other axes")

    def free(
        self, node: fx.Node, position: int, head: int | None, source: Callable[[int], int | None]
    ) -> None:
        """Write -1 for the channels (or heads) at ``position`` of a reshape's sizes, so that
        the wide model's reshape finds its K times larger count itself; a -1 elsewhere becomes
        the size of the input axis it keeps (``source``)."""
        copied = self.copies[node.name]
        if not _is(_kind(node, self.model), (torch.reshape, "view", "reshape")):
            return  # flatten names no sizes
        packed = len(copied.args) == 2 and isinstance(copied.args[1], tuple | list)
        sizes = list(copied.args[1] if packed else copied.args[1:])
        if head is not None:
            sizes[position + 1] = head
        if isinstance(sizes[position], fx.Node) or sizes[position] == -1:
            return
        for j, size in enumerate(sizes):
            if isinstance(size, int) and size == -1:
                axis = source(j)
                if axis is None:
                    raise self.fail(f"{node.name}: a reshape that fixes the channel count and "
                                    "infers a new axis (-1); give that size instead")  # fmt: skip
                with self.graph.inserting_before(copied):
                    sizes[j] = self.graph.call_method("size", (copied.args[0], axis))
        sizes[position] = -1
        copied.args = (copied.args[0], tuple(sizes)) if packed else (copied.args[0], *sizes)

    def finish(self, output: int) -> Network:
        """Number the groups by first use, check the output group and the parameters outside
        the layers, remove dead size queries."""
        find = self.groups.find
        order: dict[int, int] = {}
        for _, _, target, _, _, _ in self.layers:
            order.setdefault(find(target), len(order))
        number = {**order, INPUT: INPUT}
        out = number[output]
        final = tuple(
            Layer(layer, number[find(src)], number[find(dst)], spread, channelwise, columns)
            for layer, src, dst, spread, channelwise, columns in self.layers
        )
        for layer in final:
            if layer.source == out:
                raise self.fail(f"{layer.name} reads the output channels of another layer")
        found = tuple(Norm(n, number[find(g)]) for n, g in self.norms)
        if any(n.group == out for n in found):
            raise self.fail("a norm after the last layer cannot be averaged over")
        if any(find(f.group) == output and not f.linear for f in self.flows.values()):
            raise self.fail(
                "a non-linear operation after the last layer; the ensemble averages the "
                "last layer's outputs"
            )
        widths = {la.target: _out_channels(self.model.get_submodule(la.name)) for la in final}
        units: dict[int, int] = {}
        for g, unit in self.units:
            if units.setdefault(number[find(g)], unit) != unit:
                raise self.fail(
                    "one group of channels is split into heads or convolution groups of "
                    "different sizes"
                )
        extras = self.check_extras(number, out, widths)
        owned = {
            f"{module}.{key}" for module in [la.name for la in final] + [n.name for n in found]
            for key in self.model.get_submodule(module).state_dict()
        } | {e.name for e in extras}  # fmt: skip
        stray = sorted(set(self.model.state_dict()) - owned)
        if stray:
            raise self.fail(f"{stray[0]} is outside the fusable layers")
        for node in reversed(list(self.graph.nodes)):  # size queries a replaced flatten used
            if not node.users and (
                (node.op == "call_method" and node.target in ("size", "dim"))
                or (node.op == "call_function" and node.target in (getattr, operator.getitem))
            ):
                self.graph.erase_node(node)
        return Network(final, found, out, self.graph, extras, units)

    def check_extras(
        self, number: dict[int, int], out: int, widths: dict[int, int]
    ) -> tuple[Extra, ...]:
        state = self.model.state_dict()
        extras: dict[str, Extra] = {}
        for name, g, from_end in self.extras:
            group = number[self.groups.find(g)]
            if name not in state:
                raise self.fail(f"{name} is neither a parameter nor a saved buffer")
            if group == out:
                raise self.fail(f"{name} acts after the last layer; it cannot be averaged over")
            tensor = state[name]
            axis = tensor.dim() + from_end
            if axis < 0 or tensor.shape[axis] != widths[group]:
                raise self.fail(f"{name} does not lie along the channels it is combined with")
            extra = Extra(name, group, axis)
            if extras.setdefault(name, extra) != extra:
                raise self.fail(f"{name} is combined with two different groups of channels")
        return tuple(extras.values())


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
