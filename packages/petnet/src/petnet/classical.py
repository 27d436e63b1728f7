"""Classical coincidence sorters, vectorised with NumPy.

* :func:`sliding_window` — the baseline of the PETNet paper: singles closer than the window to
  their predecessor form a group; a group of exactly two singles is a coincidence.
* :func:`gate_sorter` — the sorter of GATE/OpenGATE: each single opens a window (or, with
  ``multi_window=False``, only singles outside an open window do); the pairs in a window are
  checked against geometry (minimum transaxial, maximum axial distance) and an energy window,
  and multiples are resolved by one of GATE's policies. A delayed window gives a randoms
  estimate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from petnet.chain import chain_mask
from petnet.singles import Singles

Policy = Literal[
    "removeMultiples",
    "takeAllGoods",
    "takeWinnerOfGoods",
    "takeIfOnlyOneGood",
    "takeWinnerIfIsGood",
    "takeWinnerIfAllAreGoods",
]
POLICIES: tuple[str, ...] = Policy.__args__  # type: ignore[attr-defined]


@dataclass
class Coincidences:
    """Pairs of singles (indices into the sorted singles), earlier single first."""

    first: np.ndarray
    second: np.ndarray
    method: str
    delayed: int | None = None

    def __len__(self) -> int:
        return len(self.first)

    def hit_flags(self, n_singles: int) -> np.ndarray:
        """Per single: is it part of at least one accepted coincidence?"""
        flags = np.zeros(n_singles, dtype=bool)
        flags[self.first] = True
        flags[self.second] = True
        return flags

    def classify(self, singles: Singles) -> dict[str, int]:
        """Count trues, scatters and randoms among the pairs (needs ground truth)."""
        if not singles.has_truth:
            raise ValueError("classifying coincidences needs singles with ground truth")
        same = singles.decay_id[self.first] == singles.decay_id[self.second]
        clean = ~(singles.scattered[self.first] | singles.scattered[self.second])
        return {
            "trues": int((same & clean).sum()),
            "scatters": int((same & ~clean).sum()),
            "randoms": int((~same).sum()),
        }

    def save(self, path: str | os.PathLike[str], singles: Singles) -> Path:
        """Write the pairs with both singles' time, crystal and energy to an npz file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        columns = {}
        for tag, index in (("1", self.first), ("2", self.second)):
            columns[f"index{tag}"] = index
            columns[f"time_ns{tag}"] = singles.time_ns[index]
            columns[f"crystal{tag}"] = singles.crystal[index]
            columns[f"energy_kev{tag}"] = singles.energy_kev[index]
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez_compressed(tmp, method=np.array(self.method), **columns)
        os.replace(tmp, path)
        return path


def energy_selection(singles: Singles, energy_window: tuple[float, float] | None) -> np.ndarray:
    """Indices of the singles inside the energy window (all of them if it is ``None``)."""
    if energy_window is None:
        return np.arange(len(singles))
    low, high = energy_window
    if not low < high:
        raise ValueError(f"energy window needs low < high, got {energy_window}")
    return np.flatnonzero((singles.energy_kev >= low) & (singles.energy_kev <= high))


def sliding_window(
    singles: Singles,
    window_ns: float = 4.0,
    energy_window: tuple[float, float] | None = None,
) -> Coincidences:
    """The paper's sorter: groups chained by gaps ≤ window; keep groups of exactly two."""
    _check_window(window_ns)
    chosen = energy_selection(singles, energy_window)
    t = singles.time_ns[chosen]
    if len(t) < 2:
        return Coincidences(np.zeros(0, np.int64), np.zeros(0, np.int64), "sliding_window")
    new_group = np.concatenate([[True], np.diff(t) > window_ns])
    group = np.cumsum(new_group) - 1
    size = np.bincount(group)
    starts = np.flatnonzero(new_group)
    pairs = starts[size == 2]
    return Coincidences(chosen[pairs], chosen[pairs + 1], "sliding_window")


