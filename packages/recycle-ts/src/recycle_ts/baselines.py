"""Cycle profiles: forecasters of their own and the references of the residual models.

Each profile forecasts the ``horizon`` cycles from an origin using only the cycles before it:

- ``persistence``: the last cycle, repeated.
- ``mean``: the mean of the last ``n`` cycles.
- ``day_type``: for each forecast cycle, the NaN-ignoring mean of the last ``n`` cycles of its
  day type (weekday / Saturday / Sunday-or-holiday); the last cycle where none is known yet.
- ``seasonal_naive``: the cycle one season earlier (``season`` cycles, a week for days).
"""

from __future__ import annotations

import warnings

import numpy as np

from recycle_ts.config import BASELINES
from shared_hpc import UserError


def _nanmean(cycles: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN slot stays NaN
        return np.nanmean(cycles, axis=0)


def profile_forecast(
    name: str,
    past: np.ndarray,
    past_types: np.ndarray,
    future_types: np.ndarray,
    n: int = 3,
    season: int = 7,
) -> np.ndarray:
    """Forecast ``len(future_types)`` cycles after ``past`` with the profile ``name``.

    Args:
        name: One of ``persistence``, ``mean``, ``day_type``, ``seasonal_naive``.
        past: The cycles before the origin, shape ``(cycles, cycle, targets)``.
        past_types: Day type of each past cycle (``data.day_types``).
        future_types: Day type of each forecast cycle.
        n: Cycles averaged by ``mean`` and ``day_type``.
        season: Cycles per season of ``seasonal_naive``.

    Returns:
        Shape ``(horizon, cycle, targets)``.

    Raises:
        UserError: An unknown name, or no past cycle.
    """
    if name not in BASELINES:
        raise UserError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    if len(past) == 0:
        raise UserError("a profile forecast needs at least one past cycle")
    horizon = len(future_types)
    last = past[-1]
    if name == "persistence":
        return np.repeat(last[None], horizon, axis=0)
    if name == "mean":
        return np.repeat(_nanmean(past[-n:])[None], horizon, axis=0)
    out = np.empty((horizon, *last.shape))
    if name == "seasonal_naive":
        origin = len(past)
        for k in range(horizon):
            j = origin + k - season * ((k // season) + 1)
            out[k] = past[j] if j >= 0 else last
        return out
    for k, kind in enumerate(future_types):
        same = np.flatnonzero(past_types[: len(past)] == kind)[-n:]
        out[k] = _nanmean(past[same]) if len(same) else last
        gaps = np.isnan(out[k])
        out[k][gaps] = last[gaps]
    return out


def profile_table(
    name: str, values: np.ndarray, types: np.ndarray, horizon: int, n: int = 3, season: int = 7
) -> np.ndarray:
    """The profile forecast from every origin 1..cycles of ``values``, for later slicing.

    Args:
        name: The profile.
        values: Shape ``(cycles, cycle, targets)``.
        types: Day types of the cycles and of ``horizon`` more after them.
        horizon: Cycles per forecast.
        n: Cycles averaged by ``mean`` and ``day_type``.
        season: Season of ``seasonal_naive``.

    Returns:
        ``table[t]`` is the forecast made at origin ``t`` (from cycles ``< t``) for cycles
        ``t .. t + horizon - 1``; shape ``(cycles + 1, horizon, cycle, targets)``, NaN at 0.
    """
    cycles = len(values)
    if len(types) < cycles + horizon:
        raise UserError(f"day types cover {len(types)} cycles, {cycles + horizon} are needed")
    table = np.full((cycles + 1, horizon, *values.shape[1:]), np.nan)
    for t in range(1, cycles + 1):
        table[t] = profile_forecast(
            name, values[:t], types[:t], types[t : t + horizon], n=n, season=season
        )
    return table
