"""PNG figures: skill against lead time, maps of a forecast, the truth and the error, and the
training loss."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from shared_hpc import atomic_path

if TYPE_CHECKING:
    from weathermixer.evaluate import Skill


def _save(fig: Figure, path: str | Path) -> None:
    """Write the figure as PNG, atomically (never through a file or link at ``path``)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


STYLE = {
    "model": ("WeatherMixer", "tab:blue", "o-"),
    "persistence": ("persistence", "tab:gray", "s--"),
    "damped_persistence": ("damped persistence", "tab:green", "v-."),
    "climatology": ("climatology", "tab:orange", "^:"),
}


def skill_plot(skill: Skill, channels: list[str], path: str | Path) -> Path:
    """RMSE (top) and ACC (bottom) against lead time for each channel; the title names the
    climatology's source.

    Args:
        skill: The scores.
        channels: The channels shown, one column each.
        path: The PNG file.
    """
    leads = skill.leads_h
    fig = Figure(figsize=(3.2 * len(channels), 5.6), layout="constrained")
    axes = fig.subplots(2, len(channels), squeeze=False)
    for j, name in enumerate(channels):
        for kind, (label, color, style) in STYLE.items():
            scores = skill.scores(kind)[name]
            axes[0, j].plot(leads, scores.rmse, style, color=color, label=label)
            if kind != "climatology":
                axes[1, j].plot(leads, scores.acc, style, color=color, label=label)
        axes[0, j].set_title(name)
        axes[1, j].set_xlabel("lead time [h]")
        axes[1, j].set_ylim(top=1.0)
    axes[0, 0].set_ylabel("latitude-weighted RMSE")
    axes[1, 0].set_ylabel("ACC")
    axes[0, 0].legend(fontsize="small")
    fig.suptitle(f"climatology: {skill.climatology_source}", fontsize="small")
    _save(fig, path)
    return Path(path)


def map_plot(
    lat: np.ndarray, lon: np.ndarray, fields: dict[str, np.ndarray], title: str, path: str | Path
) -> Path:
    """One panel per field on the lat–lon grid (the last one, the error, centred on zero).

    Args:
        lat: Latitudes of the rows.
        lon: Longitudes of the columns.
        fields: Panel title -> field ``[lat, lon]``; the last one is the error.
        title: Title of the figure.
        path: The PNG file.
    """
    fig = Figure(figsize=(4.2 * len(fields), 2.8), layout="constrained")
    axes = fig.subplots(1, len(fields), squeeze=False)[0]
    items = list(fields.items())
    vmin = min(np.min(v) for _, v in items[:-1])
    vmax = max(np.max(v) for _, v in items[:-1])
    for ax, (name, value) in zip(axes, items, strict=True):
        if name == "error":
            lim = float(np.max(np.abs(value))) or 1.0
            mesh = ax.pcolormesh(lon, lat, value, cmap="RdBu_r", vmin=-lim, vmax=lim)
        else:
            mesh = ax.pcolormesh(lon, lat, value, cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_title(name)
        ax.set_xlabel("longitude")
        fig.colorbar(mesh, ax=ax, shrink=0.8)
    axes[0].set_ylabel("latitude")
    fig.suptitle(title)
    _save(fig, path)
    return Path(path)


def loss_plot(log: list[dict[str, Any]], path: str | Path) -> Path:
    """Training and validation loss against the step, from the entries of ``train_log.jsonl``.

    Args:
        log: The log's entries (those with ``loss`` or ``val_loss`` are drawn).
        path: The PNG file.
    """
    fig = Figure(figsize=(5, 3.2), layout="constrained")
    ax = fig.subplots()
    train_log = [e for e in log if "loss" in e]
    valid = [e for e in log if "val_loss" in e]
    ax.plot([e["step"] for e in train_log], [e["loss"] for e in train_log], label="training")
    ax.plot([e["step"] for e in valid], [e["val_loss"] for e in valid], "o", label="validation")
    ax.axhline(1.0, color="gray", ls=":", label="≈ persistence")
    ax.set_xlabel("step")
    ax.set_ylabel("weighted MSE (units of 1-step change)")
    ax.legend()
    _save(fig, path)
    return Path(path)
