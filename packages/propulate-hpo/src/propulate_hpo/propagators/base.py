"""Propagators: composable steps that turn the known population into one new candidate.

A propagator maps a ``Pool`` to a smaller or new pool.
``parents`` is how many individuals it consumes (-1: any number), ``offspring`` how many it
returns. Chains are built with ``Compose``, switched on population size with
``Conditional``, applied with a probability with ``Stochastic`` (or the
``probability`` argument every operator takes) and drawn from alternatives with
``Mixture``. Randomness comes from the generator the optimiser passes in, one per worker,
so identical propagator objects on every rank still breed different children.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from propulate_hpo.population import Pool
from propulate_hpo.space import SearchSpace
from shared_hpc.errors import UserError

if TYPE_CHECKING:
    from propulate_hpo.objectives import Objectives


def distinct_pair(u: float, v: float, n: int) -> tuple[int, int]:
    """Two distinct indices in [0, n), uniformly, from two uniform numbers in [0, 1).

    Args:
        u: The first uniform number.
        v: The second uniform number.
        n: The number of indices (at least 2).
    """
    i, j = int(u * n), int(v * (n - 1))
    return i, j + (j >= i)


def pick(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``k`` distinct indices in [0, n) in random order (~10x faster than ``rng.choice``).

    Args:
        rng: The random generator.
        n: The number of indices to draw from.
        k: How many to draw (at most ``n``).
    """
    if k == 1:
        return np.array([int(rng.random() * n)])
    if k == 2:
        return np.array(distinct_pair(rng.random(), rng.random(), n))
    if n <= 256:
        return rng.permutation(n)[:k]
    chosen: dict[int, None] = {}
    for j in range(n - k, n):  # Floyd's algorithm, then shuffled
        t = int(rng.random() * (j + 1))
        chosen[j if t in chosen else t] = None
    return rng.permutation(np.fromiter(chosen, np.int64, k))


