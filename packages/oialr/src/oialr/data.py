"""The recipes' data, split into training, validation and test sets, as torch datasets.

- ``digits``: scikit-learn's 8×8 handwritten digits (1797 images, embedded).
- ``mnist1d``: the MNIST-1D benchmark, generated locally by the ``mnist1d`` package (4000
  training and 1000 test sequences of length 40, its default arguments).
- ``cifar10``: CIFAR-10's python version from a folder holding ``cifar-10-batches-py`` (read
  from disk only, with ``shared_hpc.load_array_pickle``, which rebuilds arrays only), with the
  usual crop-and-flip augmentation.
- ``seattle``: hourly temperatures of Seattle in 2010 (``vega_datasets``), as windows of a week
  that forecast the next day, split in time. The file holds smooth hourly normals, not weather
  (persisting the previous day is off by 0.1 °C), so it shows that OIALR trains a forecaster,
  not forecasting skill.
- ``taylor``: half-hourly electricity demand of England and Wales over 12 weeks in 2000
  (Taylor 2003, from ``pmdarima``), a week in, the next day out: a real series.

Validation data come out of the training data (a seeded random share, or the last stretch of
time for the series); the test data are only used at the end.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from oialr.config import TrainConfig
from shared_hpc import UserError, load_array_pickle

__all__ = ["CIFAR10", "DATASETS", "Split", "load_split"]


@dataclass
class Split:
    """A dataset's three parts and what a model needs to know about them.

    Attributes:
        train: Training samples ``(x, y)``.
        validation: Held out from the training data, for choosing and stopping.
        test: Used once, at the end.
        task: ``"classify"`` (y is a class index) or ``"forecast"`` (y is a vector).
        input_shape: Shape of one x.
        outputs: Classes, or forecast steps.
    """

    train: Dataset
    validation: Dataset
    test: Dataset
    task: str
    input_shape: tuple[int, ...]
    outputs: int


def _hold_out(n: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    cut = n - max(1, round(n * share))
    return np.sort(order[:cut]), np.sort(order[cut:])


def _tensor_split(
    x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, config: TrainConfig
) -> Split:
    """Classification data in memory, standardised with the training part's statistics."""
    train_idx, val_idx = _hold_out(len(x), config.validation, config.seed)
    mean, std = x[train_idx].mean(), x[train_idx].std() + 1e-8

    def part(a: np.ndarray, b: np.ndarray) -> TensorDataset:
        features = torch.tensor((a - mean) / std, dtype=torch.float32)
        return TensorDataset(features, torch.tensor(b, dtype=torch.long))

    return Split(
        part(x[train_idx], y[train_idx]),
        part(x[val_idx], y[val_idx]),
        part(x_test, y_test),
        "classify",
        tuple(x.shape[1:]),
        int(y.max()) + 1,
    )


def _digits(config: TrainConfig) -> Split:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(12345).permutation(len(x))  # a fixed test set for every seed
    test, rest = order[:360], order[360:]
    return _tensor_split(x[rest] / 16.0, y[rest], x[test] / 16.0, y[test], config)


