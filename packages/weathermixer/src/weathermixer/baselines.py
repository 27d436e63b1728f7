"""Damped persistence: the best linear forecast from the initial anomaly alone.

``f(t₀ + k) = c(t₀ + k) + a_k · (o(t₀) − c(t₀))`` with the climatology c and one coefficient
a_k per lead k, channel and latitude row, fitted by least squares on the training times
(``a_k = Σ o′ₜ o′ₜ₊ₖ / Σ o′ₜ²`` over times and longitudes). It is persistence at short leads
and the climatology at long ones, and beats both in between: a model has to beat it to show
that it knows more than how fast anomalies decay.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from weathermixer.data import Era5Store, Shard
from weathermixer.metrics import Climatology


@dataclass
class DampedPersistence:
    """Regression coefficients of the anomaly at each lead on the initial anomaly.

    Use ``DampedPersistence.fit``.

    Attributes:
        coefficients: ``a_k`` per lead step, channel and row, ``[K, channels, rows]``.
        lead_steps: Time steps of the data per lead step.
    """

    coefficients: np.ndarray
    lead_steps: int

    @classmethod
    def fit(
        cls,
        store: Era5Store,
        times: Sequence[int],
        climatology: Climatology,
        lead_steps: int,
        n_leads: int,
        shard: Shard | None = None,
    ) -> DampedPersistence:
        """Fit on consecutive training times of one shard, reading each time once.

        Args:
            store: The training data.
            times: Training time indices (pairs are formed where both ends are in ``times``).
            climatology: The climatology the anomalies are taken from (on ``shard``).
            lead_steps: Time steps of the data per lead step.
            n_leads: Lead steps K.
            shard: The band and channels (default: all of the data).
        """
        shard = shard or Shard.full(store)
        wanted = set(int(t) for t in times)
        start, stop, _ = shard.rows.indices(store.shape[0])
        shape = (n_leads, len(shard.state), stop - start)
        cross, power = np.zeros(shape), np.zeros(shape)
        recent: deque[tuple[int, np.ndarray]] = deque()
        horizon = n_leads * lead_steps
        for t in sorted(wanted):
            now = store.read(t, shard.rows, shard.state).astype(np.float64)
            now -= climatology.at(store.times[t : t + 1])[0]
            while recent and recent[0][0] < t - horizon:
                recent.popleft()
            for t0, past in recent:
                k, rest = divmod(t - t0, lead_steps)
                if not rest and 1 <= k <= n_leads:
                    cross[k - 1] += (past * now).sum(axis=-1)
                    power[k - 1] += (past * past).sum(axis=-1)
            recent.append((t, now))
        coefficients = np.divide(cross, power, out=np.zeros(shape), where=power > 0)
        return cls(coefficients.astype(np.float32), lead_steps)

    def forecast(
        self, initial: np.ndarray, clim_initial: np.ndarray, clim: np.ndarray
    ) -> np.ndarray:
        """The forecast at every lead: ``[K, channels, rows, lon]``.

        Args:
            initial: The initial state ``[channels, rows, lon]``.
            clim_initial: The climatology at the initial time.
            clim: The climatology at the valid times, ``[K, channels, rows, lon]``.
        """
        anomaly = initial - clim_initial
        return clim + self.coefficients[..., None] * anomaly[None]
