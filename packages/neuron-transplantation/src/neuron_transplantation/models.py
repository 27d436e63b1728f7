"""The architectures members are trained with, rebuilt by name from a checkpoint's ``ModelSpec``.

- ``mlp``: flatten, then ``depth`` hidden layers of ``width`` ReLU units, then the classes.
- ``lenet``: LeNet-style, two 3×3 convolutions (``width/4`` and ``width/2`` channels) with ReLU
  and 2×2 max pooling, a hidden linear layer of ``width`` units, then the classes.
- ``lenet-bn``: the same with a batch norm after every convolution and the hidden linear layer.

Fusion itself takes any model ``trace_chain`` accepts; these are the ones the commands train.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

from torch import nn

from neuron_transplantation.config import ARCHITECTURES
from shared_hpc import UserError

__all__ = ["MLP", "LeNet", "ModelSpec", "build_model"]


class MLP(nn.Module):
    """A multilayer perceptron.

    Args:
        inputs: Input features (the input is flattened first).
        classes: Output classes.
        width: Units per hidden layer.
        depth: Hidden layers.
    """

    def __init__(self, inputs: int, classes: int, width: int = 64, depth: int = 2) -> None:
        super().__init__()
        sizes = [inputs] + [width] * depth
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class LeNet(nn.Module):
    """A LeNet-style network for small images.

    Args:
        channels: Input channels.
        size: Input height and width (divisible by 4).
        classes: Output classes.
        width: Units of the hidden linear layer; the convolutions get ``width/4`` and
            ``width/2`` channels.
        batch_norm: A batch norm after every convolution and the hidden linear layer.
    """

    def __init__(
        self, channels: int, size: int, classes: int, width: int = 64, batch_norm: bool = False
    ) -> None:
        super().__init__()
        c1, c2 = max(1, width // 4), max(1, width // 2)

        def norm(n: int, two_d: bool) -> nn.Module:
            if not batch_norm:
                return nn.Identity()
            return nn.BatchNorm2d(n) if two_d else nn.BatchNorm1d(n)

        self.conv1, self.norm1 = nn.Conv2d(channels, c1, 3, padding=1), norm(c1, True)
        self.conv2, self.norm2 = nn.Conv2d(c1, c2, 3, padding=1), norm(c2, True)
        self.pool = nn.MaxPool2d(2)
        self.fc1, self.norm3 = nn.Linear(c2 * (size // 4) ** 2, width), norm(width, False)
        self.fc2 = nn.Linear(width, classes)
        self.act = nn.ReLU()

    def forward(self, x):
        x = self.pool(self.act(self.norm1(self.conv1(x))))
        x = self.pool(self.act(self.norm2(self.conv2(x))))
        x = self.act(self.norm3(self.fc1(x.view(x.size(0), -1))))
        return self.fc2(x)


@dataclass(frozen=True)
class ModelSpec:
    """Enough to rebuild a member: its architecture and sizes.

    Attributes:
        arch: One of ``ARCHITECTURES``.
        input_shape: Shape of one input sample.
        classes: Output classes.
        width: Hidden width (see the architecture).
        depth: Hidden layers of the ``mlp``.
    """

    arch: str
    input_shape: tuple[int, ...]
    classes: int
    width: int = 64
    depth: int = 2

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise UserError(f"unknown arch {self.arch!r}; choose one of {', '.join(ARCHITECTURES)}")
        if self.width < 4 or self.depth < 1 or self.classes < 2:
            raise UserError("a model needs width >= 4, depth >= 1 and at least 2 classes")
        object.__setattr__(self, "input_shape", tuple(int(n) for n in self.input_shape))

    def to_dict(self) -> dict[str, object]:
        """JSON-ready fields (for checkpoints and run records)."""
        return {**asdict(self), "input_shape": list(self.input_shape)}


def build_model(spec: ModelSpec) -> nn.Module:
    """A freshly initialised model of ``spec`` (seed torch before calling for reproducibility).

    Raises:
        UserError: A LeNet asked for inputs that are not square images with a side divisible
            by 4.
    """
    if spec.arch == "mlp":
        inputs = 1
        for n in spec.input_shape:
            inputs *= n
        return MLP(inputs, spec.classes, spec.width, spec.depth)
    shape = spec.input_shape
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] % 4:
        raise UserError(f"{spec.arch} needs square images with a side divisible by 4, got {shape}")
    return LeNet(shape[0], shape[1], spec.classes, spec.width, spec.arch == "lenet-bn")
