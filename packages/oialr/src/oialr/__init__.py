"""OIALR: train full rank until each layer's orthogonal bases are stable, then only a small
r × r matrix per layer (orthogonality-informed adaptive low-rank training, arXiv:2401.08505).

torch is imported with the first name that needs it, so the command line starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from oialr.__about__ import __version__

_HOMES = {
    "ModelConfig": "oialr.config",
    "ScheduleConfig": "oialr.config",
    "TrainConfig": "oialr.config",
    "Comparison": "oialr.comparison",
    "compare": "oialr.comparison",
    "RECIPES": "oialr.recipes",
    "Recipe": "oialr.recipes",
    "get_recipe": "oialr.recipes",
    "EpochRecord": "oialr.training",
    "TrainResult": "oialr.training",
    "train": "oialr.training",
    "LowRankConv": "oialr.layers",
    "LowRankLayer": "oialr.layers",
    "LowRankLinear": "oialr.layers",
    "OIALR": "oialr.schedule",
    "LayerEvent": "oialr.schedule",
    "count_parameters": "oialr.schedule",
    "eligible_layers": "oialr.schedule",
}

__all__ = ["__version__", *sorted(_HOMES)]


def __getattr__(name: str) -> Any:
    """Import an exported name from its module the first time it is used."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'oialr' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
