"""The recipes' networks: an MLP, a 1-D CNN, ResNet18 for 32×32 images, a small ViT, a
Transformer forecaster. Attention uses separate ``Linear`` projections for queries, keys,
values and output, so that OIALR can make each of them low rank (``nn.MultiheadAttention``
keeps its input projection as one raw parameter that no layer replacement reaches).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from oialr.config import ModelConfig

__all__ = ["Block", "Forecaster", "ViT", "cnn1d", "mlp", "resnet18"]


def mlp(inputs: int, outputs: int, config: ModelConfig) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` units with ReLU."""
    layers: list[nn.Module] = [nn.Flatten()]
    size = inputs
    for _ in range(config.depth):
        layers += [nn.Linear(size, config.width), nn.ReLU(), nn.Dropout(config.dropout)]
        size = config.width
    layers.append(nn.Linear(size, outputs))
    return nn.Sequential(*layers)


def cnn1d(length: int, outputs: int, config: ModelConfig) -> nn.Sequential:
    """The MNIST-1D paper's CNN with ``width`` channels: three strided convolutions (kernel 5,
    3, 3; stride 2) with ReLU, then a linear read-out."""
    layers: list[nn.Module] = []
    channels = 1
    for kernel in (5, 3, 3):
        layers += [nn.Conv1d(channels, config.width, kernel, stride=2, padding=1), nn.ReLU()]
        channels = config.width
        length = (length + 2 - kernel) // 2 + 1
    return nn.Sequential(
        nn.Unflatten(1, (1, -1)), *layers, nn.Flatten(), nn.Linear(channels * length, outputs)
    )


def resnet18(classes: int) -> nn.Module:
    """torchvision's ResNet18 with the usual stem for 32×32 images (3×3, stride 1, no pool)."""
    from torchvision.models import resnet18 as torchvision_resnet18

    model = torchvision_resnet18(num_classes=classes)
    model.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


class Block(nn.Module):
    """Pre-norm Transformer block: self-attention, then an MLP of four times the width."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.q, self.k, self.v, self.proj = (nn.Linear(dim, dim) for _ in range(4))
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.norm1(x)

        def heads(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, d // self.heads).transpose(1, 2)

        attended = F.scaled_dot_product_attention(
            heads(self.q(h)),
            heads(self.k(h)),
            heads(self.v(h)),
            dropout_p=self.dropout if self.training else 0.0,
        )
        x = x + self.proj(attended.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """A small Vision Transformer: patches, a class token, ``depth`` blocks, a linear head."""

    def __init__(self, image_size: int, channels: int, classes: int, config: ModelConfig) -> None:
        super().__init__()
        if image_size % config.patch:
            raise ValueError(f"image size {image_size} is not a multiple of the patch")
        tokens = (image_size // config.patch) ** 2
        self.embed = nn.Conv2d(channels, config.width, config.patch, stride=config.patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, config.width))
        self.position = nn.Parameter(torch.randn(1, tokens + 1, config.width) * 0.02)
        self.blocks = nn.Sequential(
            *(Block(config.width, config.heads, config.dropout) for _ in range(config.depth))
        )
        self.norm = nn.LayerNorm(config.width)
        self.head = nn.Linear(config.width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.position
        return self.head(self.norm(self.blocks(x))[:, 0])


class Forecaster(nn.Module):
    """Transformer encoder over the input window cut into patches of ``patch`` steps (one
    token per patch, as in PatchTST), read out into the whole horizon at once."""

    def __init__(self, window: int, horizon: int, features: int, config: ModelConfig) -> None:
        super().__init__()
        if window % config.patch:
            raise ValueError(f"window {window} is not a multiple of the patch {config.patch}")
        self.patch = config.patch
        tokens = window // config.patch
        self.embed = nn.Linear(config.patch * features, config.width)
        self.position = nn.Parameter(torch.randn(1, tokens, config.width) * 0.02)
        self.blocks = nn.Sequential(
            *(Block(config.width, config.heads, config.dropout) for _ in range(config.depth))
        )
        self.norm = nn.LayerNorm(config.width)
        self.head = nn.Linear(tokens * config.width, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, f = x.shape
        tokens = x.reshape(b, t // self.patch, self.patch * f)
        h = self.norm(self.blocks(self.embed(tokens) + self.position))
        return self.head(h.flatten(1))
