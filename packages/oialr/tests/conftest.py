"""Fixtures: a tiny CIFAR-10 folder in the real format (python pickles of arrays)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest


def write_cifar(root: Path, per_batch: int = 40, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py`` with five training batches and a test batch, as
    CIFAR-10's python version lays them out (dicts with ``data`` and ``labels``)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        labels = rng.integers(0, 10, per_batch)
        # Each class gets its own colour, so that a network can learn something.
        data = rng.integers(0, 64, (per_batch, 3, 32, 32)).astype(np.uint8)
        data[:, 0] += (labels * 19).astype(np.uint8)[:, None, None]
        batch = {
            "batch_label": name,
            "labels": labels.tolist(),
            "data": data.reshape(per_batch, -1),
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return root


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_cifar(tmp_path_factory.mktemp("cifar"))


@pytest.fixture
def make_cifar():
    """``make_cifar(root, seed)``: another CIFAR-10 folder in the real format."""
    return write_cifar
