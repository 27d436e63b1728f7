"""OIALR: train full rank until each layer's orthogonal bases are stable, then only a small
r × r matrix per layer (orthogonality-informed adaptive low-rank training, arXiv:2401.08505).

torch is imported with the first name that needs it, so the command line starts fast.
"""

from __future__ import annotations

from oialr.__about__ import __version__
from shared_hpc.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
