"""Pareto dominance on objective vectors: non-dominated sorting, crowding, hypervolume.

Every function takes objectives as an ``(n, m)`` array to be *minimised* (a maximised objective
enters negated, see ``objectives``). They work on plain arrays rather than DEAP's individual
objects: the asynchronous loop sorts a small breeding archive at every breed, and building
fitness objects for it would cost more than the sort (the tests check the fronts and crowding
distances against DEAP's ``sortNondominated`` and ``assignCrowdingDist``).
"""

from __future__ import annotations

import numpy as np


def dominance_matrix(objectives: np.ndarray) -> np.ndarray:
    """``d[i, j]``: row ``i`` dominates row ``j`` (no worse everywhere, better somewhere).

    Args:
        objectives: ``(n, m)`` values to minimise.
    """
    f = np.asarray(objectives, dtype=float)
    no_worse = (f[:, None, :] <= f[None, :, :]).all(axis=2)
    better = (f[:, None, :] < f[None, :, :]).any(axis=2)
    return no_worse & better


def nondominated_ranks(objectives: np.ndarray) -> np.ndarray:
    """Front of every row: 0 for the non-dominated, 1 for those only they dominate, ...

    Deb's fast non-dominated sort on a dominance matrix (``O(m n²)``), meant for breeding
    archives of a few hundred rows; ``pareto_mask`` finds the first front of long histories.

    Args:
        objectives: ``(n, m)`` values to minimise.

    Returns:
        The front index of each row.
    """
    dominates = dominance_matrix(objectives)
    dominated_by = dominates.sum(axis=0)
    ranks = np.full(len(dominates), -1, dtype=np.int64)
    front = np.flatnonzero(dominated_by == 0)
    rank = 0
    while len(front):
        ranks[front] = rank
        dominated_by = dominated_by - dominates[front].sum(axis=0)
        dominated_by[ranks >= 0] = -1
        front = np.flatnonzero(dominated_by == 0)
        rank += 1
    return ranks


def crowding_distance(objectives: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of the rows of one front (infinite at its extremes).

    Args:
        objectives: ``(n, m)`` values of one front.

    Returns:
        For each row, the sum over objectives of the normalised gap between its neighbours.
    """
    f = np.asarray(objectives, dtype=float)
    n = len(f)
    distance = np.zeros(n)
    if n <= 2:
        distance[:] = np.inf
        return distance
    for column in f.T:
        order = np.argsort(column, kind="stable")
        values = column[order]
        span = values[-1] - values[0]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (values[2:] - values[:-2]) / span
    return distance


def crowded_order(objectives: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows from best to worst by NSGA-II's crowded comparison (front, then crowding).

    Args:
        objectives: ``(n, m)`` values to minimise.

    Returns:
        ``(order, ranks, crowding)``: the row indices best first, each row's front and its
        crowding distance within that front.
    """
    ranks = nondominated_ranks(objectives)
    crowding = np.zeros(len(ranks))
    for rank in np.unique(ranks):
        members = np.flatnonzero(ranks == rank)
        crowding[members] = crowding_distance(objectives[members])
    order = np.lexsort((-crowding, ranks))
    return order, ranks, crowding


def pareto_mask(objectives: np.ndarray) -> np.ndarray:
    """Which rows are non-dominated, for many rows (a run's whole history).

    Rows are visited in lexicographic order, so a row can only be dominated by rows already
    on the front: ``O(n · front · m)``, and ``O(n log n)`` for two objectives. Of identical rows
    the first is kept.

    Args:
        objectives: ``(n, m)`` values to minimise; rows with a NaN are never on the front.
    """
    f = np.asarray(objectives, dtype=float)
    mask = np.zeros(len(f), dtype=bool)
    valid = np.flatnonzero(~np.isnan(f).any(axis=1))
    order = valid[np.lexsort(f[valid].T[::-1])]
    if f.shape[1] == 2:  # in lexicographic order: on the front iff below every earlier f2
        second = f[order, 1]
        earlier = np.concatenate(([np.inf], np.minimum.accumulate(second)[:-1]))
        mask[order[second < earlier]] = True
        return mask
    front: list[int] = []
    for i in order.tolist():
        if front:
            kept = f[front]
            if (kept <= f[i]).all(axis=1).any():  # dominated, or equal to a kept row
                continue
        front.append(i)
    mask[front] = True
    return mask


def hypervolume(objectives: np.ndarray, reference: np.ndarray) -> float:
    """Volume dominated by the rows and bounded by ``reference`` (exact, minimisation).

    Two objectives by a sweep, more by slicing along the last objective (HSO); exact and fast
    for the fronts of a search (hundreds of points, up to four objectives).

    Args:
        objectives: ``(n, m)`` values to minimise.
        reference: ``(m,)`` the reference point; rows not strictly better in every objective
            add nothing.

    Returns:
        The hypervolume (0 for no row inside the reference box).
    """
    f = np.asarray(objectives, dtype=float).reshape(-1, len(reference))
    ref = np.asarray(reference, dtype=float)
    f = f[(f < ref).all(axis=1)]
    if len(f) == 0:
        return 0.0
    f = f[pareto_mask(f)]
    return _hypervolume(f, ref)


def _hypervolume(f: np.ndarray, ref: np.ndarray) -> float:
    if f.shape[1] == 1:
        return float(ref[0] - f[:, 0].min())
    if f.shape[1] == 2:
        order = np.argsort(f[:, 0], kind="stable")
        x, y = f[order, 0], f[order, 1]
        best_y = np.minimum.accumulate(y)
        heights = np.concatenate(([ref[1]], best_y[:-1])) - best_y
        return float(((ref[0] - x) * np.maximum(heights, 0.0)).sum())
    order = np.argsort(f[:, -1], kind="stable")
    f = f[order]
    levels = np.append(f[:, -1], ref[-1])
    volume = 0.0
    for i in range(len(f)):
        depth = levels[i + 1] - levels[i]
        if depth > 0:  # dominated points of a slice add nothing to the sweep: no filtering
            volume += depth * _hypervolume(f[: i + 1, :-1], ref[:-1])
    return volume
