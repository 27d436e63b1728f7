"""One entry point for every way of turning an ensemble into one model, and the ensemble itself.

Methods: ``nt`` (Neuron Transplantation, in any of its variants), ``ot`` (optimal-transport
fusion), ``wm`` (weight matching), ``avg`` (plain weight averaging). All check first that the
members share one architecture and that fusion supports it, so that a bad ensemble fails in one
line before any work.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from neuron_transplantation.alignment import average_weights, ot_fuse, weight_matching_fuse
from neuron_transplantation.config import METHODS, VARIANTS
from neuron_transplantation.graph import same_architecture, trace_network
from neuron_transplantation.transplant import fuse_transplant
from shared_hpc import UserError

__all__ = ["Ensemble", "Fused", "fuse"]


class Ensemble(nn.Module):
    """The members' outputs (logits) averaged: the reference a fused model approximates.

    Args:
        members: The models.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x):
        return torch.stack([m(x) for m in self.members]).mean(0)


@dataclass
class Fused:
    """A fused model and how it was made.

    Attributes:
        model: The fused model, of the members' class and shapes.
        method: One of ``METHODS``.
        variant: The NT variant (``one-shot`` for the other methods).
        seconds: Wall time of the fusion (tracing and checks included).
    """

    model: nn.Module
    method: str
    variant: str
    seconds: float


def fuse(
    members: Sequence[nn.Module],
    example: torch.Tensor,
    method: str = "nt",
    variant: str = "one-shot",
    seed: int = 0,
) -> Fused:
    """Fuse ``members`` into one model of their size.

    Args:
        members: Two or more trained models of one architecture (left unchanged).
        example: A batch of inputs, to trace the layer order and shapes.
        method: One of ``METHODS``.
        variant: For ``nt``: ``one-shot``, ``iterative`` or ``hierarchical``.
        seed: For ``wm``: the order in which layers are visited.

    Raises:
        UserError: Unknown method or variant, members of different architectures, or a layer
            fusion does not support.
    """
    if method not in METHODS:
        raise UserError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if variant not in VARIANTS:
        raise UserError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if method != "nt" and variant != "one-shot":
        raise UserError(f"variant {variant!r} is a variant of nt; {method} fuses one-shot only")
    began = time.perf_counter()
    with torch.no_grad():
        if method == "nt":
            model = fuse_transplant(members, example, variant)
        else:
            same_architecture(list(members))
            network = trace_network(members[0], example)
            if method == "ot":
                model = ot_fuse(members, network)
            elif method == "wm":
                model = weight_matching_fuse(members, network, seed)
            else:
                model = average_weights(members)
    return Fused(model, method, variant, time.perf_counter() - began)
