"""The data members are trained on, split into training, validation and test sets.

- ``digits``: scikit-learn's 8×8 handwritten digits (1797 images, embedded), as 1×8×8 images;
  a fixed 360 of them are the test set for every seed.
- ``mnist1d``: MNIST-1D, generated locally by the ``mnist1d`` package (4000 training and 1000
  test sequences of length 40, its default arguments), standardised with the training part's
  statistics.
- ``mnist``, ``cifar10``, ``cifar100``, ``svhn``: the official files in a local folder
  (``readers``), their own training and test parts, pixels standardised with the training
  part's mean and standard deviation.
- ``csv``: a CSV file with a label column; a fixed 20 % of its rows (by a fixed seed) are the
  test set, the features standardised per column with the training part's statistics.

Validation comes out of the training data (a seeded share); choices such as the best member are
made on it. The test set is only evaluated for the final report — the authors' code validated on
the test loader, which reports a test accuracy that was also used for selection.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import TensorDataset

from neuron_transplantation.config import DATASETS
from neuron_transplantation.readers import IMAGE_SETS, read_csv, read_images
from shared_hpc import UserError

__all__ = ["Split", "load_split"]

DIGITS_TEST = 360


@dataclass
class Split:
    """A dataset's three parts.

    Attributes:
        name: The dataset's name.
        train: Training samples ``(x, y)``.
        validation: Held out from the training data, for choosing and stopping.
        test: Used once, for the final report.
        input_shape: Shape of one x.
        classes: Number of classes.
        digest: SHA-256 of all arrays, so that a checkpoint can tell whether it meets the data
            it was trained on.
    """

    name: str
    train: TensorDataset
    validation: TensorDataset
    test: TensorDataset
    input_shape: tuple[int, ...]
    classes: int
    digest: str


def _split(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    validation: float,
    seed: int,
    standardise: bool,
) -> Split:
    order = np.random.default_rng(seed).permutation(len(x))
    cut = len(x) - max(1, round(len(x) * validation))
    train_idx, val_idx = np.sort(order[:cut]), np.sort(order[cut:])
    mean, std = (x[train_idx].mean(), x[train_idx].std() + 1e-8) if standardise else (0.0, 1.0)
    digest = hashlib.sha256()

    def part(a: np.ndarray, b: np.ndarray) -> TensorDataset:
        features = np.ascontiguousarray((a - mean) / std, dtype=np.float32)
        labels = np.ascontiguousarray(b, dtype=np.int64)
        digest.update(features.tobytes())
        digest.update(labels.tobytes())
        return TensorDataset(torch.from_numpy(features), torch.from_numpy(labels))

    parts = part(x[train_idx], y[train_idx]), part(x[val_idx], y[val_idx]), part(x_test, y_test)
    return Split(name, *parts, tuple(x.shape[1:]), int(y.max()) + 1, digest.hexdigest())


def _held_out(count: int, share: float) -> tuple[np.ndarray, np.ndarray]:
    """A fixed test part of ``share`` of ``count`` rows (the same for every seed), and the rest."""
    order = np.random.default_rng(12345).permutation(count)
    cut = max(1, round(count * share))
    return np.sort(order[cut:]), np.sort(order[:cut])


def load_split(
    dataset: str, validation: float = 0.2, seed: int = 0, source: str = "", label: str = "label"
) -> Split:
    """The dataset ``dataset`` with ``validation`` of its training part held out by ``seed``.

    Args:
        dataset: One of ``DATASETS``.
        validation: Share of the training part held out for validation.
        seed: Seed of that split.
        source: Folder of an image data set's files, or the CSV file.
        label: The CSV's label column.

    Raises:
        UserError: Unknown dataset, missing or malformed files, or the mnist1d package missing.
    """
    if dataset == "digits":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x = x.reshape(-1, 1, 8, 8) / 16.0
        order = np.random.default_rng(12345).permutation(len(x))  # one test set for all seeds
        test, rest = order[:DIGITS_TEST], order[DIGITS_TEST:]
        return _split(dataset, x[rest], y[rest], x[test], y[test], validation, seed, False)
    if dataset == "mnist1d":
        try:
            from mnist1d.data import get_dataset_args, make_dataset
        except ImportError:
            raise UserError(
                "mnist1d needs the mnist1d package: pip install neuron-transplantation[mnist1d]"
            ) from None
        data = make_dataset(get_dataset_args())
        return _split(
            dataset, data["x"], data["y"], data["x_test"], data["y_test"], validation, seed, True
        )
    if dataset in IMAGE_SETS:
        x, y, x_test, y_test = read_images(dataset, source)
        scale = np.float32(1 / 255)
        return _split(dataset, x * scale, y, x_test * scale, y_test, validation, seed, True)
    if dataset == "csv":
        x, y, _ = read_csv(source, label)
        rest, test = _held_out(len(x), 0.2)
        mean, std = x[rest].mean(0), x[rest].std(0) + 1e-8
        x = (x - mean) / std
        return _split(dataset, x[rest], y[rest], x[test], y[test], validation, seed, False)
    raise UserError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