def _mnist1d(config: TrainConfig) -> Split:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise UserError(
            "the mnist1d recipes need the mnist1d package: pip install mnist1d"
        ) from None
    data = make_dataset(get_dataset_args())
    return _tensor_split(data["x"], data["y"], data["x_test"], data["y_test"], config)


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N × 3 × 32 × 32, uint8) and labels of one batch file of CIFAR-10's python
    version."""
    try:
        batch = load_array_pickle(path)  # a planted file must not run code on load
        images = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError) as err:
        raise UserError(f"{path} is not a CIFAR-10 batch: {err}") from None
    if len(images) != len(labels) or labels.min() < 0 or labels.max() > 9:
        raise UserError(f"{path} is not a CIFAR-10 batch: labels do not fit the images")
    return images, labels


class CIFAR10(Dataset):
    """CIFAR-10 images in memory (uint8), normalised and optionally augmented per sample.

    Args:
        images: N × 3 × 32 × 32, uint8.
        labels: N class indices.
        augment: Random crop with 4 pixels of padding and horizontal flip.
    """

    MEAN = (0.4914, 0.4822, 0.4465)
    STD = (0.2470, 0.2435, 0.2616)

    def __init__(self, images: np.ndarray, labels: np.ndarray, augment: bool) -> None:
        self.images = torch.from_numpy(images)
        self.labels = torch.from_numpy(labels)
        self.augment = augment
        self._mean = torch.tensor(self.MEAN).view(3, 1, 1)
        self._std = torch.tensor(self.STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[i].float() / 255.0
        if self.augment:
            padded = torch.nn.functional.pad(image, (4, 4, 4, 4))
            top, left = torch.randint(0, 9, (2,)).tolist()  # torch's seeded generator
            image = padded[:, top : top + 32, left : left + 32]
            if torch.rand(()) < 0.5:
                image = image.flip(2)
        return (image - self._mean) / self._std, self.labels[i]


def _cifar10(config: TrainConfig) -> Split:
    folder = Path(config.data or "data") / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)]
    missing = [n for n in [*names, "test_batch"] if not (folder / n).is_file()]
    if missing:
        raise UserError(
            f"CIFAR-10 not found: {folder} lacks {', '.join(missing)} (unpack CIFAR-10's python "
            "version, cifar-10-python.tar.gz, under a folder and pass that folder with --data)"
        )
    parts = [_cifar_batch(folder / n) for n in names]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    test_images, test_labels = _cifar_batch(folder / "test_batch")
    train_idx, val_idx = _hold_out(len(labels), config.validation, config.seed)
    return Split(
        CIFAR10(images[train_idx], labels[train_idx], augment=True),
        CIFAR10(images[val_idx], labels[val_idx], augment=False),
        CIFAR10(test_images, test_labels, augment=False),
        "classify",
        (3, 32, 32),
        10,
    )


def _windows(series: np.ndarray, window: int, horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every ``window`` of the series and the ``horizon`` after it, one step apart."""
    steps = len(series) - window - horizon + 1
    index = np.arange(steps)[:, None]
    x = series[index + np.arange(window)[None, :]]
    y = series[index + window + np.arange(horizon)[None, :]]
    return torch.tensor(x[..., None], dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


def _series_split(values: np.ndarray, window: int, horizon: int, config: TrainConfig) -> Split:
    """Forecasting windows split in time: training, then validation, then the last 15 % for
    test; standardised with the training part's statistics."""
    n = len(values)
    test_start = int(n * 0.85)
    val_start = int(test_start * (1 - config.validation))
    mean, std = values[:val_start].mean(), values[:val_start].std()
    scaled = (values - mean) / std

    def part(start: int, stop: int) -> TensorDataset:
        # A window's input may reach back into the previous part; its targets never leave it.
        return TensorDataset(*_windows(scaled[max(0, start - window) : stop], window, horizon))

    return Split(
        part(0, val_start),
        part(val_start, test_start),
        part(test_start, n),
        "forecast",
        (window, 1),
        horizon,
    )


def _seattle(config: TrainConfig) -> Split:
    try:
        from vega_datasets import local_data  # the file shipped with the package, never a URL
    except ImportError:
        raise UserError(
            "the seattle recipe needs vega_datasets: pip install vega_datasets"
        ) from None
    temps = local_data.seattle_temps()["temp"].to_numpy(dtype=np.float64)
    return _series_split((temps - 32.0) * 5.0 / 9.0, 168, 24, config)  # °C, a week -> a day


def _taylor(config: TrainConfig) -> Split:
    try:
        from pmdarima.datasets import load_taylor
    except ImportError:
        raise UserError("the taylor recipe needs pmdarima: pip install pmdarima") from None
    demand = np.asarray(load_taylor(), dtype=np.float64)
    return _series_split(demand, 336, 48, config)  # half-hours: a week -> a day


DATASETS = {
    "digits": _digits,
    "mnist1d": _mnist1d,
    "cifar10": _cifar10,
    "seattle": _seattle,
    "taylor": _taylor,
}


def load_split(dataset: str, config: TrainConfig) -> Split:
    """The dataset ``dataset`` split for ``config`` (its seed, validation share and ``data``).

    Raises:
        UserError: Unknown dataset, or its files or package are missing.
    """
    if dataset not in DATASETS:
        raise UserError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[dataset](config)
