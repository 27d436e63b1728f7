"""Figures of a run and of a comparison, written atomically as PNG (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

from oialr.comparison import Comparison
from oialr.schedule import LayerEvent
from oialr.training import TrainResult
from shared_hpc import UserError, atomic_path

__all__ = ["plot_comparison", "plot_ranks"]


def _figure(rows: int = 1, columns: int = 1, width: float = 5.5):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError("plots need matplotlib: pip install oialr[demo]") from None
    figure = Figure(figsize=(width, 3.6 * rows), layout="constrained")
    return figure, figure.subplots(rows, columns, squeeze=False)


def _save(figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    return path


def _rank_lines(axes, events: list[LayerEvent]) -> None:
    layers = dict.fromkeys(e.layer for e in events)
    for layer in layers:
        points = [(e.step, e.rank) for e in events if e.layer == layer and e.kind != "check"]
        if points:
            steps, ranks = zip(*points, strict=True)
            axes.step(steps, ranks, where="post", label=layer or "(model)")
    axes.set_xlabel("step")
    axes.set_ylabel("rank")
    axes.set_title("rank of each layer after its switch")
    axes.legend(fontsize="small", ncols=2)


def plot_ranks(result: TrainResult, path: Path) -> Path:
    """Rank per layer over the steps of one OIALR run."""
    figure, axes = _figure()
    _rank_lines(axes[0, 0], result.events)
    return _save(figure, path)


def plot_comparison(comparison: Comparison, path: Path) -> Path:
    """Validation metric and trainable parameters over training, per arm (first seed), and
    the OIALR run's rank per layer."""
    figure, axes = _figure(1, 3, width=15)
    metric, params, ranks = axes[0]
    for arm in comparison.arms.values():
        run = arm.runs[0]
        steps = [h.step for h in run.history]
        metric.plot(steps, [h.validation for h in run.history], label=arm.name)
        params.plot(steps, [h.trainable for h in run.history], label=arm.name)
    metric.set_xlabel("step")
    metric.set_ylabel(f"validation {comparison.metric}")
    metric.legend()
    params.set_xlabel("step")
    params.set_ylabel("trainable parameters")
    params.set_ylim(bottom=0)
    params.legend()
    if "oialr" in comparison.arms:
        _rank_lines(ranks, comparison.arms["oialr"].runs[0].events)
    else:
        ranks.set_visible(False)
    return _save(figure, path)
