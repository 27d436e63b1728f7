"""Genetic operators: crossover and mutation on gene vectors, Propulate's breeding chain and
the default breeding."""

from __future__ import annotations

import numpy as np

from propulate_hpo.population import Pool
from propulate_hpo.propagators.base import (
    Compose,
    Conditional,
    InitUniform,
    Mixture,
    Propagator,
    SelectBest,
    SelectUniform,
    distinct_pair,
    pick,
)
from propulate_hpo.propagators.elite import EliteGaussian
from propulate_hpo.space import SearchSpace
from shared_hpc.errors import UserError


class CrossoverUniform(Propagator):
    """One child of two parents; each gene from the first parent with ``parent_share``.

    Args:
        parent_share: Probability that a gene comes from the first parent.
        probability: Probability of being applied.
    """

    parents, offspring = 2, 1

    def __init__(self, parent_share: float = 0.5, probability: float = 1.0) -> None:
        super().__init__(probability)
        if not 0.0 < parent_share < 1.0:
            raise UserError(f"CrossoverUniform: parent_share must be in (0, 1), got {parent_share}")
        self.parent_share = parent_share

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        genes = pool.genes
        take_first = rng.random(genes.shape[1]) < self.parent_share
        return pool.offspring(np.where(take_first, genes[0], genes[1]))


class CrossoverMultiPoint(Propagator):
    """k-point crossover: the gene vector is cut at ``points`` places, segments alternate.

    Args:
        points: Number of cuts.
        probability: Probability of being applied.
    """

    parents, offspring = 2, 1

    def __init__(self, points: int = 2, probability: float = 1.0) -> None:
        super().__init__(probability)
        if points < 1:
            raise UserError(f"CrossoverMultiPoint: points must be >= 1, got {points}")
        self.points = points

    def check(self, space: SearchSpace) -> None:
        if self.points >= space.dim:
            raise UserError(
                f"CrossoverMultiPoint: {self.points} cut points need more than "
                f"{self.points} parameters, the space has {space.dim}"
            )

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        genes = pool.genes
        d = genes.shape[1]
        cuts = np.sort(1 + pick(rng, d - 1, min(self.points, d - 1)))
        segment = np.zeros(d, dtype=np.int64)
        segment[cuts] = 1
        from_second = np.cumsum(segment) % 2 == 1
        return pool.offspring(np.where(from_second, genes[1], genes[0]))


class CrossoverBlend(Propagator):
    """BLX-α: numeric genes uniform in the parents' interval widened by ``alpha`` each side.

    Categorical genes are inherited from either parent with equal probability.

    Args:
        alpha: How far the interval is widened, as a share of its width, on each side.
        probability: Probability of being applied.
    """

    parents, offspring = 2, 1

    def __init__(self, alpha: float = 0.5, probability: float = 1.0) -> None:
        super().__init__(probability)
        if alpha < 0:
            raise UserError(f"CrossoverBlend: alpha must be >= 0, got {alpha}")
        self.alpha = alpha

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        a, b = pool.genes[0], pool.genes[1]
        low, high = np.minimum(a, b), np.maximum(a, b)
        spread = self.alpha * (high - low)
        child = rng.uniform(low - spread, high + spread)
        categorical = ~pool.space.numeric
        if categorical.any():
            pick = rng.random(len(a)) < 0.5
            child[categorical] = np.where(pick, a, b)[categorical]
        return pool.offspring(child)


class PointMutation(Propagator):
    """Redraw ``points`` randomly chosen genes uniformly from their ranges.

    Args:
        points: Genes to redraw.
        probability: Probability of being applied.
    """

    parents, offspring = 1, 1

    def __init__(self, points: int = 1, probability: float = 1.0) -> None:
        super().__init__(probability)
        if points < 1:
            raise UserError(f"PointMutation: points must be >= 1, got {points}")
        self.points = points

    def check(self, space: SearchSpace) -> None:
        if self.points > space.dim:
            raise UserError(f"PointMutation: {self.points} points but only {space.dim} parameters")

    def _mutate(self, pool: Pool, rng: np.random.Generator, points: int) -> Pool:
        genes = pool.genes.copy()
        fresh = pool.space.sample(rng, len(genes))
        for child, new in zip(genes, fresh, strict=True):
            where = pick(rng, len(child), points)
            child[where] = new[where]
        return pool.offspring(genes)

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        return self._mutate(pool, rng, self.points)


