"""The practitioner's classical baseline: seasonal Holt-Winters exponential smoothing.

Parameters and initial states are estimated on the training span only (statsmodels'
``ExponentialSmoothing``, additive season); the season (one cycle, or a week of daily cycles)
and the trend (none or damped additive) are chosen on the validation span. Each forecast then
runs the fitted filter, with its parameters fixed, over the data up to its origin.
"""

from __future__ import annotations

import warnings

import numpy as np

from recycle_ts.data import to_steps

_SMOOTHING = ("smoothing_level", "smoothing_trend", "smoothing_seasonal", "damping_trend")


def _model(y: np.ndarray, period: int, trend: str | None, params: dict | None = None):
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    options: dict = {"trend": trend, "damped_trend": trend is not None, "seasonal": "add",
                     "seasonal_periods": period}  # fmt: skip
    if params is None:
        # estimating a week of half-hourly initial states is slow and no better: heuristic
        method = "estimated" if period <= 48 else "heuristic"
        return ExponentialSmoothing(y, initialization_method=method, **options)
    return ExponentialSmoothing(
        y,
        initialization_method="known",
        initial_level=params["initial_level"],
        initial_trend=params["initial_trend"] if trend else None,
        initial_seasonal=params["initial_seasons"],
        **options,
    )


def _forecasts(y, period, trend, params, origins, steps):
    fixed = {k: params[k] for k in _SMOOTHING if params.get(k) is not None}
    fixed = {k: v for k, v in fixed.items() if not np.isnan(v)}
    if not trend:
        fixed = {k: v for k, v in fixed.items() if k in ("smoothing_level", "smoothing_seasonal")}
    out = []
    for origin in origins:
        result = _model(y[:origin], period, trend, params).fit(optimized=False, **fixed)
        out.append(result.forecast(steps))
    return np.array(out)


def ets_forecasts(
    values: np.ndarray,
    train_end: int,
    validation: np.ndarray,
    test: np.ndarray,
    horizon: int,
    week: int | None = None,
) -> tuple[np.ndarray, dict[str, str]]:
    """Holt-Winters forecasts from each test origin.

    Args:
        values: The series in cycles, ``(cycles, cycle, targets)``.
        train_end: First cycle after the training span.
        validation: Validation origins (cycles), to choose season and trend.
        test: Test origins (cycles).
        horizon: Cycles per forecast.
        week: Cycles per week where a weekly season is a candidate (daily cycles), else None.

    Returns:
        Forecasts ``(len(test), horizon, cycle, targets)`` and the chosen form per target
        (e.g. ``"season 48, trend none"``).
    """
    cycle, targets = values.shape[1], values.shape[2]
    steps = to_steps(values)
    periods = [cycle]
    if week and train_end >= 3 * week:
        periods.append(week * cycle)
    out = np.empty((len(test), horizon, cycle, targets))
    chosen = {}
    for i in range(targets):
        y = steps[:, i]
        truth = np.stack([y[t * cycle : (t + horizon) * cycle] for t in validation])
        best = None
        for period in periods:
            for trend in (None, "add"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # convergence chatter of the optimiser
                    params = _model(y[: train_end * cycle], period, trend).fit().params
                    val = _forecasts(y, period, trend, params, validation * cycle,
                                     horizon * cycle)  # fmt: skip
                error = float(np.mean(np.abs(val - truth)))
                if best is None or error < best[0]:
                    best = (error, period, trend, params)
        _, period, trend, params = best
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            forecast = _forecasts(y, period, trend, params, test * cycle, horizon * cycle)
        out[..., i] = forecast.reshape(len(test), horizon, cycle)
        chosen[f"target{i}"] = f"season {period}, trend {trend or 'none'}"
    return out, chosen
