"""Neuron Transplantation: fuse an ensemble into one model of the original size by concatenating
the members layer by layer and pruning the wide model back (arXiv:2502.06849).

torch is imported with the first name that needs it, so the command line starts fast.
"""

from __future__ import annotations

from neuron_transplantation.__about__ import __version__
from shared_hpc.lazy import lazy_exports

_HOMES = {
    "FinetuneConfig": "neuron_transplantation.config",
    "FuseConfig": "neuron_transplantation.config",
    "TrainConfig": "neuron_transplantation.config",
    "Split": "neuron_transplantation.data",
    "load_split": "neuron_transplantation.data",
    "Network": "neuron_transplantation.graph",
    "trace_network": "neuron_transplantation.graph",
    "ModelSpec": "neuron_transplantation.models",
    "build_model": "neuron_transplantation.models",
    "Transplant": "neuron_transplantation.transplant",
    "concatenate": "neuron_transplantation.transplant",
    "Ensemble": "neuron_transplantation.fusion",
    "Fused": "neuron_transplantation.fusion",
    "fuse": "neuron_transplantation.fusion",
}

__all__ = ["__version__", *sorted(_HOMES)]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
