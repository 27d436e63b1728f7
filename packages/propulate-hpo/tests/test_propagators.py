import numpy as np
import pytest
from propulate_hpo import SearchSpace, benchmark, propulate
from propulate_hpo.population import OK, Population, Row
from propulate_hpo.propagators import (
    ActiveCMA,
    BasicCMA,
    BasicPSO,
    CanonicalPSO,
    Compose,
    Conditional,
    ConstrictionPSO,
    CrossoverBlend,
    CrossoverMultiPoint,
    CrossoverUniform,
    DefaultGenetic,
    EliteGaussian,
    InitUniform,
    IntervalMutationNormal,
    Mixture,
    ParallelNelderMead,
    PointMutation,
    RandomPointMutation,
    SelectBest,
    SelectTournament,
    SelectUniform,
    SelectWorst,
    Stochastic,
    VelocityClampingPSO,
    default_propagator,
    make_propagator,
)
from propulate_hpo.propagators.base import pick


def _population(space, losses, seed=0):
    rng = np.random.default_rng(seed)
    population = Population(space)
    for g, loss in enumerate(losses):
        population.add(Row(0, g, 0, loss, OK, 0.0, 0.0, 0, 0, space.sample(rng)))
    return population


SPACE = SearchSpace({"a": (0.0, 1.0), "b": (-5.0, 5.0), "n": (1, 9), "c": ("x", "y", "z")})


def test_pick_gives_distinct_uniform_indices():
    rng = np.random.default_rng(0)
    for n, k in [(8, 1), (8, 2), (8, 5), (1000, 6)]:
        draws = np.array([pick(rng, n, k) for _ in range(3000)])
        assert all(len(set(d)) == k for d in draws)
        first = np.bincount(draws[:, 0], minlength=n) / len(draws)
        assert abs(first.mean() - 1 / n) < 1e-9 and first.max() < 3 / n


def test_selections_pick_what_they_promise():
    population = _population(SPACE, [5.0, 1.0, 3.0, 0.5, 4.0, 2.0])
    rng = np.random.default_rng(0)
    best = SelectBest(2)(population.everything(), rng)
    assert list(best.losses) == [0.5, 1.0]
    assert list(SelectWorst(2)(population.everything(), rng).losses) == [5.0, 4.0]
    assert len(set(SelectUniform(3)(population.everything(), rng).rows)) == 3
    winners = [
        SelectTournament(1, size=6)(population.everything(), rng).losses[0] for _ in range(10)
    ]
    assert winners == [0.5] * 10  # a tournament of everyone is won by the best
    with pytest.raises(ValueError, match="got only 6"):
        SelectBest(7)(population.everything(), rng)


def test_crossovers_take_genes_from_the_parents():
    population = _population(SPACE, [1.0, 2.0])
    rng = np.random.default_rng(1)
    parents = population.everything()
    a, b = population.genes[0], population.genes[1]
    for op in (CrossoverUniform(0.5), CrossoverMultiPoint(2)):
        child = op(parents, rng).genes[0]
        assert np.all((child == a) | (child == b))
    blend = CrossoverBlend(alpha=0.0)(parents, rng).genes[0]
    numeric = SPACE.numeric
    low, high = np.minimum(a, b), np.maximum(a, b)
    assert np.all((blend[numeric] >= low[numeric]) & (blend[numeric] <= high[numeric]))
    assert blend[3] in (a[3], b[3])
    with pytest.raises(ValueError, match="cut points"):
        CrossoverMultiPoint(4).check(SPACE)


def test_mutations_change_the_requested_number_of_genes():
    population = _population(SPACE, [1.0])
    rng = np.random.default_rng(2)
    parent = population.genes[0]
    changed = [
        np.sum(PointMutation(points=2)(population.everything(), rng).genes[0] != parent)
        for _ in range(50)
    ]
    assert max(changed) == 2
    steps = [
        IntervalMutationNormal(0.05)(population.everything(), rng).genes[0] - parent
        for _ in range(400)
    ]
    steps = np.array(steps)
    assert np.all(steps[:, 3] == 0)  # categorical genes are left to point mutation
    moved = steps[:, 1][steps[:, 1] != 0]
    assert np.std(moved) == pytest.approx(0.05 * 10.0, rel=0.2)  # σ = 5 % of the range
    counts = {
        int(np.sum(RandomPointMutation(1, 3)(population.everything(), rng).genes[0] != parent))
        for _ in range(200)
    }
    assert counts <= {0, 1, 2, 3} and 3 in counts
    with pytest.raises(ValueError, match="min_points"):
        RandomPointMutation(3, 2)


