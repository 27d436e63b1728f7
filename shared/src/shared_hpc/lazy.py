"""Package namespaces that import their names on first use, so ``import package`` stays cheap.

A package lists ``name -> module`` and gets the module-level ``__getattr__`` and ``__dir__`` of
PEP 562: torch, mpi4py or codecarbon load only when a name that needs them is used, and a
command line's ``--help`` or a one-line refusal of bad input does not wait for them.

Example (in a package's ``__init__.py``):
    >>> __getattr__, __dir__ = lazy_exports(__name__, {"train": "mypkg.training"})  # doctest: +SKIP

A name must not be the name of a submodule of the package too: once the submodule is imported,
Python sets the package attribute to the module, and the lazy function is never reached.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, homes: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for the package ``package``.

    Args:
        package: The package's ``__name__``.
        homes: Exported name -> the module that defines it.
    """
    module = sys.modules[package]
    clashes = sorted(name for name in homes if homes[name] == f"{package}.{name}")
    if clashes:
        raise ValueError(f"{package}: exported names equal to their submodule: {clashes}")

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(module), *homes})

    return __getattr__, __dir__
