"""The architectures members are trained with, rebuilt by name from a checkpoint's ``ModelSpec``.

- ``mlp``: flatten, then ``depth`` hidden layers of ``width`` ReLU units, then the classes.
- ``lenet``: LeNet-style, two 3×3 convolutions (``width/4`` and ``width/2`` channels) with ReLU
  and 2×2 max pooling, a hidden linear layer of ``width`` units, then the classes.
- ``lenet-bn``: the same with a batch norm after every convolution and the hidden linear layer.
- ``vgg`` / ``vgg-bn``: VGG11's layout (8 convolutions in 5 stages, channels 1:2:4:8:8), scaled so
  the last stage has ``width`` channels, 2×2 max pooling after a stage while the image is larger
  than 1×1, global average pooling, a hidden linear layer of ``width`` units; ``-bn`` puts a
  batch norm after every convolution.
- ``resnet``: ResNet18's layout (a 3×3 stem, 4 stages of 2 basic blocks, channels 1:2:4:8 up to
  ``width``, stride 2 and a 1×1 projection shortcut with batch norm where a stage begins), global
  average pooling and one linear layer.
- ``cnn1d``: for sequences (MNIST-1D): three ``Conv1d`` (``width/2`` channels, kernel 5, stride 2)
  with ReLU, then a linear layer.
- ``vit``: a small Vision Transformer: patches of 2×2 pixels (4×4 from 16 pixels on) embedded to
  ``width`` channels, a class token and learnt position embeddings, ``depth`` pre-norm blocks of
  4-head self-attention and an MLP of ``2 width`` GELU units, a final layer norm, a linear head on
  the class token.

Fusion itself takes any model ``trace_network`` accepts (torchvision's ``resnet18`` included);
these are the ones the commands train.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from neuron_transplantation.config import ARCHITECTURES
from shared_hpc import UserError

__all__ = ["MLP", "VGG", "CNN1d", "LeNet", "ModelSpec", "ResNet", "ViT", "build_model"]


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


VGG11 = (1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M")
"""VGG11's stages in units of its first width (64 there): numbers are convolutions, M pools."""


class VGG(nn.Module):
    """A VGG11-style network.

    Args:
        channels: Input channels.
        size: Input height and width.
        classes: Output classes.
        width: Channels of the last stage and units of the hidden linear layer.
        batch_norm: A batch norm after every convolution.
    """

    def __init__(
        self, channels: int, size: int, classes: int, width: int = 64, batch_norm: bool = False
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for step in VGG11:
            if step == "M":
                if size > 1:
                    layers.append(nn.MaxPool2d(2))
                    size //= 2
                continue
            out = max(1, width * step // 8)
            layers.append(nn.Conv2d(channels, out, 3, padding=1))
            layers += [nn.BatchNorm2d(out)] if batch_norm else []
            layers.append(nn.ReLU())
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(channels, width), nn.ReLU(), nn.Dropout(0.1), nn.Linear(width, classes)
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3×3 convolutions with batch norm, added to the shortcut."""

    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU()
        self.shortcut = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """A ResNet18-style network for small images (3×3 stem, no initial max pooling).

    Args:
        channels: Input channels.
        classes: Output classes.
        width: Channels of the last stage (the stages have width/8, /4, /2, 1).
    """

    def __init__(self, channels: int, classes: int, width: int = 64) -> None:
        super().__init__()
        widths = [max(1, width * f // 8) for f in (1, 2, 4, 8)]
        self.stem = nn.Sequential(
            nn.Conv2d(channels, widths[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        )
        blocks: list[nn.Module] = []
        inputs = widths[0]
        for stage, outputs in enumerate(widths):
            stride = 1 if stage == 0 else 2
            blocks += [BasicBlock(inputs, outputs, stride), BasicBlock(outputs, outputs, 1)]
            inputs = outputs
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inputs, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


class CNN1d(nn.Module):
    """A small 1-D convolutional network for sequences (MNIST-1D).

    Args:
        length: Sequence length (the input is (batch, length) or (batch, 1, length)).
        classes: Output classes.
        width: Channels are ``width/2``; the linear layer sees all positions.
    """

    def __init__(self, length: int, classes: int, width: int = 64) -> None:
        super().__init__()
        c = max(1, width // 2)
        self.convs = nn.Sequential(
            nn.Conv1d(1, c, 5, 2, 2), nn.ReLU(),
            nn.Conv1d(c, c, 5, 2, 2), nn.ReLU(),
            nn.Conv1d(c, c, 5, 2, 2), nn.ReLU(),
        )  # fmt: skip
        for _ in range(3):
            length = (length - 1) // 2 + 1
        self.fc = nn.Linear(c * length, classes)

    def forward(self, x):
        x = x.reshape(x.shape[0], 1, -1)
        return self.fc(torch.flatten(self.convs(x), 1))


class Attention(nn.Module):
    """Multi-head self-attention with separate query, key and value projections.

    Heads are split off the channel axis with ``reshape(..., -1, head_size)``: the number of heads
    follows from the width, so the same code runs a model widened by fusion (K times the heads,
    each member's heads its own). ``nn.MultiheadAttention`` packs the three projections into one
    weight and fixes the number of heads, which fusion cannot follow through ``torch.fx``.

    Args:
        width: Channels of the tokens.
        heads: Attention heads (dividing ``width``).
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.head_size = width // heads
        self.query, self.key, self.value = (nn.Linear(width, width) for _ in range(3))
        self.out = nn.Linear(width, width)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], x.shape[1], -1, self.head_size).transpose(1, 2)

    def forward(self, x):
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)
        return self.out(y.reshape(x.shape[0], x.shape[1], -1))


