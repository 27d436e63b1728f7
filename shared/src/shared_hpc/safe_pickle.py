"""Data sets shipped as pickles (CIFAR's "python version"), loaded without running code.

Unpickling may call any importable function, so a file planted in a data folder would run code
in the training job. ``load_array_pickle`` rebuilds only what such data sets hold (dicts,
lists, strings, numbers and NumPy arrays) and refuses every other class before it is called.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

__all__ = ["load_array_pickle"]

_ARRAY_CLASSES = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.numeric", "_frombuffer"),  # arrays in protocol-5 pickles
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    }
)


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ARRAY_CLASSES:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing {module}.{name}: only NumPy arrays and plain containers are loaded"
        )


def load_array_pickle(path: str | Path, encoding: str = "latin1") -> Any:
    """The content of a pickle that holds only containers, strings, numbers and NumPy arrays.

    Args:
        path: The pickle file.
        encoding: How Python 2 strings are decoded (``latin1`` keeps CIFAR's bytes intact).

    Raises:
        OSError: The file cannot be read.
        pickle.UnpicklingError: It needs any other class (nothing of it was called), or is not
            a pickle.
        EOFError: It ends early.
    """
    with open(path, "rb") as handle:
        return _ArraysOnly(handle, encoding=encoding).load()
