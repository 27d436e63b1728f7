"""Tuning on validation, and the comparison that uses the chosen settings."""

from dataclasses import replace

import numpy as np
import pytest
from recycle_ts.comparison import compare, tune
from recycle_ts.config import ForecastConfig
from recycle_ts.data import split_cycles, to_cycles

SMALL = {"history": 7, "horizon": 1, "epochs": 2, "heads": 2, "cycle": "24",
         "baseline": "seasonal_naive"}  # fmt: skip
GRID = {"width": (8, 16), "lr": (1e-3, 1e-2)}


@pytest.fixture
def series(load_frame):
    return to_cycles(load_frame, "time", ["load"], cycle=24)


def test_tuning_keeps_the_lowest_validation_loss_and_never_sees_the_test_span(series):
    config = ForecastConfig(target=["load"], **SMALL)
    tuning = tune(series, config, "mlp", GRID)
    assert [t[0] for t in tuning.trials] == [{"width": w, "lr": lr} for w in (8, 16)
                                            for lr in (1e-3, 1e-2)]  # fmt: skip
    assert tuning.chosen == min(tuning.trials, key=lambda t: t[1])[0]
    assert len({t[1] for t in tuning.trials}) == 4  # the settings change the outcome
    split = split_cycles(series.cycles, 7, 1, 0.15, 0.15)
    values = series.values.copy()
    values[split.test[0] :] *= 3.0  # a test span unlike anything before it
    changed = tune(replace(series, values=values), config, "mlp", GRID)
    assert changed.trials == tuning.trials


def test_a_network_without_width_is_tuned_on_the_learning_rate_alone(series):
    tuning = tune(series, ForecastConfig(target=["load"], **SMALL), "dlinear", GRID)
    assert [t[0] for t in tuning.trials] == [{"lr": 1e-3}, {"lr": 1e-2}]


def test_compare_trains_each_model_with_its_own_settings(series):
    config = ForecastConfig(target=["load"], **SMALL, width=16)
    comparison = compare(series, config, ["mlp", "dlinear"], [0, 1],
                         settings={"mlp": {"width": 8}})  # fmt: skip
    sizes = {r.model: r.result.parameters for r in comparison.runs}
    default = compare(series, config, ["mlp"], [0]).runs[0].result.parameters
    assert sizes["mlp"] < default
    assert np.isfinite([r["mae"] for r in comparison.rows()]).all()
