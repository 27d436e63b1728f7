"""The layer order of a network, read from its forward graph (``torch.fx``), not its attributes.

Fusion needs to know which layer feeds which: the first layer's inputs are shared by all members,
the last layer's outputs are averaged, and every layer in between maps the previous layer's
channels to its own. ``named_modules()`` lists modules in the order they were assigned in
``__init__``, which need not be the order ``forward`` calls them (the authors' code relied on it).
So the model is traced symbolically and its data path is walked from the input to the output.

Supported this far: a chain (no branches) of ``Linear`` and ``Conv2d`` layers (``groups=1``),
each optionally followed by one ``BatchNorm1d``/``BatchNorm2d``, with channel-wise operations in
between (activations, pooling, dropout) and one flatten from convolutions to linear layers.
Anything else is refused with a ``UserError`` naming the operation, never fused wrongly.
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

__all__ = ["Chain", "Layer", "same_architecture", "trace_chain"]

WEIGHTED = (nn.Linear, nn.Conv2d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
CHANNELWISE_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Dropout,
    nn.Dropout2d,
    nn.Identity,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)
CHANNELWISE_FUNCTIONS = {
    torch.relu,
    torch.tanh,
    torch.sigmoid,
    F.relu,
    F.relu6,
    F.leaky_relu,
    F.elu,
    F.gelu,
    F.silu,
    F.dropout,
    F.max_pool2d,
    F.avg_pool2d,
    F.adaptive_avg_pool2d,
    F.adaptive_max_pool2d,
}
CHANNELWISE_METHODS = {"relu", "tanh", "sigmoid"}
FLATTEN_METHODS = {"view", "reshape", "flatten"}
SIZE_QUERIES = {"size", "dim"}


@dataclass(frozen=True)
class Layer:
    """One weighted layer on the data path.

    Attributes:
        name: Qualified name of the ``Linear`` or ``Conv2d`` module.
        norm: Qualified name of the batch norm that follows it, ``None`` if there is none.
        spread: Input features of this layer per output channel of the previous one: the
            spatial size at a flatten between a convolution and a linear layer, else 1.
    """

    name: str
    norm: str | None
    spread: int


@dataclass(frozen=True)
class Chain:
    """The weighted layers of a network in the order its forward pass calls them.

    Attributes:
        layers: First to last.
        graph: The traced graph, with every flatten written as ``torch.flatten(x, 1)`` so that
            it also runs on a wider model.
    """

    layers: tuple[Layer, ...]
    graph: fx.Graph

    def widths(self, model: nn.Module) -> list[int]:
        """Output channels of every layer of ``model``."""
        return [_out_channels(model.get_submodule(layer.name)) for layer in self.layers]


def _out_channels(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def _describe(node: fx.Node, model: nn.Module) -> str:
    if node.op == "call_module":
        return f"{node.target} ({type(model.get_submodule(node.target)).__name__})"
    return f"{node.op} {getattr(node.target, '__name__', node.target)}"


def _is_size_query(node: fx.Node) -> bool:
    if node.op == "call_method" and node.target in SIZE_QUERIES:
        return True
    return node.op == "call_function" and node.target is getattr


def _is_flatten(node: fx.Node, model: nn.Module) -> bool:
    if node.op == "call_module":
        return isinstance(model.get_submodule(node.target), nn.Flatten)
    if node.op == "call_method":
        return node.target in FLATTEN_METHODS
    return node.op == "call_function" and node.target in (torch.flatten, torch.reshape)


def trace_chain(model: nn.Module, example: torch.Tensor) -> Chain:
    """Trace ``model`` on a batch like ``example`` and list its weighted layers in call order.

    Raises:
        UserError: The model cannot be traced, branches, or uses an operation fusion does not
            handle (yet).
    """
    try:
        traced = fx.symbolic_trace(model)
    except Exception as err:
        raise UserError(f"cannot trace {type(model).__name__} with torch.fx: {err}") from None
    traced = copy.deepcopy(traced).eval()  # shape propagation must not touch batch statistics
    with torch.no_grad():
        ShapeProp(traced).propagate(example[:1])
    graph = copy.deepcopy(traced.graph)
    nodes = {n.name: n for n in graph.nodes}
    current = next(n for n in traced.graph.nodes if n.op == "placeholder")
    layers: list[Layer] = []
    seen: set[str] = set()
    spread = 1
    while True:
        users = [u for u in current.users if not _is_size_query(u)]
        if len(users) != 1:
            raise UserError(
                f"{type(model).__name__} branches after {current.name} (residual connections "
                "are not supported yet)"
            )
        node = users[0]
        if node.op == "output":
            break
        module = model.get_submodule(node.target) if node.op == "call_module" else None
        if isinstance(module, WEIGHTED):
            if node.target in seen:
                raise UserError(f"{node.target} is called twice in {type(model).__name__}")
            if isinstance(module, nn.Conv2d) and module.groups != 1:
                raise UserError(f"{node.target}: grouped convolutions are not supported yet")
            if isinstance(module, nn.Linear) and len(current.meta["tensor_meta"].shape) != 2:
                raise UserError(f"{node.target}: a linear layer must see (batch, features)")
            seen.add(node.target)
            layers.append(Layer(node.target, None, spread))
            spread = 1
        elif isinstance(module, NORMS):
            if not layers or layers[-1].norm is not None:
                raise UserError(
                    f"{node.target}: a batch norm must directly follow a Linear or Conv2d layer"
                )
            layers[-1] = Layer(layers[-1].name, node.target, layers[-1].spread)
        elif _is_flatten(node, model):
            before = tuple(current.meta["tensor_meta"].shape)
            after = tuple(node.meta["tensor_meta"].shape)
            if len(after) != 2 or after[0] != before[0]:
                raise UserError(f"{node.name}: only a flatten to (batch, features) is supported")
            if layers:  # a flatten of the raw input concerns no layer's channels
                spread *= math.prod(before[2:])
            copied = nodes[node.name]
            with graph.inserting_after(copied):
                flat = graph.call_function(torch.flatten, (nodes[current.name], 1))
            copied.replace_all_uses_with(flat)
            graph.erase_node(copied)
            nodes[node.name] = flat
        elif not (
            isinstance(module, CHANNELWISE_MODULES)
            or (node.op == "call_function" and node.target in CHANNELWISE_FUNCTIONS)
            or (node.op == "call_method" and node.target in CHANNELWISE_METHODS)
        ):
            raise UserError(
                f"{type(model).__name__}: unsupported operation {_describe(node, model)}"
            )
        current = node
    if not layers:
        raise UserError(f"{type(model).__name__} has no Linear or Conv2d layer to fuse")
    owned = {
        f"{name}.{key}" for layer in layers for name in (layer.name, layer.norm) if name
        for key in model.get_submodule(name).state_dict()
    }  # fmt: skip
    stray = sorted(set(model.state_dict()) - owned)
    if stray:
        raise UserError(f"{type(model).__name__}: {stray[0]} is outside the fusable layers")
    for node in reversed(list(graph.nodes)):  # size queries a replaced flatten used
        if not node.users and (_is_size_query(node) or node.target is operator.getitem):
            graph.erase_node(node)
    return Chain(tuple(layers), graph)


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
