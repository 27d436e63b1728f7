"""The comparison's figure: validation accuracy against fine-tuning epochs, one line per method."""

from __future__ import annotations

from pathlib import Path

from neuron_transplantation.compare import Comparison
from shared_hpc import UserError, atomic_path

__all__ = ["plot_comparison"]


def plot_comparison(comparison: Comparison, path: Path) -> None:
    """Write the accuracy-versus-fine-tuning-epochs plot of ``comparison`` to ``path`` (PNG).

    Raises:
        UserError: matplotlib is missing.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError("plots need matplotlib: pip install neuron-transplantation[demo]") from None
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.subplots()
    for method in comparison.methods:
        axes.plot(
            range(len(method.validation)),
            [100 * v for v in method.validation],
            marker="o",
            markersize=3,
            label=method.label,
        )
    axes.axhline(
        100 * comparison.best_member_validation, color="grey", linestyle="--", label="best member"
    )
    axes.axhline(
        100 * comparison.ensemble_validation, color="black", linestyle=":", label="ensemble"
    )
    axes.set_xlabel("fine-tuning epochs (0 = right after fusion)")
    axes.set_ylabel("validation accuracy [%]")
    axes.set_title(f"fusion of {comparison.members} members")
    axes.legend()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
