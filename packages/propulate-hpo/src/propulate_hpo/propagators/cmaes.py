"""CMA-ES (basic and active), run asynchronously over the population a worker knows.

Each worker keeps its own distribution N(m, σ²C) in unit coordinates ([0, 1] per parameter)
and samples one candidate per breed. Whenever λ new evaluated candidates have arrived (its own
and its peers'), it performs one CMA-ES generation on the newest λ of them, with the standard
parameter settings of Hansen's tutorial (arXiv:1604.00772). ``active=True`` also uses the worst
candidates with negative weights (active covariance update, Jastrebski & Arnold 2006).
Samples outside the bounds are redrawn (up to 10 times), then clipped.

Peers' candidates come from their own distributions, and a worker breeds random candidates when
it would otherwise breed a duplicate: to this worker they are external solutions, possibly far
outside its (converged) distribution. As in Hansen's injection of external solutions
(arXiv:1110.4181), every step ``y`` enters the update with its Mahalanobis norm clipped to
``√n + 2n/(n+2)``, and σ grows by at most a factor e per generation; without this one
distant point can blow σ up (or overflow it).

The distribution is not checkpointed: after a resume it adapts again from the unit-cube centre.
"""

from __future__ import annotations

import math

import numpy as np

from propulate_hpo.population import FAILED, Pool
from propulate_hpo.propagators.base import Propagator
from propulate_hpo.space import SearchSpace
from shared_hpc.errors import UserError


