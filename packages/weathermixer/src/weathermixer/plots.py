"""PNG figures: skill against lead time, and maps of a forecast, the truth and the error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

STYLE = {
    "model": ("WeatherMixer", "tab:blue", "o-"),
    "persistence": ("persistence", "tab:gray", "s--"),
    "climatology": ("climatology", "tab:orange", "^:"),
}


def skill_plot(table: dict[str, Any], channels: list[str], path: str | Path) -> Path:
    """RMSE (top) and ACC (bottom) against lead time for each channel."""
    leads = table["leads_h"]
    fig = Figure(figsize=(3.2 * len(channels), 5.6), layout="constrained")
    axes = fig.subplots(2, len(channels), squeeze=False)
    for j, name in enumerate(channels):
        for kind, (label, color, style) in STYLE.items():
            scores = table[kind][name]
            axes[0, j].plot(leads, scores["rmse"], style, color=color, label=label)
            if kind != "climatology":
                axes[1, j].plot(leads, scores["acc"], style, color=color, label=label)
        axes[0, j].set_title(name)
        axes[1, j].set_xlabel("lead time [h]")
        axes[1, j].set_ylim(top=1.0)
    axes[0, 0].set_ylabel("latitude-weighted RMSE")
    axes[1, 0].set_ylabel("ACC")
    axes[0, 0].legend(fontsize="small")
    fig.savefig(path, dpi=110)
    return Path(path)


def map_plot(
    lat: np.ndarray, lon: np.ndarray, fields: dict[str, np.ndarray], title: str, path: str | Path
) -> Path:
    """One panel per field on the lat–lon grid (the last one, the error, centred on zero)."""
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
    fig.savefig(path, dpi=110)
    return Path(path)
