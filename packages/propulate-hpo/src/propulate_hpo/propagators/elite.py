"""A child sampled from a Gaussian fitted to the best individuals.

The GA's mutation moves one gene at a time by a fixed share of its range: it cannot follow a
narrow valley that runs diagonally, and it cannot get more precise than its step. A Gaussian
fitted to the elite (as in the cross-entropy method or EMNA) has neither limit: its covariance
shrinks as the elite converges and stretches along the valley the elite lies in. It keeps no
state, so asynchronous workers that each know a slightly different population need nothing
kept consistent (unlike CMA-ES's evolution paths).
"""

from __future__ import annotations

import math

import numpy as np

from propulate_hpo.population import Pool
from propulate_hpo.propagators.base import Propagator
from shared_hpc.errors import UserError


class EliteGaussian(Propagator):
    """One child from N(best, widen² C): C is the covariance of the ``pop_size`` best individuals.

    ``widen`` > 1 keeps the elite from shrinking faster than it moves: fitted exactly (1.0), it
    often collapsed short of the optimum of rosenbrock's curved valley in trial runs (the
    cross-entropy method's premature convergence); widened by 1.25 it rarely did.

    Every numeric gene also gets independent noise of ``jitter`` times its (widened) elite
    standard deviation, so that a gene in which the elite is spread still moves when the elite's
    points lie in a lower-dimensional subspace (few points in many dimensions, or parents that
    share genes after crossover). Each categorical gene is that of a random elite member, so
    categories are drawn with their frequency in the elite. With fewer than two individuals
    there is nothing to fit: the child is uniformly random.

    Args:
        pop_size: Size of the elite.
        widen: Factor on the elite's standard deviations.
        jitter: Independent noise per numeric gene, as a share of its widened standard
            deviation.
        probability: Probability of being applied.
    """

    parents, offspring = -1, 1

    def __init__(
        self, pop_size: int, widen: float = 1.25, jitter: float = 0.03, probability: float = 1.0
    ) -> None:
        super().__init__(probability)
        if pop_size < 2:
            raise UserError(f"EliteGaussian: pop_size must be >= 2, got {pop_size}")
        if not (math.isfinite(widen) and widen > 0):
            raise UserError(f"EliteGaussian: widen must be > 0, got {widen}")
        if not (math.isfinite(jitter) and jitter >= 0):
            raise UserError(f"EliteGaussian: jitter must be >= 0, got {jitter}")
        self.pop_size = pop_size
        self.widen = widen
        self.jitter = jitter
        self._weights = np.empty(0)

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        if pool.is_everything:  # the incremental index of the best rows, best first
            elite = pool.population.genes[pool.population.best(self.pop_size)]
        else:
            elite = pool.genes[np.argsort(pool.losses, kind="stable")[: self.pop_size]]
        k = len(elite)
        if k < 2:  # nothing to fit yet
            return pool.offspring(pool.space.sample(rng))
        space = pool.space
        numeric = space.numeric_index if space.has_categorical else None
        points = elite if numeric is None else elite[:, numeric]
        draws = rng.standard_normal(k + points.shape[1])  # one call: calls cost more than numbers
        mean_weights = self._mean_weights(k)
        deviations = points - mean_weights @ points
        # z @ deviations / sqrt(k - 1) has exactly the elite's covariance: no factorisation
        step = draws[:k] @ deviations
        if self.jitter:
            # per-gene standard deviation times sqrt(k - 1), like the step before its scaling
            spread = np.sqrt(mean_weights @ (deviations * deviations) * k)
            step += self.jitter * spread * draws[k:]
        step *= self.widen / math.sqrt(k - 1)
        if numeric is None:
            return pool.offspring(elite[0] + step)
        # categorical genes: each from a random elite member (their frequencies in the elite)
        categorical = space.categorical_index
        members = (rng.random(len(categorical)) * k).astype(np.int64)
        child = elite[0].copy()
        child[categorical] = elite[members, categorical]
        child[numeric] += step
        return pool.offspring(child)

    def _mean_weights(self, k: int) -> np.ndarray:
        """Weights 1/k: ``weights @ points`` is the mean, a few times faster than ``mean``."""
        if len(self._weights) != k:
            self._weights = np.full(k, 1.0 / k)
        return self._weights

    def __repr__(self) -> str:
        return f"EliteGaussian({self.pop_size}, widen={self.widen}, jitter={self.jitter})"
