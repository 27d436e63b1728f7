"""Fixtures: small models of every supported kind with random weights and batch-norm statistics,
and a tiny trained ensemble on disk (written through the command line)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from neuron_transplantation.models import ModelSpec, build_model
from torch import nn

torch.set_num_threads(1)  # tiny models on a shared 2-core machine: more threads only spin

SPECS = {
    "mlp": ModelSpec("mlp", (1, 8, 8), 10, width=16, depth=2),
    "lenet": ModelSpec("lenet", (1, 8, 8), 10, width=16),
    "lenet-bn": ModelSpec("lenet-bn", (1, 8, 8), 10, width=16),
    "vgg": ModelSpec("vgg", (1, 8, 8), 10, width=16),
    "vgg-bn": ModelSpec("vgg-bn", (1, 8, 8), 10, width=16),
    "resnet": ModelSpec("resnet", (1, 8, 8), 10, width=16),
    "cnn1d": ModelSpec("cnn1d", (1, 8, 8), 10, width=16),
    "vit": ModelSpec("vit", (1, 8, 8), 10, width=16),
}


def _random_members(spec: ModelSpec, count: int, seed: int = 0) -> list[nn.Module]:
    """``count`` models of ``spec`` with distinct random weights, norm parameters and batch-norm
    statistics."""
    members = []
    for i in range(count):
        torch.manual_seed(seed + i)
        model = build_model(spec)
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.weight.data.normal_()
                module.bias.data.normal_()
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
            if isinstance(module, nn.LayerNorm):
                module.weight.data.normal_()
                module.bias.data.normal_()
        members.append(model.eval())
    return members


class Depthwise(nn.Module):
    """A MobileNet-style block: a depthwise convolution between pointwise ones, a residual."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.norm = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pointwise, self.head = nn.Conv2d(8, 8, 1), nn.Linear(8, 10)

    def forward(self, x):
        x = torch.relu(self.norm(self.stem(x)))
        x = x + self.pointwise(torch.relu(self.depthwise(x)))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _depthwise_members(count: int) -> list[nn.Module]:
    members = []
    for i in range(count):
        torch.manual_seed(i)
        members.append(Depthwise().eval())
        members[-1].norm.running_var.uniform_(0.5, 2.0)
    return members


class Inception(nn.Module):
    """Inception's pattern: branches concatenated along the channels, read by a convolution;
    a second concatenation, flattened into a linear layer (4 features per channel)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1)
        self.b, self.norm = nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6)
        self.c, self.d = nn.Conv2d(10, 8, 1), nn.Linear(12 * 4, 10)

    def forward(self, x):
        a, b = torch.relu(self.a(x)), torch.relu(self.norm(self.b(x)))
        y = torch.relu(self.c(torch.cat([a, b], 1)))
        z = nn.functional.max_pool2d(torch.cat([y, a], 1), 4)
        return self.d(torch.flatten(z, 1))


def _inception_members(count: int) -> list[nn.Module]:
    members = []
    for i in range(count):
        torch.manual_seed(i)
        members.append(Inception().eval())
        members[-1].norm.running_var.uniform_(0.5, 2.0)
    return members


@pytest.fixture
def inception_members():
    """``inception_members(count)``: distinct random ``Inception`` models."""
    return _inception_members


class Grouped(nn.Module):
    """A ResNeXt-style block: a grouped 3×3 convolution (2 groups of 4 channels) between
    pointwise ones, with batch norms, added to the stem's channels."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.reduce = nn.Conv2d(1, 6, 3, padding=1), nn.Conv2d(6, 8, 1)
        self.norm1, self.grouped = nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.norm2, self.expand = nn.BatchNorm2d(8), nn.Conv2d(8, 6, 1)
        self.head = nn.Linear(6, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        y = torch.relu(self.norm1(self.reduce(x)))
        y = self.expand(torch.relu(self.norm2(self.grouped(y))))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x + y, 1), 1))


def _grouped_members(count: int) -> list[nn.Module]:
    members = []
    for i in range(count):
        torch.manual_seed(i)
        members.append(Grouped().eval())
        for norm in (members[-1].norm1, members[-1].norm2):
            norm.running_var.uniform_(0.5, 2.0)
    return members


@pytest.fixture
def grouped_members():
    """``grouped_members(count)``: distinct random ``Grouped`` models."""
    return _grouped_members


@pytest.fixture
def depthwise_members():
    """``depthwise_members(count)``: distinct random ``Depthwise`` models."""
    return _depthwise_members


@pytest.fixture
def random_members():
    """``random_members(spec, count, seed=0)``: distinct random models of ``spec``."""
    return _random_members


@pytest.fixture
def specs() -> dict[str, ModelSpec]:
    """Small specs of every built-in architecture, by name."""
    return SPECS


@pytest.fixture(scope="session")
def ensemble_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """members.pt of 2 small MLPs trained 3 epochs on the digits, through the command line."""
    from neuron_transplantation.cli import main

    folder = tmp_path_factory.mktemp("ensemble")
    args = ["train-ensemble", "--output", str(folder), "--members", "2", "--epochs", "3",
            "--width", "16"]  # fmt: skip
    assert main(args) == 0
    return folder / "members.pt"
