"""Particle swarm optimisation, asynchronous: every worker moves its own particle(s).

As in Propulate, a particle is a worker's own lineage of candidates (with ``particles=k`` a
worker moves k particles in turn, e.g. to get a real swarm on a laptop). Its position is the
particle's last candidate and its velocity the step that led there (``x_t - x_{t-1}``, after
clipping to the bounds), so the swarm needs no state beyond the population: it survives
checkpoints and resumes exactly. The personal best is the particle's best candidate, the global
best the best candidate the worker knows (its island's). Random coefficients are drawn per
dimension.
"""

from __future__ import annotations

import math

import numpy as np

from propulate_hpo.population import FAILED, Pool, Population
from propulate_hpo.propagators.base import Propagator
from propulate_hpo.space import SearchSpace
from shared_hpc.errors import UserError


class BasicPSO(Propagator):
    """v ← w·v + c₁r₁(p − x) + c₂r₂(g − x);  x ← x + v  (Kennedy & Eberhart, Shi & Eberhart).

    Args:
        inertia: w, the share of the velocity kept.
        cognitive: c₁, the pull towards the particle's own best.
        social: c₂, the pull towards the best of the island.
        particles: Particles per worker (each worker's candidates take turns).
    """

    parents, offspring = -1, 1

    def __init__(
        self,
        inertia: float = 0.729,
        cognitive: float = 1.49445,
        social: float = 1.49445,
        particles: int = 1,
    ) -> None:
        super().__init__()
        if cognitive < 0 or social < 0:
            raise UserError("PSO: cognitive and social factors must be >= 0")
        if particles < 1:
            raise UserError(f"PSO: particles must be >= 1, got {particles}")
        self.inertia = inertia
        self.cognitive = cognitive
        self.social = social
        self.particles = particles
        self._own_seen = 0
        self._own_best: dict[int, int] = {}  # particle -> row of its best candidate

    def check(self, space: SearchSpace) -> None:
        if space.has_categorical:
            raise UserError(f"{type(self).__name__} needs a numeric search space (no categoricals)")

    def _update_personal_bests(self, population: Population, own: list[int]) -> None:
        for position in range(self._own_seen, len(own)):
            row, particle = own[position], position % self.particles
            best = self._own_best.get(particle)
            if population.status[row] != FAILED and (
                best is None or population.loss[row] < population.loss[best]
            ):
                self._own_best[particle] = row
        self._own_seen = len(own)

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        population = pool.population
        own = population.lineage.get(population.owner, [])
        self._update_personal_bests(population, own)
        particle, n = len(own) % self.particles, self.particles
        best = population.best(1)
        p_best = self._own_best.get(particle)
        if len(own) < n or len(best) == 0 or p_best is None:
            return pool.offspring(population.space.sample(rng))
        x = population.genes[own[-n]]
        v = x - population.genes[own[-2 * n]] if len(own) >= 2 * n else np.zeros_like(x)
        p = population.genes[p_best]
        g = population.genes[best[0]]
        r1, r2 = rng.random(len(x)), rng.random(len(x))
        v_new = self.velocity(
            v, self.cognitive * r1 * (p - x) + self.social * r2 * (g - x), population.space
        )
        return pool.offspring(x + v_new)

    def velocity(self, v: np.ndarray, pull: np.ndarray, space: SearchSpace) -> np.ndarray:
        """The new velocity of a particle.

        Args:
            v: Its velocity.
            pull: c₁r₁(p − x) + c₂r₂(g − x).
            space: The search space.
        """
        return self.inertia * v + pull


class VelocityClampingPSO(BasicPSO):
    """Basic PSO with |v| ≤ ``v_limit`` × range per dimension.

    Args:
        inertia: w, the share of the velocity kept.
        cognitive: c₁, the pull towards the particle's own best.
        social: c₂, the pull towards the best of the island.
        v_limit: The largest velocity, as a share of each parameter's range.
        particles: Particles per worker.
    """

    def __init__(
        self,
        inertia: float = 0.729,
        cognitive: float = 1.49445,
        social: float = 1.49445,
        v_limit: float = 0.6,
        particles: int = 1,
    ) -> None:
        super().__init__(inertia, cognitive, social, particles)
        if v_limit <= 0:
            raise UserError(f"VelocityClampingPSO: v_limit must be > 0, got {v_limit}")
        self.v_limit = v_limit

    def velocity(self, v: np.ndarray, pull: np.ndarray, space: SearchSpace) -> np.ndarray:
        cap = self.v_limit * space.width
        return np.clip(self.inertia * v + pull, -cap, cap)


class ConstrictionPSO(BasicPSO):
    """Clerc & Kennedy's constriction: v ← χ(v + c₁r₁(p − x) + c₂r₂(g − x)), φ = c₁ + c₂ > 4.

    Args:
        cognitive: c₁, the pull towards the particle's own best.
        social: c₂, the pull towards the best of the island.
        particles: Particles per worker.
    """

    def __init__(self, cognitive: float = 2.05, social: float = 2.05, particles: int = 1) -> None:
        phi = cognitive + social
        if phi <= 4:
            raise UserError(f"ConstrictionPSO: cognitive + social must be > 4, got {phi}")
        chi = 2.0 / abs(2.0 - phi - math.sqrt(phi * phi - 4.0 * phi))
        super().__init__(chi, cognitive, social, particles)

    def velocity(self, v: np.ndarray, pull: np.ndarray, space: SearchSpace) -> np.ndarray:
        return self.inertia * (v + pull)


class CanonicalPSO(ConstrictionPSO):
    """Constriction PSO with velocities clamped to the parameter ranges (the 'canonical' PSO).

    Args:
        cognitive: c₁, the pull towards the particle's own best.
        social: c₂, the pull towards the best of the island.
        particles: Particles per worker.
    """

    def velocity(self, v: np.ndarray, pull: np.ndarray, space: SearchSpace) -> np.ndarray:
        return np.clip(super().velocity(v, pull, space), -space.width, space.width)