class RandomPointMutation(PointMutation):
    """Like ``PointMutation``, with a number of points drawn from [min_points, max_points].

    Args:
        min_points: The fewest genes to redraw.
        max_points: The most genes to redraw.
        probability: Probability of being applied.
    """

    def __init__(self, min_points: int = 1, max_points: int = 1, probability: float = 1.0) -> None:
        super().__init__(max_points, probability)
        if not 1 <= min_points <= max_points:
            raise UserError(
                f"RandomPointMutation: need 1 <= min_points <= max_points, got "
                f"{min_points}, {max_points}"
            )
        self.min_points = min_points

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        return self._mutate(pool, rng, int(rng.integers(self.min_points, self.points + 1)))


class IntervalMutationNormal(Propagator):
    """Gaussian step on ``points`` numeric genes, σ = ``sigma`` × the parameter's range.

    Args:
        sigma: Standard deviation, as a share of the parameter's range.
        points: Genes to move.
        probability: Probability of being applied.
    """

    parents, offspring = 1, 1

    def __init__(self, sigma: float = 0.05, points: int = 1, probability: float = 1.0) -> None:
        super().__init__(probability)
        if sigma <= 0:
            raise UserError(f"IntervalMutationNormal: sigma must be > 0, got {sigma}")
        if points < 1:
            raise UserError(f"IntervalMutationNormal: points must be >= 1, got {points}")
        self.sigma = sigma
        self.points = points

    def check(self, space: SearchSpace) -> None:
        if self.points > int(space.numeric.sum()):
            raise UserError(
                f"IntervalMutationNormal: {self.points} points but the space has "
                f"{int(space.numeric.sum())} numeric parameters"
            )

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        space = pool.space
        numeric = space.numeric_index
        genes = pool.genes.copy()
        for child in genes:
            where = numeric[pick(rng, len(numeric), self.points)]
            child[where] += rng.normal(0.0, self.sigma * space.width[where])
        return pool.offspring(genes)


class DefaultGenetic(Propagator):
    """Propulate's default breeding step in one propagator (the chain of
    ``default_chain``, drawn in one go: ~4x less Python overhead per breed).

    Two parents uniformly from the ``pop_size`` best, uniform crossover (a gene from the first
    parent with ``crossover_share``), point mutation with ``mutation_probability``, one
    Gaussian interval mutation (σ = ``sigma`` × range), and with ``random_init_probability``
    a fresh random individual instead.

    Args:
        pop_size: The parents are drawn from this many best individuals.
        crossover_share: Probability that a gene comes from the first parent.
        mutation_probability: Probability of a point mutation.
        random_init_probability: Probability of a fresh random individual instead.
        sigma: Standard deviation of the Gaussian interval mutation, as a share of the
            parameter's range.
    """

    parents, offspring = -1, 1

    def __init__(
        self,
        pop_size: int,
        crossover_share: float = 0.7,
        mutation_probability: float = 0.4,
        random_init_probability: float = 0.1,
        sigma: float = 0.05,
    ) -> None:
        super().__init__()
        if pop_size < 2:
            raise UserError(f"pop_size must be >= 2, got {pop_size}")
        for name, value in (
            ("mutation_probability", mutation_probability),
            ("random_init_probability", random_init_probability),
        ):
            if not 0.0 <= value <= 1.0:
                raise UserError(f"{name} must be in [0, 1], got {value}")
        if not 0.0 < crossover_share < 1.0 or sigma <= 0:
            raise UserError("need 0 < crossover_share < 1 and sigma > 0")
        self.pop_size = pop_size
        self.crossover_share = crossover_share
        self.mutation_probability = mutation_probability
        self.random_init_probability = random_init_probability
        self.sigma = sigma

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        population, space = pool.population, pool.space
        # every uniform draw of a breed in one call (a call costs more than the numbers)
        draws = rng.random(6 + space.dim)
        fresh, first, second, mutate, point, gauss = draws[:6].tolist()
        if fresh < self.random_init_probability:
            return pool.offspring(space.sample(rng))
        best = population.best(self.pop_size)
        first, second = distinct_pair(first, second, len(best))
        genes = population.genes
        child = np.where(draws[6:] < self.crossover_share, genes[best[first]], genes[best[second]])
        if mutate < self.mutation_probability:
            where = int(point * space.dim)
            child[where] = space.sample_gene(rng, where)
        numeric = space.numeric_index
        if len(numeric):
            where = numeric[int(gauss * len(numeric))]
            child[where] += rng.normal(0.0, self.sigma * space.width[where])
        return pool.offspring(child)


