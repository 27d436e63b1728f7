"""Forecast errors: MAE, MAPE, MASE, bias, pinball loss and interval coverage.

All take arrays of the same shape in the data's units and ignore NaN truths (future steps).
"""

from __future__ import annotations

import numpy as np


def _valid(forecast: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    forecast, actual = np.asarray(forecast, float), np.asarray(actual, float)
    keep = ~np.isnan(actual)
    return forecast[keep], actual[keep]


def mae(forecast: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error."""
    f, a = _valid(forecast, actual)
    return float(np.mean(np.abs(f - a)))


def mape(forecast: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute percentage error in percent (steps with a zero truth left out)."""
    f, a = _valid(forecast, actual)
    keep = a != 0
    return float(100 * np.mean(np.abs((f[keep] - a[keep]) / a[keep]))) if keep.any() else np.nan


def bias(forecast: np.ndarray, actual: np.ndarray) -> float:
    """Mean error, forecast minus truth (positive: the forecast is too high)."""
    f, a = _valid(forecast, actual)
    return float(np.mean(f - a))


def naive_scale(train: np.ndarray, lag: int) -> float:
    """MASE's denominator: the in-sample MAE of the seasonal naive forecast with ``lag``."""
    train = np.asarray(train, float)
    return float(np.mean(np.abs(train[lag:] - train[:-lag])))


def mase(forecast: np.ndarray, actual: np.ndarray, scale: float) -> float:
    """Mean absolute scaled error: MAE over ``naive_scale`` of the training span."""
    return mae(forecast, actual) / scale


def pinball(quantiles: np.ndarray, actual: np.ndarray, levels: list[float]) -> float:
    """Mean pinball loss of ``quantiles`` (last axis: ``levels``) against ``actual``."""
    q = np.asarray(quantiles, float)
    a = np.asarray(actual, float)[..., None]
    error = a - q
    loss = np.maximum(np.asarray(levels) * error, (np.asarray(levels) - 1) * error)
    return float(np.nanmean(loss))


def coverage(lower: np.ndarray, upper: np.ndarray, actual: np.ndarray) -> float:
    """Share of truths inside ``[lower, upper]``."""
    actual = np.asarray(actual, float)
    keep = ~np.isnan(actual)
    inside = (np.asarray(lower)[keep] <= actual[keep]) & (actual[keep] <= np.asarray(upper)[keep])
    return float(np.mean(inside))


def point_metrics(forecast: np.ndarray, actual: np.ndarray, scale: float) -> dict[str, float]:
    """MAE, MAPE, MASE and bias of a point forecast."""
    return {
        "mae": mae(forecast, actual),
        "mape": mape(forecast, actual),
        "mase": mase(forecast, actual, scale),
        "bias": bias(forecast, actual),
    }
