"""The fit recovers a known k; batch limit, scaling, Pareto front and the recommendation."""

import math

import numpy as np
import pytest
from energy_scaling.analysis import (
    analyze,
    critical_batch,
    fit_energy,
    fit_rates,
    pareto_front,
)
from energy_scaling.recommend import recommend_run

from shared_hpc import UserError


def test_the_fit_recovers_a_known_k_with_its_confidence_interval(make_point):
    rng = np.random.default_rng(1)
    k, intercept = 0.35, 0.02  # kWh per device-hour, kWh
    points = []
    for ranks in (1, 2, 4, 8):
        for seconds in (600, 1200, 2400):
            hours = ranks * seconds / 3600
            kwh = k * hours + intercept + rng.normal(0, 0.01)
            points.append(make_point(ranks, 64, seconds, kwh * 3.6e6))
    fit = fit_energy(points)
    assert fit.k == pytest.approx(k, rel=0.02)
    assert fit.k_ci[0] < k < fit.k_ci[1] and fit.k_ci[1] - fit.k_ci[0] < 0.02
    assert fit.intercept_ci[0] < intercept < fit.intercept_ci[1]
    assert fit.r2 > 0.99 and fit.points == 12 and not fit.measured
    assert fit.watts_per_device == pytest.approx(350, rel=0.02)
    value, low, high = fit.predict(2.0)
    assert low < value < high and value == pytest.approx(0.72, rel=0.02)
    through_origin = fit_energy(points, intercept=False)
    assert through_origin.intercept == 0 and through_origin.k == pytest.approx(k, rel=0.05)


def test_the_prediction_interval_never_goes_below_zero_energy(make_point):
    """Four noisy points of small runs, as in the demo: the interval is wider than the value."""
    # (ranks, seconds, joules)
    runs = [(1, 5, 100.0), (1, 10, 40.0), (2, 5, 260.0), (2, 10, 120.0)]
    fit = fit_energy([make_point(ranks, 32, seconds, j) for ranks, seconds, j in runs])
    value, low, high = fit.predict(1 * 5 / 3600)
    assert low == 0.0 and high > value > 0.0


def test_too_few_or_degenerate_points_are_refused(make_point):
    with pytest.raises(UserError, match="at least 2 finished points"):
        fit_energy([make_point(1, 32, 10, 100)])
    same = [make_point(1, 32, 10, 100), make_point(1, 64, 10, 120)]
    with pytest.raises(UserError, match="same device-hours"):
        fit_energy(same)


def test_k_regressed_on_samples_and_updates_per_device_hour(make_point):
    rng = np.random.default_rng(2)
    points = []
    for g in (32, 64, 128, 256, 512):
        for seconds in (500.0, 900.0):
            p = make_point(1, g, seconds, 1.0)
            s = p["samples_per_device_hour"] / 1e6
            u = p["updates_per_device_hour"] / 1e6
            kwh_per_dh = 0.2 + 0.004 * s + 0.5 * u + rng.normal(0, 1e-4)
            p.metrics["energy_j"] = kwh_per_dh * p["device_hours"] * 3.6e6
            points.append(p)
    rates = fit_rates(points)
    assert rates.coefficients["samples"] == pytest.approx(0.004, rel=0.05)
    assert rates.coefficients["updates"] == pytest.approx(0.5, rel=0.05)
    assert rates.r2 > 0.99
    assert fit_rates(points[:3]) is None


def test_the_critical_batch_is_where_the_metric_leaves_the_tolerance(make_point):
    metrics = {64: 0.90, 256: 0.93, 1024: 0.925, 4096: 0.85, 8192: 0.93}
    points = [make_point(1, g, 10, 100, metric=m) for g, m in metrics.items()]
    limit = critical_batch(points, tolerance=0.01)
    assert limit.best == 0.93 and limit.critical == 1024
    assert limit.degraded == [4096, 8192]  # beyond the first degradation


def test_speedup_and_efficiency(make_point):
    points = [make_point(1, 64, 100, 10), make_point(2, 64, 60, 10)]
    rows = analyze(points).scaling["resnet18"]
    assert [r["ranks"] for r in rows] == [1, 2]
    assert rows[1]["speedup"] == pytest.approx(100 / 60)
    assert rows[1]["efficiency"] == pytest.approx(100 / 60 / 2)


def test_pareto_front():
    pairs = [(10, 5), (5, 10), (7, 7), (8, 8), (5, 12), (20, 1)]
    assert pareto_front(pairs) == [1, 2, 0, 5]


def test_recommend_least_energy_under_a_deadline_and_fastest_under_a_budget(sweep_points):
    analysis = analyze(sweep_points)
    any_time = recommend_run(analysis)
    assert any_time.basis == "to target"
    assert [c.point for c in any_time.front] == ["r8-g128-l16", "r4-g64-l16", "r2-g32-l16",
                                                 "r1-g32-l32"]  # fmt: skip
    assert any_time.choice.point == "r1-g32-l32"
    assert any_time.skipped == ["r8-g256-l32 did not reach the target 0.9"]
    deadline = recommend_run(analysis, deadline_s=130)
    assert deadline.choice.point == "r2-g32-l16"  # 120 s, 26 kJ: less than 4 ranks' 48 kJ
    budget = recommend_run(analysis, energy_budget_kwh=50e3 / 3.6e6)
    assert budget.choice.point == "r4-g64-l16"  # fastest within 50 kJ
    assert recommend_run(analysis, deadline_s=10).choice is None
    c = deadline.choice
    assert c.predicted_low < c.predicted_kwh < c.predicted_high
    data = deadline.to_dict()
    assert data["choice"]["point"] == "r2-g32-l16" and len(data["front"]) == 4
    assert "Recommended (least energy within 130 s): r2-g32-l16" in deadline.text()
    with pytest.raises(UserError, match="not both"):
        recommend_run(analysis, deadline_s=1, energy_budget_kwh=1)


def test_without_any_target_the_whole_training_is_compared(make_point):
    points = [make_point(1, 32, 100, 1e4), make_point(2, 32, 60, 1.5e4)]
    choice = recommend_run(analyze(points))
    assert choice.basis == "whole training" and choice.choice.point == "r1-g32-l32"
    assert math.isnan(choice.choice.predicted_low)  # two points: no residual freedom
