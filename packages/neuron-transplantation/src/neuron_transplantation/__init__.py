"""Neuron Transplantation: fuse an ensemble into one model of the original size by concatenating
the members layer by layer and pruning the wide model back (arXiv:2502.06849).

torch is imported with the first name that needs it, so the command line starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from neuron_transplantation.__about__ import __version__

_HOMES = {
    "FinetuneConfig": "neuron_transplantation.config",
    "FuseConfig": "neuron_transplantation.config",
    "TrainConfig": "neuron_transplantation.config",
    "Split": "neuron_transplantation.data",
    "load_split": "neuron_transplantation.data",
    "Chain": "neuron_transplantation.graph",
    "trace_chain": "neuron_transplantation.graph",
    "ModelSpec": "neuron_transplantation.models",
    "build_model": "neuron_transplantation.models",
    "Transplant": "neuron_transplantation.transplant",
    "concatenate": "neuron_transplantation.transplant",
    "transplant": "neuron_transplantation.transplant",
    "Ensemble": "neuron_transplantation.fusion",
    "Fused": "neuron_transplantation.fusion",
    "fuse": "neuron_transplantation.fusion",
}

__all__ = ["__version__", *sorted(_HOMES)]


def __getattr__(name: str) -> Any:
    """Import an exported name from its module the first time it is used."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'neuron_transplantation' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
