"""The error measures on hand-made numbers."""

import numpy as np
import pytest
from recycle_ts.metrics import bias, coverage, mae, mape, mase, naive_scale, pinball


def test_point_errors_on_hand_made_numbers():
    forecast = np.array([1.0, 3.0, 5.0, np.nan])
    actual = np.array([2.0, 2.0, 4.0, np.nan])  # the unknown last truth is ignored
    assert mae(forecast[:3], actual[:3]) == pytest.approx(1.0)
    assert mae(np.array([1.0, 3.0, 5.0, 9.0]), actual) == pytest.approx(1.0)
    assert mape(forecast[:3], actual[:3]) == pytest.approx(100 * (0.5 + 0.5 + 0.25) / 3)
    assert bias(forecast[:3], actual[:3]) == pytest.approx(1 / 3)


def test_mase_scales_by_the_seasonal_naive_error_of_the_training_span():
    train = np.array([0.0, 1.0, 2.0, 3.0, 5.0])
    assert naive_scale(train, lag=2) == pytest.approx((2 + 2 + 3) / 3)
    assert mase(np.array([1.0]), np.array([3.0]), scale=4.0) == pytest.approx(0.5)


def test_pinball_and_coverage():
    quantiles = np.array([[0.0, 1.0, 2.0]])
    levels = [0.1, 0.5, 0.9]
    # truth 1.5: errors 1.5, 0.5, -0.5 -> losses 0.15, 0.25, 0.05
    assert pinball(quantiles, np.array([1.5]), levels) == pytest.approx((0.15 + 0.25 + 0.05) / 3)
    lower, upper = np.array([0.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0])
    assert coverage(lower, upper, np.array([0.5, 1.0, 2.0])) == pytest.approx(2 / 3)
