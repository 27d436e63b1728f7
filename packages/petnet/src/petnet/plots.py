"""Figures for the demo and the evaluate command (matplotlib, no display needed), written
atomically like every file of petnet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from petnet.evaluate import MethodResult
from petnet.singles import Singles
from shared_hpc import atomic_path


def energy_spectrum(singles: Singles, path: Path) -> Path:
    """Measured energies, split into unscattered and scattered photons when truth is known.

    Args:
        singles: The singles.
        path: The PNG file.
    """
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.subplots()
    bins = np.linspace(0, 750, 151)
    if singles.scattered is not None:
        axes.hist(
            singles.energy_kev[~singles.scattered], bins, histtype="step", label="unscattered"
        )
        axes.hist(singles.energy_kev[singles.scattered], bins, histtype="step", label="scattered")
        axes.legend()
    else:
        axes.hist(singles.energy_kev, bins, histtype="step")
    axes.axvline(511, color="grey", linestyle=":")
    axes.set(xlabel="energy (keV)", ylabel="singles", title="Simulated energy spectrum")
    return _save(figure, path)


def comparison(results: list[MethodResult], history: list[dict] | None, path: Path) -> Path:
    """F1 and throughput per method, and the validation F1 over training epochs.

    Args:
        results: One result per method.
        history: The training's history (``TrainResult.history``); ``None``: no third panel.
        path: The PNG file.
    """
    panels = 3 if history else 2
    figure = Figure(figsize=(4.5 * panels, 4.5), layout="constrained")
    axes = figure.subplots(1, panels)
    names = [r.name.replace("GATE ", "GATE\n") for r in results]
    y = np.arange(len(results))
    axes[0].barh(y, [r.scores.f1 for r in results], color="tab:blue")
    axes[0].set(yticks=y, yticklabels=names, xlabel="coincidence F1", xlim=(0, 1))
    axes[0].invert_yaxis()
    axes[1].barh(y, [r.singles_per_second for r in results], color="tab:orange")
    axes[1].set(yticks=y, yticklabels=[], xlabel="singles per second", xscale="log")
    axes[1].invert_yaxis()
    if history:
        axes[2].plot([h["epoch"] for h in history], [h["val_f1"] for h in history], "o-")
        axes[2].set(xlabel="epoch", ylabel="validation F1", title="PETNet training")
    return _save(figure, path)


def _save(figure: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)  # the temporary name has no .png suffix
    return path
