"""Classical coincidence sorters, vectorised with NumPy: the baselines PETNet is measured against.

* ``sliding_window`` — the baseline of the PETNet paper: singles closer than the window to
  their predecessor form a group; a group of exactly two singles is a coincidence.
* ``gate_sorter`` — the sorter of GATE/OpenGATE: each single opens a window (or, with
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
from shared_hpc import UserError, atomic_path

Policy = Literal[
    "removeMultiples",
    "takeAllGoods",
    "takeWinnerOfGoods",
    "takeIfOnlyOneGood",
    "takeWinnerIfIsGood",
    "takeWinnerIfAllAreGoods",
]
POLICIES: tuple[str, ...] = Policy.__args__  # type: ignore[attr-defined]
WINDOW_NS = 4.0  # the coincidence window every sorter uses unless told otherwise
DEFAULT_POLICY = "takeWinnerOfGoods"  # GATE's usual multiples policy
ENERGY_WINDOW_KEV = (350.0, 650.0)  # the usual energy window around 511 keV


@dataclass
class Coincidences:
    """Pairs of singles (indices into the sorted singles), earlier single first.

    Args:
        first: Index of the earlier single of each pair.
        second: Index of the later single of each pair.
        method: The sorter that found them.
        delayed: Pairs in the delayed window (a randoms estimate), if one was opened.
    """

    first: np.ndarray
    second: np.ndarray
    method: str
    delayed: int | None = None

    def __len__(self) -> int:
        return len(self.first)

    def hit_flags(self, n_singles: int) -> np.ndarray:
        """Per single: is it part of at least one accepted coincidence?

        Args:
            n_singles: How many singles the pairs index into.
        """
        flags = np.zeros(n_singles, dtype=bool)
        flags[self.first] = True
        flags[self.second] = True
        return flags

    def classify(self, singles: Singles) -> dict[str, int]:
        """Count trues, scatters and randoms among the pairs.

        Args:
            singles: The singles the pairs index into, with ground truth.

        Raises:
            UserError: The singles carry no ground truth.
        """
        if not singles.has_truth:
            raise UserError("classifying coincidences needs singles with ground truth")
        same = singles.decay_id[self.first] == singles.decay_id[self.second]
        clean = ~(singles.scattered[self.first] | singles.scattered[self.second])
        return {
            "trues": int((same & clean).sum()),
            "scatters": int((same & ~clean).sum()),
            "randoms": int((~same).sum()),
        }

    def save(self, path: str | os.PathLike[str], singles: Singles) -> Path:
        """Write the pairs with both singles' time, crystal and energy to an npz file, atomically.

        Args:
            path: The npz file (its folder is created).
            singles: The singles the pairs index into.

        Returns:
            ``path``.
        """
        path = Path(path)
        columns = {}
        for tag, index in (("1", self.first), ("2", self.second)):
            columns[f"index{tag}"] = index
            columns[f"time_ns{tag}"] = singles.time_ns[index]
            columns[f"crystal{tag}"] = singles.crystal[index]
            columns[f"energy_kev{tag}"] = singles.energy_kev[index]
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, method=np.array(self.method), **columns)
        return path


def energy_selection(singles: Singles, energy_window: tuple[float, float] | None) -> np.ndarray:
    """Indices of the singles inside the energy window.

    Args:
        singles: The singles.
        energy_window: (low, high) in keV, both included; ``None`` keeps every single.

    Raises:
        UserError: ``low`` is not below ``high``.
    """
    if energy_window is None:
        return np.arange(len(singles))
    check_settings(energy_window=energy_window)
    low, high = energy_window
    return np.flatnonzero((singles.energy_kev >= low) & (singles.energy_kev <= high))


def sliding_window(
    singles: Singles,
    window_ns: float = WINDOW_NS,
    energy_window: tuple[float, float] | None = None,
) -> Coincidences:
    """The paper's sorter: groups chained by gaps ≤ window; keep groups of exactly two.

    Args:
        singles: Time-sorted singles.
        window_ns: Largest gap between neighbours of one group.
        energy_window: (low, high) in keV of the singles taken into account; ``None``: all.

    Raises:
        UserError: A window that is not positive, or an empty energy window.
    """
    check_settings(window_ns, energy_window)
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
    window_ns: float = WINDOW_NS,
    policy: str = DEFAULT_POLICY,
    energy_window: tuple[float, float] | None = ENERGY_WINDOW_KEV,
    min_transaxial_mm: float | None = None,
    max_axial_mm: float | None = None,
    multi_window: bool = True,
    delayed_offset_ns: float | None = None,
) -> Coincidences:
    """The sorter of GATE/OpenGATE.

    Args:
        singles: Time-sorted singles.
        window_ns: Length of the window each opener opens.
        policy: How multiples (several good pairs in one window) are resolved, one of
            ``POLICIES``.
        energy_window: (low, high) in keV of the singles taken into account; ``None``: all.
        min_transaxial_mm: Shortest transaxial distance of a good pair; ``None``: the chord
            that just touches the scanner's field of view.
        max_axial_mm: Largest axial distance of a good pair; ``None``: no limit.
        multi_window: Every single opens a window; otherwise only singles outside an open
            window (GATE's old default).
        delayed_offset_ns: Open a delayed window this long after each opener and count its
            pairs (a randoms estimate); ``None``: no delayed window.

    Raises:
        UserError: An unknown policy, a window that is not positive, an empty energy window,
            or a delayed window that overlaps the prompt one.
    """
    check_settings(window_ns, energy_window, policy, delayed_offset_ns)
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


def check_settings(
    window_ns: float = WINDOW_NS,
    energy_window: tuple[float, float] | None = None,
    policy: str | None = None,
    delayed_offset_ns: float | None = None,
) -> None:
    """Refuse sorter settings that cannot work, before any work is done.

    Args:
        window_ns: The coincidence window.
        energy_window: (low, high) in keV, or ``None``.
        policy: A GATE multiples policy, or ``None``.
        delayed_offset_ns: The delay of a delayed window, or ``None``.

    Raises:
        UserError: A window that is not positive, an empty energy window, an unknown policy,
            or a delayed window that overlaps the prompt one.
    """
    if not (np.isfinite(window_ns) and window_ns > 0):
        raise UserError(f"coincidence window must be > 0 ns, got {window_ns}")
    if energy_window is not None and not energy_window[0] < energy_window[1]:
        raise UserError(f"energy window needs low < high, got {energy_window}")
    if policy is not None and policy not in POLICIES:
        raise UserError(f"unknown multiples policy {policy!r}; choose one of {list(POLICIES)}")
    if delayed_offset_ns is not None and delayed_offset_ns <= window_ns:
        raise UserError(
            f"delayed_offset_ns ({delayed_offset_ns}) must exceed the window ({window_ns} ns)"
        )


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
