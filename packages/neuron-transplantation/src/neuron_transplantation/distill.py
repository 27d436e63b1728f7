"""Knowledge distillation: the baseline that trains one model of the members' size to imitate
the ensemble instead of fusing its weights (Hinton et al., 2015).

``compare`` starts the student from the best member (by validation accuracy): it costs nothing,
since the members exist, and it is the strongest start a student of that size has. It is trained
with the fine-tuning settings (same epochs, optimiser and batches as every fused model) on
``alpha × T² × KL(ensemble ‖ student)`` at temperature ``T`` plus ``(1 − alpha) ×`` cross-entropy
with the labels. The ensemble's logits are computed once on the training data (in eval mode and
without augmentation they do not change between epochs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from neuron_transplantation.config import FinetuneConfig
from neuron_transplantation.data import Split
from neuron_transplantation.fusion import Ensemble
from neuron_transplantation.train import train_epochs

__all__ = ["distill"]


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(x[i : i + 1024]) for i in range(0, len(x), 1024)])


def distill(
    members: Sequence[nn.Module],
    student: nn.Module,
    split: Split,
    config: FinetuneConfig,
    temperature: float = 4.0,
    alpha: float = 0.9,
    progress: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Distil the ensemble of ``members`` into ``student`` (trained in place; ``compare``
    passes a copy of the best member).

    Returns:
        The student's validation accuracy before and after every epoch.
    """
    x, y = split.train.tensors
    teacher = _logits(Ensemble(members).eval(), x)
    soft_targets = F.softmax(teacher / temperature, 1)

    def loss(output: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        soft = (
            F.kl_div(F.log_softmax(output / temperature, 1), targets, reduction="batchmean")
            * temperature**2
        )
        return alpha * soft + (1 - alpha) * F.cross_entropy(output, labels)

    return train_epochs(
        student, split, config.epochs, config.lr, config.momentum, config.batch, config.seed,
        progress, TensorDataset(x, y, soft_targets), loss,
    )  # fmt: skip
