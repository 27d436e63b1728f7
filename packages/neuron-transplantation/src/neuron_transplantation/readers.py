"""Readers of the image data sets' official files and of tabular CSV, from a local folder.

Nothing is downloaded: the files must already be where ``source`` points (clusters' compute nodes
usually have no internet). Each reader accepts the files as the data sets distribute them:

- MNIST: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
  ``t10k-labels-idx1-ubyte`` (IDX format, gzipped or not), in ``source`` or ``source/MNIST/raw``
  (torchvision's layout).
- CIFAR-10 / CIFAR-100: the "python version" (``cifar-10-batches-py/data_batch_1..5`` and
  ``test_batch``; ``cifar-100-python/train`` and ``test``), in ``source`` or that subfolder. These
  are Python pickles, read with ``shared_hpc.load_array_pickle``, which only rebuilds dicts,
  lists, strings, numbers and NumPy arrays, so a crafted file cannot run code.
- SVHN: ``train_32x32.mat`` and ``test_32x32.mat`` (MATLAB, read with SciPy; label 10 is digit 0).
- CSV: one file with a header, numeric feature columns and a label column (any values; classes
  are its sorted distinct values).

torchvision's dataset classes read the same formats but check the MD5 sums of the complete
official files (CIFAR, SVHN) and expect their download layout, so they cannot be tested on small
files; these readers parse the formats themselves and are tested on small files written in them.
"""

from __future__ import annotations

import csv
import gzip
import pickle
from pathlib import Path

import numpy as np

from shared_hpc import UserError, load_array_pickle

__all__ = ["IMAGE_SETS", "read_csv", "read_images"]

IMAGE_SETS = ("mnist", "cifar10", "cifar100", "svhn")

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Training images and labels, test images and labels."""


def _find(source: Path, names: list[str], folders: tuple[str, ...]) -> Path:
    """The first of ``names`` in ``source`` or one of its ``folders``."""
    for folder in (source, *(source / f for f in folders)):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    raise UserError(f"{names[0]} not found in {source} (nothing is downloaded)")


def _idx(path: Path) -> np.ndarray:
    """An array stored in the IDX format (big-endian header: zero, zero, type, dimensions)."""
    data = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise UserError(f"{path} is not an IDX file of unsigned bytes")
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise UserError(f"{path} holds {body.size} bytes, its header says {shape}")
    return body.reshape(shape)


def _mnist(source: Path) -> Arrays:
    def part(name: str) -> np.ndarray:
        return _idx(_find(source, [name, name + ".gz"], ("MNIST/raw", "raw")))

    x, y = part("train-images-idx3-ubyte"), part("train-labels-idx1-ubyte")
    x_test, y_test = part("t10k-images-idx3-ubyte"), part("t10k-labels-idx1-ubyte")
    return x[:, None], y, x_test[:, None], y_test


def _cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = load_array_pickle(path)
        x = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(batch[label_key], dtype=np.int64)
        if np.asarray(batch["data"]).dtype == object:
            raise TypeError("object arrays are not image data")
    except (OSError, pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError) as err:
        raise UserError(f"{path} is not a CIFAR batch: {err}") from None
    if len(x) != len(y):
        raise UserError(f"{path} has {len(x)} images and {len(y)} labels")
    return x, y


def _cifar(source: Path, classes: int) -> Arrays:
    if classes == 10:
        folders, train, key = (
            ("cifar-10-batches-py",),
            [f"data_batch_{i}" for i in range(1, 6)],
            "labels",
        )
    else:
        folders, train, key = ("cifar-100-python",), ["train"], "fine_labels"
    parts = [_cifar_batch(_find(source, [name], folders), key) for name in train]
    x_test, y_test = _cifar_batch(_find(source, ["test_batch", "test"], folders), key)
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        x_test,
        y_test,
    )


def _svhn(source: Path) -> Arrays:
    from scipy.io import loadmat

    def part(name: str) -> tuple[np.ndarray, np.ndarray]:
        path = _find(source, [name], ("svhn",))
        try:
            mat = loadmat(path)
            x, y = mat["X"], mat["y"].reshape(-1).astype(np.int64)
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f"{path} is not an SVHN .mat file: {err}") from None
        return np.transpose(x, (3, 2, 0, 1)), np.where(y == 10, 0, y)

    return *part("train_32x32.mat"), *part("test_32x32.mat")


def read_images(name: str, source: str | Path) -> Arrays:
    """The training and test images (N, C, H, W, uint8) and labels of data set ``name``.

    Raises:
        UserError: Unknown name, a missing file, or a file not in the expected format.
    """
    source = Path(source)
    if not source.is_dir():
        raise UserError(f"{name} needs --data to name a folder with its files; {source} is not one")
    if name == "mnist":
        return _mnist(source)
    if name in ("cifar10", "cifar100"):
        return _cifar(source, 10 if name == "cifar10" else 100)
    if name == "svhn":
        return _svhn(source)
    raise UserError(f"unknown image data set {name!r}; choose one of {', '.join(IMAGE_SETS)}")


def read_csv(path: str | Path, label: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Numeric features, class indices and class names of a CSV file with a ``label`` column.

    Raises:
        UserError: Missing file or column, a non-numeric feature, fewer than two classes.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"csv needs --data to name a CSV file; {path} is not one")
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0] if rows else []
    if len(rows) < 2 or label not in header:
        raise UserError(f"{path} has no column {label!r} (columns: {', '.join(header[:8])})")
    ragged = next((i for i, row in enumerate(rows) if len(row) != len(header)), None)
    if ragged is not None:
        raise UserError(
            f"{path}: line {ragged + 1} has {len(rows[ragged])} fields, not {len(header)}"
        )
    column = rows[0].index(label)
    names = sorted({row[column] for row in rows[1:]})
    if len(names) < 2:
        raise UserError(f"{path}: column {label!r} holds fewer than two classes")
    try:
        x = np.array(
            [[float(v) for i, v in enumerate(row) if i != column] for row in rows[1:]],
            dtype=np.float64,
        )
    except ValueError as err:
        raise UserError(f"{path}: a feature is not a number ({err})") from None
    index = {n: i for i, n in enumerate(names)}
    return x, np.array([index[row[column]] for row in rows[1:]], dtype=np.int64), names
