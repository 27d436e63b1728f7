"""Every fusion method on one ensemble, side by side, with the members and the ensemble as
references: accuracy right after fusion, validation accuracy after every fine-tuning epoch, test
accuracy after fusion and after the last epoch, and the fusion's wall time. Knowledge
distillation (``kd``) is the other way to one model: its "fused" figures are its starting point
(the best member), its epochs are distillation epochs with the fine-tuning settings.

Test accuracy is reported at these two fixed points only and never used to choose anything.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from neuron_transplantation.config import CompareConfig
from neuron_transplantation.data import Split
from neuron_transplantation.distill import distill
from neuron_transplantation.fusion import Ensemble, fuse
from neuron_transplantation.train import accuracy, finetune, reset_batch_norm
from shared_hpc import Headline

__all__ = ["TABLE_HEADER", "Comparison", "MethodResult", "compare"]

TABLE_HEADER = (
    "method",
    "validation % fused",
    "test % fused",
    "validation % fine-tuned",
    "test % fine-tuned",
    "fusion s",
)
"""Columns of ``Comparison.rows()``."""


@dataclass
class MethodResult:
    """One fusion method's outcome.

    Attributes:
        label: ``method`` or ``method/variant`` for the NT variants other than one-shot.
        seconds: Wall time of the fusion (for kd: of the whole distillation, training included).
        validation: Validation accuracy after fusion and after every fine-tuning epoch.
        test_fused: Test accuracy right after fusion.
        test_finetuned: Test accuracy after the last fine-tuning epoch.
    """

    label: str
    seconds: float
    validation: list[float]
    test_fused: float
    test_finetuned: float


@dataclass
class Comparison:
    """The fusion methods and the references on one ensemble.

    Attributes:
        members: Members in the ensemble.
        best_member: Index of the member with the best validation accuracy.
        best_member_validation: Its validation accuracy.
        best_member_test: Its test accuracy.
        ensemble_validation: Validation accuracy of the averaged outputs.
        ensemble_test: Test accuracy of the averaged outputs.
        methods: One result per fusion method.
    """

    members: int
    best_member: int
    best_member_validation: float
    best_member_test: float
    ensemble_validation: float
    ensemble_test: float
    methods: list[MethodResult]

    def rows(self) -> list[list[str]]:
        """The table: one row per method and per reference (accuracies in percent)."""

        def pct(x: float) -> str:
            return f"{100 * x:.2f}"

        rows = [
            [
                m.label,
                pct(m.validation[0]),
                pct(m.test_fused),
                pct(m.validation[-1]),
                pct(m.test_finetuned),
                f"{m.seconds:.4f}",
            ]
            for m in self.methods
        ]
        rows.append(
            [
                f"best member (#{self.best_member})",
                pct(self.best_member_validation),
                pct(self.best_member_test),
                "",
                "",
                "",
            ]
        )
        rows.append(
            [
                "ensemble (output average)",
                pct(self.ensemble_validation),
                pct(self.ensemble_test),
                "",
                "",
                "",
            ]
        )
        return rows

    def metrics(self) -> dict[str, float | int]:
        """The figures a run record keeps."""
        out: dict[str, float | int] = {
            "members": self.members,
            "best_member_test": self.best_member_test,
            "ensemble_test": self.ensemble_test,
        }
        for m in self.methods:
            key = m.label.replace("/", "_").replace("-", "_")
            out[f"{key}_test_fused"] = m.test_fused
            out[f"{key}_test_finetuned"] = m.test_finetuned
            out[f"{key}_fusion_s"] = m.seconds
        return out

    def headline(self) -> Headline:
        """NT's test accuracy after fine-tuning minus the best member's, in points."""
        nt = next((m for m in self.methods if m.label == "nt"), None)
        value = None if nt is None else 100 * (nt.test_finetuned - self.best_member_test)
        return Headline("NT fine-tuned minus best member, test accuracy", value, "points")


def compare(
    members: list[nn.Module],
    member_validation: list[float],
    split: Split,
    config: CompareConfig,
    progress: Callable[[str, int, float], None] | None = None,
) -> Comparison:
    """Fuse ``members`` by every method of ``config``, fine-tune each, and evaluate.

    Args:
        members: The trained members (left unchanged).
        member_validation: Their validation accuracy (to name the best member).
        split: The data the members were trained on.
        config: Methods, NT variants and fine-tuning.
        progress: Called with (label, epoch, validation accuracy) after every epoch.
    """
    example = split.train.tensors[0][:8]
    best = max(range(len(members)), key=member_validation.__getitem__)
    runs = [
        (m, v)
        for m in config.methods
        if m != "kd"
        for v in (config.variants if m == "nt" else ("one-shot",))
    ]
    results = []
    for method, variant in runs:
        label = method if variant == "one-shot" else f"{method}/{variant}"
        fused = fuse([copy.deepcopy(m) for m in members], example, method, variant, config.seed)
        if config.reset_batch_norm:
            reset_batch_norm(fused.model, split.train)
        test_fused = accuracy(fused.model, split.test)
        report = None if progress is None else (lambda e, a, label=label: progress(label, e, a))
        torch.manual_seed(config.finetune.seed)
        curve = finetune(fused.model, split, config.finetune, report)
        results.append(
            MethodResult(label, fused.seconds, curve, test_fused, accuracy(fused.model, split.test))
        )
    if "kd" in config.methods:
        report = None if progress is None else (lambda e, a: progress("kd", e, a))
        torch.manual_seed(config.finetune.seed)
        began = time.perf_counter()
        student = copy.deepcopy(members[best])
        curve = distill(
            members, student, split, config.finetune, config.temperature, config.alpha, report
        )
        seconds = time.perf_counter() - began
        results.append(
            MethodResult(
                "kd",
                seconds,
                curve,
                accuracy(members[best], split.test),
                accuracy(student, split.test),
            )
        )
    ensemble = Ensemble(members)
    return Comparison(
        len(members),
        best,
        member_validation[best],
        accuracy(members[best], split.test),
        accuracy(ensemble, split.validation),
        accuracy(ensemble, split.test),
        results,
    )
