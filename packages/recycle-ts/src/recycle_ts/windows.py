"""Forecast windows: history, profile forecasts, calendar and covariates around each origin.

An origin ``t`` is the index of the first forecast cycle: the window holds cycles
``t - history .. t - 1`` as history and ``t .. t + horizon - 1`` as horizon. The profile
forecast of every history cycle is made from the cycles before that cycle, and the one of the
horizon from the cycles before ``t``, so no window sees a value after its origin except its
target. The calendar features of the horizon are those of the horizon's own days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from recycle_ts.baselines import profile_table
from recycle_ts.config import ForecastConfig
from recycle_ts.data import CycleSeries, Scaler, calendar_features, day_types
from recycle_ts.model import Window
from shared_hpc import UserError


@dataclass(frozen=True)
class Prepared:
    """A series in scaled units with everything its windows need.

    Attributes:
        series: The series (original units).
        values: Scaled targets, ``(cycles, cycle, targets)``.
        covariates: Scaled covariates over the cycles and the horizon after them.
        calendar: Calendar features of the cycles and the horizon after them.
        profile: ``profile[t]``: the scaled profile forecast from origin ``t``.
        starts: Start of every cycle and of the horizon's cycles after them.
    """

    series: CycleSeries
    values: np.ndarray
    covariates: np.ndarray
    calendar: np.ndarray
    profile: np.ndarray
    starts: pd.DatetimeIndex


def prepare(
    series: CycleSeries,
    config: ForecastConfig,
    target_scaler: Scaler,
    covariate_scaler: Scaler,
    future_covariates: np.ndarray | None = None,
    baseline: str | None = None,
) -> Prepared:
    """Scale ``series`` and compute its calendar and profile forecasts.

    Args:
        series: The data.
        config: Horizon, country and profile settings.
        target_scaler: Fitted on the training span.
        covariate_scaler: Fitted on the training span.
        future_covariates: Covariates of the ``horizon`` cycles after the series, shape
            ``(horizon, cycle, covariates)``; NaN when not given.
        baseline: The profile (default ``config.baseline``).
    """
    baseline = baseline or config.baseline
    if baseline == "auto":
        raise UserError("choose the profile first (recycle_ts.training.choose_baseline)")
    horizon = config.horizon
    starts = series.starts.append(series.future_starts(horizon))
    values = target_scaler.transform(series.values)
    future = np.full((horizon, series.cycle, len(series.covariate_names)), np.nan)
    if future_covariates is not None:
        future = future_covariates
    covariates = covariate_scaler.transform(np.concatenate([series.covariates, future]))
    types = day_types(starts, config.country) if series.daily else np.zeros(len(starts), int)
    profile = profile_table(
        baseline,
        values,
        types,
        horizon,
        n=config.profile_cycles,
        season=config.season,
    )
    return Prepared(
        series, values, covariates, calendar_features(starts, config.country), profile, starts
    )


def windows(prep: Prepared, origins: np.ndarray, history: int) -> Window:
    """The windows at ``origins`` as one batch of float32 tensors.

    Raises:
        UserError: An origin leaves too little history (the first cycle has no profile).
    """
    origins = np.asarray(origins, dtype=int)
    if len(origins) and origins.min() < history + 1:
        raise UserError(f"a forecast needs {history + 1} cycles before its origin")
    horizon = prep.profile.shape[1]
    past = np.stack([np.arange(t - history, t) for t in origins])
    future = np.stack([np.arange(t, t + horizon) for t in origins])
    padded = np.concatenate([prep.values, np.full((horizon, *prep.values.shape[1:]), np.nan)])
    arrays = {
        "past": prep.values[past],
        "past_base": prep.profile[past, 0],
        "past_cal": prep.calendar[past],
        "past_cov": prep.covariates[past],
        "future_base": prep.profile[origins],
        "future_cal": prep.calendar[future],
        "future_cov": prep.covariates[future],
        "target": padded[future],
    }
    if np.isnan(arrays["future_cov"]).any():
        raise UserError("covariates of the forecast cycles are missing (pass them as future)")
    return Window(**{k: torch.as_tensor(v, dtype=torch.float32) for k, v in arrays.items()})
