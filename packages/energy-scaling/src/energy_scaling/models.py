"""The networks of a sweep: torchvision's ResNets for images, AFNO for weather."""

from __future__ import annotations

from torch import nn

from energy_scaling.afno import AFNO
from energy_scaling.config import ModelConfig
from energy_scaling.data import Samples

__all__ = ["build_model"]


def build_model(config: ModelConfig, samples: Samples) -> nn.Module:
    """A freshly initialised network for ``samples`` (seed torch before calling).

    ResNets are torchvision's, unchanged but for the number of classes: at low resolution
    (32 x 32) the stem's stride leaves a 1 x 1 map before pooling, which keeps a CPU sweep to
    minutes while the work per sample keeps ResNet's shape.
    """
    if config.name in ("resnet18", "resnet50"):
        from torchvision import models

        return getattr(models, config.name)(weights=None, num_classes=samples.outputs)
    return AFNO(
        samples.in_channels,
        samples.outputs,
        samples.grid,
        patch=config.patch,
        embed_dim=config.embed_dim,
        depth=config.depth,
        blocks=config.blocks,
        sparsity=config.sparsity,
        mlp_ratio=config.mlp_ratio,
    )