class Propagator:
    """Base class; subclasses implement ``apply``.

    Args:
        probability: Probability of being applied; otherwise the first inputs pass on
            (``skip``).

    Attributes:
        parents: Individuals it consumes (-1: any number).
        offspring: Individuals it returns.
    """

    parents: int = -1
    offspring: int = 1

    def __init__(self, probability: float = 1.0) -> None:
        if not 0.0 <= probability <= 1.0:
            raise UserError(f"{type(self).__name__}: probability must be in [0, 1]")
        self.probability = probability

    def __call__(self, pool: Pool, rng: np.random.Generator) -> Pool:
        if self.parents > 0 and len(pool) < self.parents:
            raise ValueError(f"{type(self).__name__} needs {self.parents} parents, got {len(pool)}")
        if self.probability < 1.0 and rng.random() >= self.probability:
            return self.skip(pool)
        return self.apply(pool, rng)

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        """Breed: the pool of individuals this propagator makes of ``pool``.

        Args:
            pool: The input individuals.
            rng: The worker's random generator.
        """
        raise NotImplementedError

    def skip(self, pool: Pool) -> Pool:
        """What a propagator not applied this time passes on: its first ``offspring`` inputs.

        Args:
            pool: The input individuals.
        """
        if self.offspring < 0 or len(pool) <= self.offspring:
            return pool
        return pool.select(np.arange(self.offspring))

    def check(self, space: SearchSpace) -> None:
        """Raise a clear error if this propagator cannot work on ``space`` (before the run).

        Args:
            space: The search space of the run.

        Raises:
            UserError: It cannot work on ``space``.
        """

    def check_objectives(self, objectives: Objectives | None) -> None:
        """Raise a clear error if this propagator cannot breed for the search's objectives.

        Args:
            objectives: The objectives of a multi-objective search, ``None`` for one loss.

        Raises:
            UserError: It cannot breed for them.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _compatible(offspring: int, parents: int) -> bool:
    return parents == -1 or offspring == -1 or offspring >= parents


class Compose(Propagator):
    """Apply propagators one after the other (selection, crossover, mutation...).

    Args:
        propagators: The steps, each taking what the previous one gives.
    """

    def __init__(self, propagators: Sequence[Propagator]) -> None:
        super().__init__()
        if len(propagators) == 0:
            raise UserError("Compose needs at least one propagator")
        for a, b in pairwise(propagators):
            if not _compatible(a.offspring, b.parents):
                raise UserError(
                    f"{a!r} gives {a.offspring} individuals but {b!r} needs {b.parents}"
                )
        self.propagators = list(propagators)
        self.parents = propagators[0].parents
        self.offspring = propagators[-1].offspring

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        for propagator in self.propagators:
            pool = propagator(pool, rng)
        return pool

    def check(self, space: SearchSpace) -> None:
        for propagator in self.propagators:
            propagator.check(space)

    def check_objectives(self, objectives: Objectives | None) -> None:
        for propagator in self.propagators:
            propagator.check_objectives(objectives)

    def __repr__(self) -> str:
        return f"Compose({self.propagators!r})"


class Conditional(Propagator):
    """``if_enough`` once at least ``pop_size`` individuals are active, else ``otherwise``.

    Args:
        pop_size: Active individuals needed for ``if_enough``.
        if_enough: The propagator for a population of at least ``pop_size``.
        otherwise: The propagator before that (usually ``InitUniform``).
    """

    def __init__(self, pop_size: int, if_enough: Propagator, otherwise: Propagator) -> None:
        super().__init__()
        if pop_size < 1:
            raise UserError(f"Conditional: pop_size must be >= 1, got {pop_size}")
        self.pop_size = pop_size
        self.if_enough = if_enough
        self.otherwise = otherwise

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        chosen = self.if_enough if len(pool) >= self.pop_size else self.otherwise
        return chosen(pool, rng)

    def check(self, space: SearchSpace) -> None:
        self.if_enough.check(space)
        self.otherwise.check(space)

    def check_objectives(self, objectives: Objectives | None) -> None:
        self.if_enough.check_objectives(objectives)
        self.otherwise.check_objectives(objectives)

    def __repr__(self) -> str:
        return f"Conditional({self.pop_size}, {self.if_enough!r}, {self.otherwise!r})"


class Stochastic(Propagator):
    """Apply ``propagator`` with ``probability``; otherwise pass its first inputs on.

    Args:
        propagator: The propagator to apply.
        probability: Probability of applying it.
    """

    def __init__(self, propagator: Propagator, probability: float) -> None:
        super().__init__(probability)
        self.propagator = propagator
        self.parents = propagator.parents
        self.offspring = propagator.offspring

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        return self.propagator(pool, rng)

    def check(self, space: SearchSpace) -> None:
        self.propagator.check(space)

    def check_objectives(self, objectives: Objectives | None) -> None:
        self.propagator.check_objectives(objectives)


class Mixture(Propagator):
    """One of several propagators per breed, drawn with the given weights (e.g. a GA for most
    children, a local model for some).

    Args:
        choices: ``(weight, propagator)`` pairs; the weights need not add up to 1.
    """

    def __init__(self, choices: Sequence[tuple[float, Propagator]]) -> None:
        super().__init__()
        if len(choices) == 0:
            raise UserError("Mixture needs at least one (weight, propagator) pair")
        weights = np.array([weight for weight, _ in choices], dtype=float)
        if not (np.isfinite(weights).all() and (weights > 0).all()):
            raise UserError(f"Mixture: weights must be positive, got {weights.tolist()}")
        self.propagators = [propagator for _, propagator in choices]
        if len({propagator.offspring for propagator in self.propagators}) > 1:
            raise UserError(
                f"Mixture: alternatives give different numbers of offspring: {self.propagators!r}"
            )
        parents = [propagator.parents for propagator in self.propagators]
        self.parents = -1 if -1 in parents else max(parents)
        self.offspring = self.propagators[0].offspring
        self.cumulative = (np.cumsum(weights) / weights.sum()).tolist()

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        u = rng.random()
        for threshold, propagator in zip(self.cumulative, self.propagators, strict=True):
            if u < threshold:
                return propagator(pool, rng)
        return self.propagators[-1](pool, rng)  # u within rounding of 1

    def check(self, space: SearchSpace) -> None:
        for propagator in self.propagators:
            propagator.check(space)

    def check_objectives(self, objectives: Objectives | None) -> None:
        for propagator in self.propagators:
            propagator.check_objectives(objectives)

    def __repr__(self) -> str:
        weights = np.diff([0.0, *self.cumulative]).round(6).tolist()
        return f"Mixture({list(zip(weights, self.propagators, strict=True))!r})"


class _Select(Propagator):
    def __init__(self, offspring: int) -> None:
        super().__init__()
        if offspring < 1:
            raise UserError(f"{type(self).__name__}: offspring must be >= 1, got {offspring}")
        self.offspring = offspring

    def __call__(self, pool: Pool, rng: np.random.Generator) -> Pool:
        if len(pool) < self.offspring:
            raise ValueError(
                f"{type(self).__name__}({self.offspring}) got only {len(pool)} individuals"
            )
        return self.apply(pool, rng)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.offspring})"


class SelectBest(_Select):
    """The ``offspring`` individuals with the lowest loss.

    Args:
        offspring: How many to select.
    """

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        if pool.is_everything:  # incremental index: no sort of the whole population
            return Pool(pool.population, rows=pool.population.best(self.offspring))
        order = np.argsort(pool.losses, kind="stable")[: self.offspring]
        return pool.select(order)


class SelectWorst(_Select):
    """The ``offspring`` individuals with the highest loss.

    Args:
        offspring: How many to select.
    """

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        order = np.argsort(-pool.losses, kind="stable")[: self.offspring]
        return pool.select(order)


class SelectUniform(_Select):
    """``offspring`` distinct individuals drawn uniformly.

    Args:
        offspring: How many to select.
    """

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        return pool.select(pick(rng, len(pool), self.offspring))


class SelectTournament(_Select):
    """``offspring`` winners of tournaments among ``size`` uniformly drawn individuals each.

    Args:
        offspring: How many to select.
        size: Entrants per tournament.
    """

    def __init__(self, offspring: int, size: int = 3) -> None:
        super().__init__(offspring)
        if size < 1:
            raise UserError(f"SelectTournament: size must be >= 1, got {size}")
        self.size = size

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        n = len(pool)
        size = min(self.size, n)
        winners = []
        losses = pool.losses
        for _ in range(self.offspring):
            entrants = pick(rng, n, size)
            winners.append(entrants[np.argmin(losses[entrants])])
        return pool.select(np.array(winners))


class InitUniform(Propagator):
    """A fresh uniformly random individual (log-uniform on log parameters).

    Args:
        probability: Probability of drawing one; otherwise the first input passes on.
    """

    parents = -1
    offspring = 1

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        return pool.offspring(pool.space.sample(rng))

    def skip(self, pool: Pool) -> Pool:
        return pool if len(pool) <= 1 else pool.select(np.arange(1))

    def __repr__(self) -> str:
        return f"InitUniform(probability={self.probability})"