class Block(nn.Module):
    """A pre-norm Transformer block: attention and an MLP, each added to the token stream."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.attention = nn.LayerNorm(width), Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width)
        )

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """A small Vision Transformer (Dosovitskiy et al., 2021) for small images.

    Args:
        channels: Input channels.
        size: Input height and width.
        classes: Output classes.
        width: Channels of the tokens (divisible by ``heads``).
        depth: Transformer blocks.
        heads: Attention heads per block.
        patch: Side of the square patches (dividing ``size``).
    """

    def __init__(
        self,
        channels: int,
        size: int,
        classes: int,
        width: int = 64,
        depth: int = 2,
        heads: int = 4,
        patch: int = 2,
    ) -> None:
        super().__init__()
        self.patches = nn.Conv2d(channels, width, patch, patch)
        self.class_token = nn.Parameter(0.02 * torch.randn(1, 1, width))
        self.position = nn.Parameter(0.02 * torch.randn(1, (size // patch) ** 2 + 1, width))
        self.blocks = nn.Sequential(*(Block(width, heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        x = self.patches(x).flatten(2).transpose(1, 2)
        token = self.class_token.expand(x.shape[0], -1, -1)
        x = torch.cat([token, x], 1) + self.position
        return self.head(self.norm(self.blocks(x))[:, 0])


@dataclass(frozen=True)
class ModelSpec:
    """Enough to rebuild a member: its architecture and sizes.

    Attributes:
        arch: One of ``ARCHITECTURES``.
        input_shape: Shape of one input sample.
        classes: Output classes.
        width: Hidden width (see the architecture).
        depth: Hidden layers of the ``mlp``, blocks of the ``vit``.
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
            by 4, a ViT for images its patches do not tile or a width its heads do not divide.
    """
    if spec.arch == "mlp":
        inputs = 1
        for n in spec.input_shape:
            inputs *= n
        return MLP(inputs, spec.classes, spec.width, spec.depth)
    shape = spec.input_shape
    if spec.arch == "cnn1d":
        length = 1
        for n in shape:
            length *= n
        return CNN1d(length, spec.classes, spec.width)
    if len(shape) != 3 or shape[1] != shape[2]:
        raise UserError(f"{spec.arch} needs square images, got input shape {shape}")
    if spec.arch in ("vgg", "vgg-bn"):
        return VGG(shape[0], shape[1], spec.classes, spec.width, spec.arch == "vgg-bn")
    if spec.arch == "resnet":
        return ResNet(shape[0], spec.classes, spec.width)
    if spec.arch == "vit":
        patch = 2 if shape[1] < 16 else 4
        if shape[1] % patch or spec.width % 4:
            raise UserError(
                f"vit needs an image side divisible by {patch} and a width divisible by its 4 "
                f"heads, got {shape} and width {spec.width}"
            )
        return ViT(shape[0], shape[1], spec.classes, spec.width, spec.depth, 4, patch)
    if shape[1] % 4:
        raise UserError(f"{spec.arch} needs an image side divisible by 4, got {shape}")
    return LeNet(shape[0], shape[1], spec.classes, spec.width, spec.arch == "lenet-bn")