def gate_sorter(
    singles: Singles,
    window_ns: float = 4.0,
    policy: str = "takeWinnerOfGoods",
    energy_window: tuple[float, float] | None = (350.0, 650.0),
    min_transaxial_mm: float | None = None,
    max_axial_mm: float | None = None,
    multi_window: bool = True,
    delayed_offset_ns: float | None = None,
) -> Coincidences:
    """GATE-style sorter; ``min_transaxial_mm`` defaults to the chord that just touches the
    scanner's field of view, ``max_axial_mm`` to no limit."""
    _check_window(window_ns)
    if policy not in POLICIES:
        raise ValueError(f"unknown multiples policy {policy!r}; choose one of {list(POLICIES)}")
    if delayed_offset_ns is not None and delayed_offset_ns <= window_ns:
        raise ValueError(
            f"delayed_offset_ns ({delayed_offset_ns}) must exceed the window ({window_ns} ns)"
        )
    scanner = singles.scanner
    if min_transaxial_mm is None:
        min_transaxial_mm = scanner.min_transaxial_distance_mm
    chosen = energy_selection(singles, energy_window)
    t = singles.time_ns[chosen]
    openers = None if multi_window else chain_mask(t, window_ns, inclusive=False)
    positions = scanner.crystal_positions()
    crystal = singles.crystal[chosen]
    energy = singles.energy_kev[chosen].astype(np.float64)

    def sort(offset: float) -> tuple[np.ndarray, np.ndarray]:
        first, second = _window_pairs(t, offset, window_ns, openers)
        distinct = crystal[first] != crystal[second]
        first, second = first[distinct], second[distinct]
        a, b = positions[crystal[first]], positions[crystal[second]]
        good = np.hypot(a[:, 0] - b[:, 0], a[:, 1] - b[:, 1]) >= min_transaxial_mm
        if max_axial_mm is not None:
            good &= np.abs(a[:, 2] - b[:, 2]) <= max_axial_mm
        keep = _apply_policy(policy, first, good, energy[first] + energy[second])
        return first[keep], second[keep]

    first, second = sort(0.0)
    delayed = None
    if delayed_offset_ns is not None:
        delayed = len(sort(delayed_offset_ns)[0])
    return Coincidences(chosen[first], chosen[second], f"gate:{policy}", delayed)


def _check_window(window_ns: float) -> None:
    if not (np.isfinite(window_ns) and window_ns > 0):
        raise ValueError(f"coincidence window must be > 0 ns, got {window_ns}")


def _window_pairs(
    t: np.ndarray, offset: float, window: float, openers: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i, j) with t[j] − t[i] in [offset, offset + window], j > i, i an opener."""
    index = np.arange(len(t)) if openers is None else np.flatnonzero(openers)
    # the prompt window starts right after the opener; a delayed one at t + offset
    low = index + 1 if offset == 0.0 else np.searchsorted(t, t[index] + offset, side="left")
    high = np.searchsorted(t, t[index] + offset + window, side="right")
    count = np.maximum(high - low, 0)
    first = np.repeat(index, count)
    begin = np.repeat(low, count)
    within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return first, begin + within


def _apply_policy(
    policy: str, window: np.ndarray, good: np.ndarray, energy_sum: np.ndarray
) -> np.ndarray:
    """Boolean mask of the pairs a GATE multiples policy keeps; pairs grouped by opener."""
    if window.size == 0:
        return np.zeros(0, dtype=bool)
    _, group, count_all = np.unique(window, return_inverse=True, return_counts=True)
    count_good = np.bincount(group, weights=good, minlength=len(count_all)).astype(np.int64)
    if policy == "removeMultiples":
        return good & (count_all[group] == 1)
    if policy == "takeAllGoods":
        return good
    if policy == "takeIfOnlyOneGood":
        return good & (count_good[group] == 1)
    if policy == "takeWinnerOfGoods":
        return good & _winner(group, np.where(good, energy_sum, -np.inf))
    if policy == "takeWinnerIfIsGood":
        return good & _winner(group, energy_sum)
    # takeWinnerIfAllAreGoods
    return (count_good[group] == count_all[group]) & _winner(group, energy_sum)


def _winner(group: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Mask of the highest-scoring pair of each group (the first one on ties)."""
    order = np.lexsort((np.arange(len(group)), -score, group))
    first_of_group = np.concatenate([[True], group[order][1:] != group[order][:-1]])
    mask = np.zeros(len(group), dtype=bool)
    mask[order[first_of_group]] = True
    return mask
