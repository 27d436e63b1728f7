"""Figures: a forecast against the truth and its profile, and a comparison of models."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recycle_ts.comparison import Comparison
from shared_hpc import UserError, atomic_path


def _figure(size: tuple[float, float]):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError("plots need matplotlib: pip install matplotlib") from None
    return Figure(figsize=size, layout="constrained")


def plot_forecast(frame: pd.DataFrame, target: str, path: Path, origins: int = 3) -> None:
    """The first forecast cycles of the last ``origins`` forecasts: truth, model, profile and
    the prediction interval where there is one."""
    figure = _figure((9, 3.5))
    axes = figure.subplots()
    chosen = frame["origin"].drop_duplicates().iloc[-origins:]
    for i, origin in enumerate(chosen):
        part = frame[(frame["origin"] == origin)]
        labels = i == 0
        axes.plot(part["timestamp"], part[f"{target}_actual"], color="black",
                  label="truth" if labels else None)  # fmt: skip
        axes.plot(part["timestamp"], part[target], color="tab:blue",
                  label="forecast" if labels else None)  # fmt: skip
        axes.plot(part["timestamp"], part[f"{target}_baseline"], color="tab:orange", ls="--",
                  label="profile (residual reference)" if labels else None)  # fmt: skip
        quantiles = sorted(c for c in part.columns if c.startswith(f"{target}_q"))
        if len(quantiles) >= 2:
            axes.fill_between(part["timestamp"], part[quantiles[0]], part[quantiles[-1]],
                              color="tab:blue", alpha=0.2,
                              label="prediction interval" if labels else None)  # fmt: skip
    axes.set_ylabel(target)
    axes.legend(loc="upper left", fontsize="small")
    figure.autofmt_xdate()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)


def plot_comparison(comparison: Comparison, path: Path) -> None:
    """Test MAE of every model and reference, and training time of the networks."""
    rows = comparison.rows()
    figure = _figure((10, 3.5))
    left, right = figure.subplots(1, 2)
    colors = ["tab:blue" if r["kind"] == "network" else "tab:gray" for r in rows]
    left.bar([r["name"] for r in rows], [r["mae"] for r in rows], color=colors)
    left.set_ylabel("test MAE (median over seeds)")
    left.tick_params(axis="x", rotation=45)
    networks = [r for r in rows if r["kind"] == "network"]
    right.bar([r["name"] for r in networks], [r["train_seconds"] for r in networks])
    right.set_ylabel("training time [s]")
    right.set_yscale("log")
    right.tick_params(axis="x", rotation=45)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
