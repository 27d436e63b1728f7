"""WeatherBench 2 scores — latitude-weighted RMSE and ACC — and a smooth climatology.

Definitions (Rasp et al. 2024, WeatherBench 2), per variable and lead time, with area weights
w (mean 1, see ``weathermixer.data.latitude_weights``) over the I × J grid:

- RMSE = sqrt( mean over forecasts t of  (1/IJ) Σᵢⱼ wᵢ (fₜᵢⱼ − oₜᵢⱼ)² )
- ACC  = mean over t of  Σ w f′ o′ / sqrt(Σ w f′² · Σ w o′²),  f′ = f − c, o′ = o − c,
  with c the climatology at the valid time.

Both are computed from partial sums, so ranks that each hold a band of rows and some channels
add their sums and get the scores of the whole field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from weathermixer.data import Era5Store, Shard, latitude_weights

__all__ = ["Climatology", "SkillSums", "acc", "latitude_weights", "rmse"]


def rmse(forecast: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> float:
    """Latitude-weighted RMSE of ``[time, lat, lon]`` (or ``[lat, lon]``) fields.

    Args:
        forecast: The forecast.
        truth: The truth, of the same shape.
        weights: Latitude weights of the rows, mean 1 (``latitude_weights``).
    """
    err = (np.asarray(forecast, np.float64) - truth) ** 2 * weights[:, None]
    per_time = err.reshape(-1, *err.shape[-2:]).mean(axis=(-2, -1))
    return float(np.sqrt(per_time.mean()))


def acc(forecast: np.ndarray, truth: np.ndarray, clim: np.ndarray, weights: np.ndarray) -> float:
    """Anomaly correlation coefficient of ``[time, lat, lon]`` fields.

    Args:
        forecast: The forecast.
        truth: The truth, of the same shape.
        clim: The climatology the anomalies are taken from.
        weights: Latitude weights of the rows, mean 1 (``latitude_weights``).
    """
    f = (np.asarray(forecast, np.float64) - clim).reshape(-1, *np.shape(forecast)[-2:])
    o = (np.asarray(truth, np.float64) - clim).reshape(f.shape)
    w = weights[:, None]
    num = (w * f * o).sum(axis=(-2, -1))
    den = np.sqrt((w * f * f).sum(axis=(-2, -1)) * (w * o * o).sum(axis=(-2, -1)))
    return float(np.mean(num / den))


def _harmonics(times: np.ndarray, annual: bool, diurnal: bool) -> np.ndarray:
    """Regressors of the climatology fit at ``times``: [len(times), k]."""
    t = np.asarray(times, dtype="datetime64[s]")
    year_start = t.astype("datetime64[Y]").astype("datetime64[s]")
    year = 2 * np.pi * (t - year_start).astype(np.float64) / (365.25 * 86400.0)
    day = 2 * np.pi * (t - t.astype("datetime64[D]")).astype(np.float64) / 86400.0
    cols = [np.ones(t.size)]
    if annual:
        cols += [f(k * year) for k in (1, 2) for f in (np.cos, np.sin)]
    if diurnal:
        cols += [f(k * day) for k in (1, 2) for f in (np.cos, np.sin)]
    if annual and diurnal:
        cols += [f(day) * g(year) for f in (np.cos, np.sin) for g in (np.cos, np.sin)]
    return np.stack(cols, axis=1)


@dataclass
class Climatology:
    """Per-grid-point least-squares fit of the mean, two annual and two diurnal harmonics and
    their first interaction (the seasonal change of the day–night cycle).

    Smooth in time like WeatherBench 2's 61-day-window climatology, and small: a few
    coefficients per point instead of a field per day of year and hour. Annual terms need a
    year of training data and diurnal terms sub-daily steps; otherwise they are left out
    (``terms`` says which were fitted). Use ``Climatology.fit``.

    Attributes:
        coefficients: Fitted coefficients, ``[k, channels, rows, lon]``.
        annual: Whether the annual harmonics were fitted.
        diurnal: Whether the diurnal harmonics were fitted.
        terms: Names of the fitted terms.
    """

    coefficients: np.ndarray
    annual: bool
    diurnal: bool
    terms: list[str] = field(default_factory=list)

    @classmethod
    def fit(
        cls,
        store: Era5Store,
        times: Sequence[int],
        shard: Shard | None = None,
        part: tuple[int, int] = (0, 1),
        reduce: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> Climatology:
        """Fit to the training times on a shard.

        Args:
            store: The data.
            times: The training time indices.
            shard: The band and channels (default: all of the data).
            part: (k, n): this rank reads every n-th time starting at the k-th, for ranks
                that share a shard.
            reduce: Sums the parts of those ranks (default: one rank reads all).
        """
        shard = shard or Shard.full(store)
        all_index = np.asarray(times)
        stamps = store.times[all_index]
        span_days = (stamps.max() - stamps.min()).astype(np.int64) / 86400.0
        annual = bool(span_days >= 360.0)
        diurnal = store.interval_s < 86400
        x = _harmonics(stamps, annual, diurnal)
        xtx = x.T @ x
        k = x.shape[1]
        start, stop, _ = shard.rows.indices(store.shape[0])
        xty = np.zeros((k, len(shard.state), stop - start, store.shape[1]))
        for row, t in list(zip(x, all_index, strict=True))[part[0] :: part[1]]:
            fields = store.read(int(t), shard.rows, shard.state).astype(np.float64)
            xty += row[:, None, None, None] * fields[None]
        if reduce is not None:
            xty = reduce(xty)
        coef = np.linalg.solve(xtx, xty.reshape(k, -1)).reshape(xty.shape)
        terms = ["mean"]
        terms += ["annual x2"] if annual else []
        terms += ["diurnal x2"] if diurnal else []
        terms += ["diurnal x annual"] if annual and diurnal else []
        return cls(coef.astype(np.float32), annual, diurnal, terms)

    def at(self, times: np.ndarray) -> np.ndarray:
        """The climatology at some times: ``[len(times), channels, rows, lon]``.

        Args:
            times: The times (datetime64).
        """
        x = _harmonics(np.atleast_1d(times), self.annual, self.diurnal).astype(np.float32)
        return np.tensordot(x, self.coefficients, axes=(1, 0))


class SkillSums:
    """Partial sums for RMSE and ACC per initial time, lead and channel on one rank's part.

    ``add`` takes the fields of one initial time, ``scores`` sums the ranks' parts and returns
    RMSE and ACC ``[K, channels]`` for all channels of the model.

    Args:
        n_times: Initial times.
        n_leads: Lead times (K).
        n_channels: State channels of the whole model.
        channels: The state channels of this rank's part.
        weights: Latitude weights of this rank's rows (mean 1 over the globe).
        n_points: Grid points of the whole globe.
    """

    def __init__(
        self,
        n_times: int,
        n_leads: int,
        n_channels: int,
        channels: Sequence[int],
        weights: np.ndarray,
        n_points: int,
    ) -> None:
        self.channels = list(channels)
        self.weights = weights[None, None, :, None]  # this rank's rows, mean 1 over the globe
        self.n_points = n_points
        self.sums = np.zeros((n_times, n_leads, n_channels, 4))

    def add(self, i: int, forecast: np.ndarray, truth: np.ndarray, clim: np.ndarray) -> None:
        """Add the sums of one initial time.

        Args:
            i: The initial time's index (< ``n_times``).
            forecast: ``[K, c, rows, lon]`` in physical units.
            truth: The truth, of the same shape.
            clim: The climatology at the same valid times.
        """
        w, cols = self.weights, self.channels
        f = forecast.astype(np.float64) - clim
        o = truth.astype(np.float64) - clim
        row = self.sums[i]  # [K, C, 4]
        row[:, cols, 0] = (w * (f - o) ** 2).sum(axis=(-2, -1)) / self.n_points
        row[:, cols, 1] = (w * f * o).sum(axis=(-2, -1))
        row[:, cols, 2] = (w * f * f).sum(axis=(-2, -1))
        row[:, cols, 3] = (w * o * o).sum(axis=(-2, -1))

    def scores(
        self, reduce: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """RMSE and ACC, ``[K, channels]`` each.

        Args:
            reduce: Sums an array over all ranks (default: one rank holds everything).
        """
        total = self.sums if reduce is None else reduce(self.sums)
        if not total.any():
            raise ValueError("no forecasts were scored")
        rmse_ = np.sqrt(total[..., 0].mean(axis=0))
        with np.errstate(invalid="ignore", divide="ignore"):
            acc_ = (total[..., 1] / np.sqrt(total[..., 2] * total[..., 3])).mean(axis=0)
        return rmse_, acc_