def test_compose_conditional_and_stochastic():
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="needs 2"):
        Compose([SelectBest(1), CrossoverUniform()])
    chain = Conditional(4, Compose([SelectBest(2), CrossoverUniform()]), InitUniform())
    small = _population(SPACE, [1.0, 2.0])
    assert chain(small.everything(), rng).fresh  # fewer than 4: a random individual
    big = _population(SPACE, [1.0, 2.0, 3.0, 4.0])
    child = chain(big.everything(), rng).genes[0]
    best_two = big.genes[big.best(2)]
    assert np.all((child == best_two[0]) | (child == best_two[1]))
    never = Stochastic(PointMutation(), 0.0)
    out = never(Compose([SelectBest(1)])(big.everything(), rng), rng)
    assert np.array_equal(out.genes[0], big.genes[big.best(1)[0]])
    with pytest.raises(ValueError, match="probability"):
        PointMutation(probability=1.5)


def test_default_propagator_finds_the_sphere_optimum_serially():
    loss, space = benchmark("sphere")
    result = propulate(
        loss, space, generations=600, seed=1, propagator=default_propagator(8, space)
    )
    assert result.best_loss < 1e-3


def test_default_propagator_reaches_the_rosenbrock_valley_floor():
    """The elite samples follow the curved valley that the GA alone crawls along."""
    loss, space = benchmark("rosenbrock")
    best = {
        share: [
            propulate(
                loss,
                space,
                generations=1000,
                seed=seed,
                propagator=default_propagator(8, space, elite_probability=share),
            ).best_loss
            for seed in (0, 1, 2)
        ]
        for share in (0.0, 0.15)
    }
    assert max(best[0.15]) < 1e-4 < min(best[0.0])


def test_default_propagator_is_the_paper_ga_without_elite_samples():
    paper = default_propagator(8, SPACE, elite_probability=0.0)
    assert isinstance(paper, Conditional) and isinstance(paper.if_enough, DefaultGenetic)
    mixed = default_propagator(8, SPACE)
    assert isinstance(mixed.if_enough, Mixture)
    assert [type(p) for p in mixed.if_enough.propagators] == [DefaultGenetic, EliteGaussian]
    with pytest.raises(ValueError, match="elite_probability"):
        default_propagator(8, SPACE, elite_probability=1.5)
    by_name = make_propagator("ga-paper", SPACE, 8)
    assert isinstance(by_name, Conditional) and isinstance(by_name.if_enough, DefaultGenetic)


def test_elite_gaussian_draws_with_the_elite_covariance_around_the_best():
    space = SearchSpace({"a": (-10.0, 10.0), "b": (-10.0, 10.0), "c": ("x", "y", "z")})
    population = _population(space, [float(i) for i in range(20)], seed=3)
    elite_rows = population.best(6)
    elite = population.genes[elite_rows]
    rng = np.random.default_rng(0)
    best = elite[0]
    for widen in (1.0, 1.5):
        sampler = EliteGaussian(6, widen=widen, jitter=0.0)
        children = np.array([sampler(population.everything(), rng).genes[0] for _ in range(20000)])
        # categorical: drawn with the frequencies in the elite
        shares = [np.mean(children[:, 2] == c) for c in range(3)]
        assert np.allclose(shares, [np.mean(elite[:, 2] == c) for c in range(3)], atol=0.02)
        numeric = children[:, :2]
        assert np.allclose(numeric.mean(axis=0), best[:2], atol=0.1)
        expected = widen**2 * np.cov(elite[:, :2], rowvar=False)
        assert np.allclose(np.cov(numeric, rowvar=False), expected, rtol=0.05)
    # a pool that is not everything: its own best individuals, fit the same way
    pool = SelectBest(6)(population.everything(), rng)
    child = sampler(pool, rng).genes[0]
    assert child[2] in elite[:, 2] and not np.array_equal(child[:2], best[:2])
    # jitter moves genes in which the elite is spread even when its points are collinear
    line = Population(space)
    for g in range(4):
        line.add(Row(0, g, 0, float(g), OK, 0.0, 0.0, 0, 0, np.array([g, 2.0 * g, 1.0])))
    off_line = [
        EliteGaussian(4, jitter=0.1)(line.everything(), rng).genes[0][:2] for _ in range(50)
    ]
    assert all(abs(b - 2.0 * a) > 1e-12 for a, b in off_line)
    on_line = [EliteGaussian(4, jitter=0.0)(line.everything(), rng).genes[0][:2] for _ in range(50)]
    assert all(abs(b - 2.0 * a) < 1e-9 for a, b in on_line)
    with pytest.raises(ValueError, match="pop_size"):
        EliteGaussian(1)
    with pytest.raises(ValueError, match="jitter"):
        EliteGaussian(4, jitter=-1.0)
    with pytest.raises(ValueError, match="widen"):
        EliteGaussian(4, widen=0.0)


