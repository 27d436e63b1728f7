"""The four figures of a sweep: energy vs device-hours, scaling, metric vs batch, Pareto front."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from energy_scaling.analysis import Analysis
from energy_scaling.recommend import Recommendation
from shared_hpc import atomic_path

__all__ = ["PLOTS", "write_plots"]

PLOTS = ("energy.png", "scaling.png", "batch.png", "pareto.png")


def _save(figure: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)


def _energy(analysis: Analysis, path: Path) -> None:
    figure = Figure(figsize=(5, 3.6), layout="constrained")
    axes = figure.subplots()
    for fit in analysis.fits:
        mine = [p for p in analysis.points if (p.model, p.hardware) == (fit.model, fit.hardware)]
        hours = np.array([float(p["device_hours"]) for p in mine])
        energy = np.array([p.energy_kwh * 1e3 for p in mine])
        kind = "measured" if fit.measured else "estimated"
        axes.scatter(hours, energy, label=f"{fit.model} ({kind})")
        grid = np.linspace(0, hours.max() * 1.05, 50)
        axes.plot(grid, (fit.k * grid + fit.intercept) * 1e3,
                  label=f"k = {fit.watts_per_device:.3g} W/device, R² = {fit.r2:.3f}")  # fmt: skip
    axes.set_xlabel("device-hours")
    axes.set_ylabel("energy [Wh]")
    axes.legend(fontsize=7)
    _save(figure, path)


def _scaling(analysis: Analysis, path: Path) -> None:
    figure = Figure(figsize=(8, 3.4), layout="constrained")
    speed, eff = figure.subplots(1, 2)
    for model, rows in analysis.scaling.items():
        for g in sorted({r["global_batch"] for r in rows}):
            mine = [r for r in rows if r["global_batch"] == g]
            ranks = [r["ranks"] for r in mine]
            speed.plot(ranks, [r["speedup"] for r in mine], "o-", label=f"{model} G={g}")
            eff.plot(ranks, [r["efficiency"] for r in mine], "o-", label=f"{model} G={g}")
    speed.set_xlabel("ranks")
    speed.set_ylabel("speed-up")
    eff.set_xlabel("ranks")
    eff.set_ylabel("parallel efficiency")
    eff.set_ylim(0, 1.1)
    speed.legend(fontsize=7)
    _save(figure, path)


def _batch(analysis: Analysis, path: Path) -> None:
    figure = Figure(figsize=(5, 3.6), layout="constrained")
    axes = figure.subplots()
    for model, limit in analysis.limits.items():
        batches = list(limit.by_batch)
        axes.plot(batches, list(limit.by_batch.values()), "o-", label=model)
        axes.axvline(limit.critical, linestyle=":", color="grey")
    axes.set_xscale("log", base=2)
    axes.set_xlabel("global batch")
    axes.set_ylabel(str(analysis.points[0]["metric"]))
    axes.legend(fontsize=7)
    _save(figure, path)


def _pareto(recommendation: Recommendation, analysis: Analysis, path: Path) -> None:
    figure = Figure(figsize=(5, 3.6), layout="constrained")
    axes = figure.subplots()
    target = recommendation.basis == "to target"
    everyone = [
        (float(p["time_to_target_s" if target else "wall_time_s"]),
         float(p["energy_to_target_j" if target else "energy_j"]) / 3.6e3)
        for p in analysis.points
        if not target or p["time_to_target_s"] is not None
    ]  # fmt: skip
    if everyone:
        axes.scatter(*zip(*everyone, strict=True), color="lightgrey", label="points")
    front = recommendation.front
    axes.plot([c.seconds for c in front], [c.energy_kwh * 1e3 for c in front], "o-",
              label="Pareto front")  # fmt: skip
    if recommendation.choice:
        c = recommendation.choice
        axes.scatter([c.seconds], [c.energy_kwh * 1e3], marker="*", s=200, color="red",
                     label=f"choice {c.point}", zorder=3)  # fmt: skip
    axes.set_xlabel(f"time {recommendation.basis} [s]")
    axes.set_ylabel(f"energy {recommendation.basis} [Wh]")
    axes.legend(fontsize=7)
    _save(figure, path)


def write_plots(analysis: Analysis, recommendation: Recommendation, folder: Path) -> list[str]:
    """Write the four figures into ``folder``; returns their file names."""
    _energy(analysis, folder / PLOTS[0])
    _scaling(analysis, folder / PLOTS[1])
    _batch(analysis, folder / PLOTS[2])
    _pareto(recommendation, analysis, folder / PLOTS[3])
    return list(PLOTS)