class CMAES(Propagator):
    """Asynchronous CMA-ES; ``lam`` candidates per generation (default 4 + ⌊3 ln n⌋).

    Args:
        active: Use the active (negative-weight) covariance update.
        lam: Candidates per generation; ``None``: 4 + ⌊3 ln n⌋ in n dimensions.
        sigma: Initial step size in unit coordinates (each parameter's range is 1).
    """

    parents, offspring = -1, 1

    def __init__(self, active: bool = False, lam: int | None = None, sigma: float = 0.3) -> None:
        super().__init__()
        if lam is not None and lam < 2:
            raise UserError(f"CMAES: lam must be >= 2, got {lam}")
        if not 0 < sigma <= 1:
            raise UserError(f"CMAES: sigma (in unit coordinates) must be in (0, 1], got {sigma}")
        self.active = active
        self.lam_requested = lam
        self.sigma0 = sigma
        self.n = 0

    def check(self, space: SearchSpace) -> None:
        if space.has_categorical:
            raise UserError("CMAES needs a numeric search space (no categoricals)")

    def _setup(self, n: int) -> None:
        self.n = n
        lam = self.lam_requested or 4 + int(3 * math.log(n))
        mu = lam // 2
        raw = math.log((lam + 1) / 2) - np.log(np.arange(1, lam + 1))
        pos, neg = raw[:mu], raw[mu:]
        self.mu_eff = pos.sum() ** 2 / (pos**2).sum()
        self.c_sigma = (self.mu_eff + 2) / (n + self.mu_eff + 5)
        self.d_sigma = 1 + 2 * max(0.0, math.sqrt((self.mu_eff - 1) / (n + 1)) - 1) + self.c_sigma
        self.c_c = (4 + self.mu_eff / n) / (n + 4 + 2 * self.mu_eff / n)
        self.c_1 = 2 / ((n + 1.3) ** 2 + self.mu_eff)
        self.c_mu = min(
            1 - self.c_1, 2 * (self.mu_eff - 2 + 1 / self.mu_eff) / ((n + 2) ** 2 + self.mu_eff)
        )
        weights = np.zeros(lam)
        weights[:mu] = pos / pos.sum()
        if self.active and len(neg) > 0 and self.c_mu > 0:
            mu_eff_neg = neg.sum() ** 2 / (neg**2).sum()
            scale = min(
                1 + self.c_1 / self.c_mu,
                1 + 2 * mu_eff_neg / (self.mu_eff + 2),
                (1 - self.c_1 - self.c_mu) / (n * self.c_mu),
            )
            weights[mu:] = scale * neg / np.abs(neg).sum()
        self.lam, self.mu, self.weights = lam, mu, weights
        self.chi_n = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))
        self.clip_y = math.sqrt(n) + 2 * n / (n + 2)
        self.mean = np.full(n, 0.5)
        self.sigma = self.sigma0
        self.cov = np.eye(n)
        self.eig_b = np.eye(n)
        self.eig_d = np.ones(n)
        self.p_sigma = np.zeros(n)
        self.p_c = np.zeros(n)
        self.generation = 0
        self._cursor = 0
        self._fresh: list[int] = []

    def _inv_sqrt(self, y: np.ndarray) -> np.ndarray:
        return self.eig_b @ ((self.eig_b.T @ y) / self.eig_d)

    def _update(self, x: np.ndarray, losses: np.ndarray) -> None:
        """One CMA-ES generation from λ evaluated points ``x`` (rows, unit coordinates)."""
        order = np.argsort(losses, kind="stable")
        y = (x[order] - self.mean) / self.sigma
        mahalanobis = np.linalg.norm((y @ self.eig_b) / self.eig_d, axis=1)
        y *= np.minimum(1.0, self.clip_y / np.maximum(mahalanobis, 1e-300))[:, None]
        w = self.weights
        y_w = w[: self.mu] @ y[: self.mu]
        self.mean = self.mean + self.sigma * y_w
        n = self.n
        self.p_sigma = (1 - self.c_sigma) * self.p_sigma + math.sqrt(
            self.c_sigma * (2 - self.c_sigma) * self.mu_eff
        ) * self._inv_sqrt(y_w)
        self.generation += 1
        norm = np.linalg.norm(self.p_sigma)
        h_sigma = (
            norm / math.sqrt(1 - (1 - self.c_sigma) ** (2 * self.generation))
            < (1.4 + 2 / (n + 1)) * self.chi_n
        )
        self.p_c = (1 - self.c_c) * self.p_c + h_sigma * math.sqrt(
            self.c_c * (2 - self.c_c) * self.mu_eff
        ) * y_w
        w_circ = w.copy()
        negative = w < 0
        if negative.any():
            z = np.array([self._inv_sqrt(yi) for yi in y[negative]])
            w_circ[negative] *= n / np.maximum((z**2).sum(axis=1), 1e-300)
        delta = (1 - h_sigma) * self.c_c * (2 - self.c_c)
        rank_mu = (w_circ[:, None] * y).T @ y
        self.cov = (
            (1 + self.c_1 * delta - self.c_1 - self.c_mu * w.sum()) * self.cov
            + self.c_1 * np.outer(self.p_c, self.p_c)
            + self.c_mu * rank_mu
        )
        self.sigma *= math.exp(min(1.0, (self.c_sigma / self.d_sigma) * (norm / self.chi_n - 1)))
        self.sigma = min(max(self.sigma, 1e-12), 1.0)
        self.cov = (self.cov + self.cov.T) / 2
        eig_d2, self.eig_b = np.linalg.eigh(self.cov)
        eig_d2 = np.maximum(eig_d2, 1e-20 * max(eig_d2.max(), 1e-20))
        if eig_d2.max() / eig_d2.min() > 1e14:  # keep the condition number bounded
            eig_d2 += eig_d2.max() / 1e14
        self.eig_d = np.sqrt(eig_d2)
        self.cov = (self.eig_b * eig_d2) @ self.eig_b.T

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        population = pool.population
        space = population.space
        if self.n != space.dim:
            self._setup(space.dim)
        for row in range(self._cursor, population.n):
            if population.status[row] != FAILED:
                self._fresh.append(row)
        self._cursor = population.n
        if len(self._fresh) >= self.lam:
            rows = np.array(self._fresh[-self.lam :])
            self._fresh = []
            self._update(space.to_unit(population.genes[rows]), population.loss[rows])
        for _ in range(10):
            x = self.mean + self.sigma * (self.eig_b @ (self.eig_d * rng.standard_normal(self.n)))
            if np.all((x >= 0) & (x <= 1)):
                break
        return pool.offspring(space.from_unit(np.clip(x, 0.0, 1.0)))


def BasicCMA(lam: int | None = None, sigma: float = 0.3) -> CMAES:
    """CMA-ES with positive recombination weights only.

    Args:
        lam: Candidates per generation (default 4 + ⌊3 ln n⌋).
        sigma: Initial step size in unit coordinates.
    """
    return CMAES(active=False, lam=lam, sigma=sigma)


def ActiveCMA(lam: int | None = None, sigma: float = 0.3) -> CMAES:
    """CMA-ES with the active (negative-weight) covariance update.

    Args:
        lam: Candidates per generation (default 4 + ⌊3 ln n⌋).
        sigma: Initial step size in unit coordinates.
    """
    return CMAES(active=True, lam=lam, sigma=sigma)