def test_elite_gaussian_samples_at_random_with_fewer_than_two_individuals():
    population = _population(SPACE, [1.0])
    rng = np.random.default_rng(0)
    children = [EliteGaussian(8)(population.everything(), rng).genes[0] for _ in range(5)]
    assert len({child.tobytes() for child in children}) == 5


def test_mixture_draws_its_alternatives_with_their_weights():
    population = _population(SPACE, [5.0, 1.0, 3.0, 0.5])
    rng = np.random.default_rng(0)
    mixture = Mixture([(3.0, SelectBest(1)), (1.0, SelectWorst(1))])
    losses = [mixture(population.everything(), rng).losses[0] for _ in range(4000)]
    assert abs(losses.count(0.5) / 4000 - 0.75) < 0.03
    assert set(losses) == {0.5, 5.0}
    with pytest.raises(ValueError, match="positive"):
        Mixture([(0.0, SelectBest(1))])
    with pytest.raises(ValueError, match="at least one"):
        Mixture([])
    with pytest.raises(ValueError, match="offspring"):
        Mixture([(1.0, SelectBest(1)), (1.0, SelectBest(2))])


@pytest.mark.parametrize(
    "propagator",
    [
        BasicPSO(particles=8),
        VelocityClampingPSO(particles=8),
        ConstrictionPSO(particles=8),
        CanonicalPSO(particles=8),
        BasicCMA(),
        ActiveCMA(),
        ParallelNelderMead(),
    ],
    ids=["pso", "pso-clamping", "pso-constriction", "pso-canonical", "cma", "cma-active", "nm"],
)
def test_continuous_propagators_converge_on_sphere(propagator):
    loss, space = benchmark("sphere", dim=4)
    result = propulate(loss, space, generations=700, seed=0, propagator=propagator)
    assert result.best_loss < 1e-2
    assert result.n_evaluations == 700


def test_cma_adapts_to_an_ill_conditioned_problem():
    space = SearchSpace({f"x{i}": (-5.0, 5.0) for i in range(4)})

    def ellipsoid(p):
        x = np.array(list(p.values()))
        return float(np.sum(10 ** (3 * np.arange(4) / 3) * x**2))

    result = propulate(ellipsoid, space, generations=800, seed=0, propagator=ActiveCMA())
    assert result.best_loss < 1e-4


def test_cma_survives_converging_to_the_precision_limit():
    # once σ is tiny, random candidates (bred instead of duplicates) are far outside the
    # distribution; unclipped, one of them overflowed σ's update
    loss, space = benchmark("sphere")
    result = propulate(loss, space, generations=3000, seed=0, propagator=BasicCMA())
    assert result.n_evaluations == 3000 and result.best_loss < 1e-12


@pytest.mark.parametrize("make", [BasicPSO, BasicCMA, ParallelNelderMead])
def test_continuous_propagators_refuse_categoricals_before_the_run(make):
    with pytest.raises(ValueError, match="numeric search space"):
        propulate(lambda p: 0.0, SPACE, generations=5, propagator=make())


def test_no_duplicate_children_even_in_a_small_discrete_space():
    space = SearchSpace({"n": (0, 4), "c": ("a", "b", "c")})  # 15 points
    seen = []

    def loss(p):
        seen.append((p["n"], p["c"]))
        return p["n"] + (p["c"] == "b")

    result = propulate(loss, space, generations=40, seed=0)
    assert len(seen) == len(set(seen)) == 15  # then the space is exhausted and the run stops
    assert result.n_evaluations == 15 and result.best_loss == 0
