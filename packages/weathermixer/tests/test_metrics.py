"""WeatherBench 2 scores against hand-computed values, and the climatology fit."""

from __future__ import annotations

import numpy as np
import pytest
from weathermixer.data import Era5Store
from weathermixer.metrics import Climatology, SkillSums, acc, rmse


def test_rmse_hand_computed():
    w = np.array([0.5, 1.5])  # mean 1
    truth = np.zeros((2, 2, 2))
    forecast = np.zeros((2, 2, 2))
    forecast[0, 0, :] = 2.0  # time 0: errors 2 on the row of weight 0.5
    forecast[1, 1, :] = 1.0  # time 1: errors 1 on the row of weight 1.5
    # per time: mean of w·e² = (0.5·4·2)/4 = 1.0 and (1.5·1·2)/4 = 0.75; RMSE = sqrt(0.875)
    assert rmse(forecast, truth, w) == pytest.approx(np.sqrt(0.875))


def test_acc_hand_computed_and_limits():
    w = np.array([1.0, 1.0])
    clim = np.zeros((2, 2))
    truth = np.array([[[1.0, -1.0], [2.0, 0.0]]])
    assert acc(truth, truth, clim, w) == pytest.approx(1.0)
    assert acc(-truth, truth, clim, w) == pytest.approx(-1.0)
    forecast = np.array([[[1.0, 0.0], [1.0, 0.0]]])
    # Σ f·o = 1 + 2 = 3, Σ f² = 2, Σ o² = 1 + 1 + 4 = 6 -> 3 / sqrt(12)
    assert acc(forecast, truth, clim, w) == pytest.approx(3 / np.sqrt(12))
    # Area weights count: weight 3 on the first row, 1 on the second (normalised to mean 2).
    w2 = np.array([3.0, 1.0])
    num = 3 * 1 + 1 * 2
    den = np.sqrt((3 * 1 + 1 * 1) * (3 * 2 + 1 * 4))
    assert acc(forecast, truth, clim, w2) == pytest.approx(num / den)


def test_skill_sums_equal_direct_scores_and_add_over_parts():
    rng = np.random.default_rng(0)
    w = np.array([0.6, 1.4, 1.4, 0.6])
    truth = rng.normal(size=(3, 2, 2, 4, 5))  # [time, lead, channel, lat, lon]
    fc = truth + rng.normal(scale=0.5, size=truth.shape)
    clim = rng.normal(scale=0.1, size=truth.shape)
    whole = SkillSums(3, 2, 2, [0, 1], w, 20)
    top = SkillSums(3, 2, 2, [0, 1], w[:2], 20)
    bottom = SkillSums(3, 2, 2, [0, 1], w[2:], 20)
    for i in range(3):
        whole.add(i, fc[i], truth[i], clim[i])
        top.add(i, fc[i, ..., :2, :], truth[i, ..., :2, :], clim[i, ..., :2, :])
        bottom.add(i, fc[i, ..., 2:, :], truth[i, ..., 2:, :], clim[i, ..., 2:, :])
    r, a = whole.scores()
    r2, a2 = top.scores(lambda s: s + bottom.sums)
    np.testing.assert_allclose(r, r2)
    np.testing.assert_allclose(a, a2)
    for k in range(2):
        for c in range(2):
            assert r[k, c] == pytest.approx(rmse(fc[:, k, c], truth[:, k, c], w))
            assert a[k, c] == pytest.approx(acc(fc[:, k, c], truth[:, k, c], clim[:, k, c], w))


def test_climatology_recovers_a_harmonic_signal(write_nc, make_era5):
    ds = make_era5(times=4 * 400, nlat=4)
    hours = ds.time.dt.hour.values
    doy = ds.time.dt.dayofyear.values
    signal = 280 + 10 * np.cos(2 * np.pi * (doy - 1) / 365.25) + 3 * np.sin(2 * np.pi * hours / 24)
    ds["t2m"] = ds["t2m"] * 0 + signal[:, None, None].astype(np.float32)
    store = Era5Store(write_nc(ds))
    clim = Climatology.fit(store, range(store.times.size), None)
    assert clim.annual and clim.diurnal
    got = clim.at(store.times[[10, 500, 1000]])[:, 8]
    np.testing.assert_allclose(
        got, signal[[10, 500, 1000], None, None] * np.ones((1, 4, 8)), atol=0.05
    )
    short = Climatology.fit(store, range(40), None)
    assert not short.annual and short.terms == ["mean", "diurnal x2"]