def default_chain(
    pop_size: int,
    space: SearchSpace,
    crossover_share: float = 0.7,
    mutation_probability: float = 0.4,
    random_init_probability: float = 0.1,
    sigma: float = 0.05,
) -> Propagator:
    """Propulate's default breeding composed of its operators, as upstream builds it.

    Random individuals until ``pop_size`` are active; then two parents drawn uniformly from
    the ``pop_size`` best, uniform crossover (a gene comes from the first parent with
    probability ``crossover_share``), point mutation with ``mutation_probability``, a Gaussian
    interval mutation (σ = ``sigma`` × range), and with ``random_init_probability`` a fresh
    random individual instead.

    Args:
        pop_size: Random individuals until this many are active; then the parents are drawn
            from this many best.
        space: The search space (the interval mutation needs a numeric parameter).
        crossover_share: Probability that a gene comes from the first parent.
        mutation_probability: Probability of a point mutation.
        random_init_probability: Probability of a fresh random individual instead.
        sigma: Standard deviation of the Gaussian interval mutation, as a share of the
            parameter's range.

    Returns:
        The chain of propagators.
    """
    steps: list[Propagator] = [
        SelectBest(pop_size),
        SelectUniform(2),
        CrossoverUniform(crossover_share),
        PointMutation(probability=mutation_probability),
    ]
    if space.numeric.any():
        steps.append(IntervalMutationNormal(sigma))
    steps.append(InitUniform(probability=random_init_probability))
    return Conditional(pop_size, Compose(steps), InitUniform())


def default_propagator(
    pop_size: int,
    space: SearchSpace,
    crossover_share: float = 0.7,
    mutation_probability: float = 0.4,
    random_init_probability: float = 0.1,
    sigma: float = 0.05,
    elite_probability: float = 0.15,
) -> Propagator:
    """The default breeding: Propulate's GA (``default_chain``, fused into one
    ``DefaultGenetic`` step) for most children and, with ``elite_probability``, a child of
    ``EliteGaussian`` instead.

    The GA alone (``elite_probability=0``, the paper's breeding) explores well but converges
    slowly on smooth landscapes; with 15 % elite samples the best loss on smooth benchmark
    functions falls by orders of magnitude, on rugged ones it stays about the same after a few
    hundred evaluations per worker (schwefel can be worse) and is lower after a thousand
    (BENCHMARKS.md runs both). A quarter ends higher on schwefel and rastrigin
    (ELITE_SHARE.md, written by ``benchmarks/elite_share.py``).

    Args:
        pop_size: Random individuals until this many are active; then the parents (and the
            elite) are drawn from this many best.
        space: The search space.
        crossover_share: Probability that a gene comes from the first parent.
        mutation_probability: Probability of a point mutation.
        random_init_probability: Probability of a fresh random individual instead.
        sigma: Standard deviation of the Gaussian interval mutation, as a share of the
            parameter's range.
        elite_probability: Probability of an ``EliteGaussian`` child instead of the GA's.

    Returns:
        The default breeding.
    """
    if not 0.0 <= elite_probability <= 1.0:
        raise UserError(f"elite_probability must be in [0, 1], got {elite_probability}")
    step: Propagator = DefaultGenetic(
        pop_size, crossover_share, mutation_probability, random_init_probability, sigma
    )
    if elite_probability == 1.0:
        step = EliteGaussian(pop_size)
    elif elite_probability > 0.0:
        step = Mixture(
            [(1.0 - elite_probability, step), (elite_probability, EliteGaussian(pop_size))]
        )
    return Conditional(pop_size, step, InitUniform())
