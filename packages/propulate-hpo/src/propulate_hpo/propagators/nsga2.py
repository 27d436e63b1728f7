"""Asynchronous NSGA-II: crowded selection from a steady-state archive, SBX and polynomial
mutation.

Deb et al.'s NSGA-II replaces a whole generation at once: parents and children are sorted into
non-dominated fronts and the best half survives by front and crowding distance. A worker of
an asynchronous search has no generation to wait for, so here every breed first merges the
individuals that became active on the island since its last breed into an archive of
``pop_size`` (the same crowded truncation, one child at a time: the steady-state NSGA-II of
Durillo et al., 2009), then picks two parents by binary tournaments on front and crowding, and
varies them with simulated binary crossover and polynomial mutation, the operators of the
original algorithm (and of DEAP's NSGA-II example). Categorical genes are swapped and
resampled instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from propulate_hpo.pareto import crowded_order
from propulate_hpo.population import Pool, Population
from propulate_hpo.propagators.base import Compose, Conditional, InitUniform, Propagator
from shared_hpc.errors import UserError

if TYPE_CHECKING:
    from propulate_hpo.objectives import Objectives


class SelectCrowdedTournament(Propagator):
    """Two parents by binary tournaments on (front, crowding) from a crowded archive.

    It reads the objectives of the whole population it is given, so it comes first in a
    chain. The archive is this worker's own state, rebuilt from the population after a resume.

    Args:
        pop_size: Individuals kept in the archive.
    """

    parents, offspring = -1, 2

    def __init__(self, pop_size: int) -> None:
        super().__init__()
        if pop_size < 2:
            raise UserError(f"SelectCrowdedTournament: pop_size must be >= 2, got {pop_size}")
        self.pop_size = pop_size
        self._archive = np.zeros(0, dtype=np.int64)
        self._ranks = np.zeros(0, dtype=np.int64)
        self._crowding = np.zeros(0)
        self._merged = 0  # entries of population.activations already merged
        self._population: Population | None = None

    def check_objectives(self, objectives: Objectives | None) -> None:
        if objectives is None:
            raise UserError("NSGA-II breeds for several objectives; this search has one loss")

    def _update(self, population: Population) -> None:
        """Merge the rows activated since the last breed; drop rows no longer active."""
        if population is not self._population:  # a new run: start from nothing
            self._population, self._merged = population, 0
            self._archive = np.zeros(0, dtype=np.int64)
        log = population.activations
        new = np.array(log[self._merged :], dtype=np.int64)
        self._merged = len(log)
        still = self._archive[population.active[self._archive]]
        if len(new) == 0 and len(still) == len(self._archive) and len(self._ranks):
            return
        new = new[population.active[new]]
        archive = still
        # a resumed run merges its whole history in pieces of pop_size: O(n · pop_size²)
        for start in range(0, max(len(new), 1), self.pop_size):
            rows = np.unique(np.concatenate([archive, new[start : start + self.pop_size]]))
            if len(rows) > self.pop_size:
                order, _, _ = crowded_order(population.objectives[rows])
                rows = rows[order[: self.pop_size]]
            archive = rows
        _, self._ranks, self._crowding = crowded_order(population.objectives[archive])
        self._archive = archive

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        population = pool.population
        if population.objectives is None:
            raise UserError("NSGA-II breeds for several objectives; this search has one loss")
        self._update(population)
        n = len(self._archive)
        if n == 0:
            raise ValueError("SelectCrowdedTournament found no active individual")
        ranks, crowding = self._ranks, self._crowding
        winners = []
        for _ in range(2):
            a, b = (int(i) for i in rng.integers(0, n, 2))
            if (ranks[b], -crowding[b]) < (ranks[a], -crowding[a]):
                a = b
            winners.append(a)
        return Pool(population, rows=self._archive[winners])

    def __repr__(self) -> str:
        return f"SelectCrowdedTournament({self.pop_size})"


class CrossoverSBX(Propagator):
    """One child of two parents by bounded simulated binary crossover (Deb and Agrawal).

    Each numeric gene is crossed with probability 1/2 (as in DEAP's
    ``cxSimulatedBinaryBounded``) and the child takes either of the two offspring values;
    a categorical gene comes from either parent.

    Args:
        eta: Distribution index: large values give children close to their parents.
        probability: Probability of being applied.
    """

    parents, offspring = 2, 1

    def __init__(self, eta: float = 15.0, probability: float = 0.9) -> None:
        super().__init__(probability)
        if eta < 0:
            raise UserError(f"CrossoverSBX: eta must be >= 0, got {eta}")
        self.eta = eta

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        space = pool.space
        x1, x2 = np.minimum(pool.genes[0], pool.genes[1]), np.maximum(pool.genes[0], pool.genes[1])
        child = np.where(rng.random(space.dim) < 0.5, pool.genes[0], pool.genes[1])
        low, high = space.lower, space.upper
        cross = space.numeric & (rng.random(space.dim) < 0.5) & (x2 - x1 > 1e-14)
        if cross.any():
            x1, x2, low, high = x1[cross], x2[cross], low[cross], high[cross]
            u = rng.random(len(x1))
            exponent = 1.0 / (self.eta + 1.0)

            def spread(gap_to_bound: np.ndarray) -> np.ndarray:
                beta = 1.0 + 2.0 * gap_to_bound / (x2 - x1)
                alpha = 2.0 - beta ** -(self.eta + 1.0)
                return np.where(
                    u <= 1.0 / alpha,
                    (u * alpha) ** exponent,
                    (1.0 / (2.0 - u * alpha)) ** exponent,
                )

            c1 = 0.5 * (x1 + x2 - spread(x1 - low) * (x2 - x1))
            c2 = 0.5 * (x1 + x2 + spread(high - x2) * (x2 - x1))
            child[cross] = np.clip(np.where(rng.random(len(x1)) < 0.5, c1, c2), low, high)
        return pool.offspring(child)

    def __repr__(self) -> str:
        return f"CrossoverSBX(eta={self.eta}, probability={self.probability})"


class PolynomialMutation(Propagator):
    """Bounded polynomial mutation (Deb), each gene with probability ``gene_probability``
    (default 1/dimension); categorical genes are resampled instead.

    Args:
        eta: Distribution index: large values give small steps.
        gene_probability: Probability that a gene mutates; none: 1 / the number of genes.
        probability: Probability of being applied.
    """

    parents, offspring = 1, 1

    def __init__(
        self, eta: float = 20.0, gene_probability: float | None = None, probability: float = 1.0
    ) -> None:
        super().__init__(probability)
        if eta < 0:
            raise UserError(f"PolynomialMutation: eta must be >= 0, got {eta}")
        if gene_probability is not None and not 0.0 < gene_probability <= 1.0:
            raise UserError("PolynomialMutation: gene_probability must be in (0, 1]")
        self.eta = eta
        self.gene_probability = gene_probability

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        space = pool.space
        child = pool.genes[0].copy()
        share = 1.0 / space.dim if self.gene_probability is None else self.gene_probability
        chosen = rng.random(space.dim) < share
        for i in np.flatnonzero(chosen & ~space.numeric):
            child[i] = space.sample_gene(rng, int(i))
        mutate = chosen & space.numeric & (space.width > 0)
        if mutate.any():
            x, low, width = child[mutate], space.lower[mutate], space.width[mutate]
            u = rng.random(len(x))
            power = 1.0 / (self.eta + 1.0)
            below = 1.0 - (x - low) / width
            above = 1.0 - (low + width - x) / width
            step = np.where(
                u < 0.5,
                (2.0 * u + (1.0 - 2.0 * u) * below ** (self.eta + 1.0)) ** power - 1.0,
                1.0 - (2.0 * (1.0 - u) + 2.0 * (u - 0.5) * above ** (self.eta + 1.0)) ** power,
            )
            child[mutate] = np.clip(x + step * width, low, low + width)
        return pool.offspring(child)

    def __repr__(self) -> str:
        return f"PolynomialMutation(eta={self.eta}, gene_probability={self.gene_probability})"


def nsga2_propagator(
    pop_size: int,
    crossover_eta: float = 15.0,
    crossover_probability: float = 0.9,
    mutation_eta: float = 20.0,
) -> Propagator:
    """Asynchronous NSGA-II: random individuals until ``pop_size`` are active, then crowded
    tournaments from the archive, SBX and polynomial mutation (the original settings).

    Args:
        pop_size: Size of the archive, and random individuals before the first breed.
        crossover_eta: Distribution index of the crossover.
        crossover_probability: Probability of crossing the two parents (else the first).
        mutation_eta: Distribution index of the mutation.

    Returns:
        The breeding.
    """
    chain = Compose(
        [
            SelectCrowdedTournament(pop_size),
            CrossoverSBX(crossover_eta, probability=crossover_probability),
            PolynomialMutation(mutation_eta),
        ]
    )
    return Conditional(pop_size, chain, InitUniform())
