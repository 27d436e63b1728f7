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
}


def _random_members(spec: ModelSpec, count: int, seed: int = 0) -> list[nn.Module]:
    """``count`` models of ``spec`` with distinct random weights and batch-norm statistics."""
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
        members.append(model.eval())
    return members


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
