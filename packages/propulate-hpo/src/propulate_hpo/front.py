"""The outcome of a multi-objective search: its Pareto front, hypervolume over time, the plot.

The objectives of every candidate are columns of the result's history (as the loss function
returned them); these functions turn them into the minimised vectors of ``pareto`` and back,
so that a front is shown in the user's own units and directions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from propulate_hpo.pareto import hypervolume, pareto_mask
from shared_hpc.files import atomic_path

if TYPE_CHECKING:
    import pandas as pd

    from propulate_hpo.objectives import Objectives
    from propulate_hpo.results import Result

_MARGIN = 0.1  # the default reference point lies this share of the range beyond the worst


def _objectives(result: Result) -> Objectives:
    if result.objectives is None:
        raise ValueError("a search of one loss has no Pareto front; give objectives")
    return result.objectives


def minimised(result: Result, frame: pd.DataFrame | None = None) -> np.ndarray:
    """``(n, m)`` objectives of the finished candidates (rows of ``frame``, default: the
    history's ok rows) as the search minimises them.

    Args:
        result: A multi-objective result.
        frame: Rows of its history.
    """
    objectives = _objectives(result)
    if frame is None:
        frame = result.history[result.history["status"] == "ok"]
    values = frame[list(objectives.names)].to_numpy(dtype=float)
    return values * objectives.signs


def reference_point(result: Result) -> np.ndarray:
    """The default hypervolume reference (minimised): the worst value of each objective over
    the finished candidates plus a tenth of its range (plus 1 where the range is zero).

    Args:
        result: A multi-objective result.
    """
    f = minimised(result)
    if len(f) == 0:
        return np.zeros(len(_objectives(result)))
    span = f.max(axis=0) - f.min(axis=0)
    return f.max(axis=0) + np.where(span > 0, _MARGIN * span, 1.0)


def pareto_front(result: Result) -> pd.DataFrame:
    """The non-dominated finished candidates, sorted by the first objective.

    Args:
        result: A multi-objective result.

    Returns:
        Their history rows: objectives as returned, parameters, worker, island, times.
    """
    history = result.history
    ok = history[history["status"] == "ok"]
    front = ok[pareto_mask(minimised(result, ok))]
    objectives = _objectives(result)
    first = objectives.names[0]
    front = front.sort_values(first, ascending=objectives.signs[0] > 0, kind="stable")
    leading = [*objectives.names, *result.space.names, "worker", "generation", "island"]
    rest = [c for c in front.columns if c not in leading]
    return front[leading + rest].reset_index(drop=True)


def hypervolume_history(
    result: Result,
    reference: np.ndarray | None = None,
    island: int | None = None,
    points: int = 200,
) -> pd.DataFrame:
    """Hypervolume of the front over the finished candidates, in order of completion.

    The front is updated after every candidate; its hypervolume is computed at ``points``
    evenly spaced evaluations and the last one (with three or more objectives every update
    costs a sweep over the front).

    Args:
        result: A multi-objective result.
        reference: The reference point, minimised (default: ``reference_point``).
        island: Only the candidates bred on this island.
        points: Evaluations at which the hypervolume is computed.

    Returns:
        Columns ``evaluations`` (of the island's, or all, in order of completion),
        ``t_end`` (s since the first start) and ``hypervolume``.
    """
    import pandas as pd

    history = result.history
    rows = history[history["status"] != "failed"]
    if island is not None:
        rows = rows[rows["island"] == island]
    ok = (rows["status"] == "ok").to_numpy()
    ref = reference_point(result) if reference is None else np.asarray(reference, dtype=float)
    f = minimised(result, rows)
    at = np.unique(np.linspace(0, len(rows) - 1, min(points, len(rows))).round().astype(int))
    values = np.zeros(len(at))
    front = np.zeros((0, len(ref)))
    changed, volume, j = False, 0.0, 0
    for i in range(len(rows)):
        point = f[i]
        if ok[i] and (point < ref).all() and not (front <= point).all(axis=1).any():
            front = np.vstack([front[~(point <= front).all(axis=1)], point])
            changed = True
        if j < len(at) and i == at[j]:
            if changed:
                volume, changed = _front_volume(front, ref), False
            values[j] = volume
            j += 1
    return pd.DataFrame(
        {"evaluations": at + 1, "t_end": rows["t_end"].to_numpy()[at], "hypervolume": values}
    )


def _front_volume(front: np.ndarray, reference: np.ndarray) -> float:
    return hypervolume(front, reference) if len(front) else 0.0


def plot_front(result: Result, path: str | Path) -> Path:
    """The front over every finished candidate (first two objectives) and the hypervolume
    over evaluations, overall and per island (PNG).

    Args:
        result: A multi-objective result.
        path: The PNG file.
    """
    from matplotlib.figure import Figure

    objectives = _objectives(result)
    path = Path(path)
    history = result.history
    ok = history[history["status"] == "ok"]
    front = pareto_front(result)
    x, y = objectives.names[:2]
    figure = Figure(figsize=(10, 4), layout="constrained")
    scatter, curve = figure.subplots(1, 2)
    scatter.scatter(ok[x], ok[y], s=8, color="0.7", label="evaluated")
    scatter.plot(front[x], front[y], "o-", color="C3", ms=4, label="Pareto front")
    scatter.set_xlabel(str(objectives.items[0]))
    scatter.set_ylabel(str(objectives.items[1]))
    scatter.legend(fontsize=8)
    scatter.grid(alpha=0.3)
    reference = reference_point(result)
    overall = hypervolume_history(result, reference)
    curve.plot(overall["evaluations"], overall["hypervolume"], color="k", lw=2, label="all")
    if result.n_islands > 1:
        for island in range(result.n_islands):
            part = hypervolume_history(result, reference, island)
            curve.plot(part["evaluations"], part["hypervolume"], lw=1, label=f"island {island}")
    curve.set_xlabel("evaluations (in order of completion)")
    curve.set_ylabel("hypervolume")
    curve.legend(fontsize=8)
    curve.grid(alpha=0.3)
    more = f" (of {len(objectives)} objectives)" if len(objectives) > 2 else ""
    figure.suptitle(f"{len(front)} non-dominated of {len(ok)} candidates{more}")
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    return path
