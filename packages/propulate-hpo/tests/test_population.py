import numpy as np
from propulate_hpo import SearchSpace
from propulate_hpo.population import FAILED, OK, Population, Row


def _row(space, rng, worker, generation, loss, status=OK, version=0):
    return Row(worker, generation, 0, loss, status, 0.0, 0.0, version, 0, space.sample(rng))


def test_incremental_best_matches_a_full_sort_under_inserts_and_deactivations():
    space = SearchSpace({"x": (0.0, 1.0), "y": (0.0, 1.0)})
    rng = np.random.default_rng(0)
    population = Population(space, capacity=4)  # forces growth
    for g in range(400):
        population.add(_row(space, rng, g % 3, g, float(rng.random())))
        if g % 7 == 0:
            population.best(5)  # the cache is used and updated in between
        if g % 11 == 0 and population.n_active > 10:
            victim = population.active_rows()[int(rng.integers(population.n_active))]
            key = (int(population.worker[victim]), int(population.generation[victim]))
            assert population.deactivate(key, 0)
        active = np.flatnonzero(population.active[: population.n])
        expected = active[np.argsort(population.loss[active], kind="stable")][:5]
        assert list(population.best(5)) == list(expected)
        assert population.n_active == len(active)
    assert population.n == 400 and len(population.genes) >= 400


def test_failed_rows_are_kept_but_never_active():
    space = SearchSpace({"x": (0.0, 1.0)})
    rng = np.random.default_rng(1)
    population = Population(space)
    population.add(_row(space, rng, 0, 0, np.inf, FAILED))
    population.add(_row(space, rng, 0, 1, 2.0))
    assert population.n == 2 and population.n_active == 1
    assert list(population.best(3)) == [1]


def test_deactivation_that_arrives_before_the_individual_is_applied_on_arrival():
    space = SearchSpace({"x": (0.0, 1.0)})
    rng = np.random.default_rng(2)
    population = Population(space)
    assert not population.deactivate((3, 7), 0)  # not here yet: remembered
    population.add(_row(space, rng, 3, 7, 1.0))
    assert population.n_active == 0


def test_a_migrant_coming_back_is_reactivated_and_old_deactivations_do_not_hit_it():
    space = SearchSpace({"x": (0.0, 1.0)})
    rng = np.random.default_rng(3)
    population = Population(space)
    row = _row(space, rng, 1, 4, 0.5)
    population.add(row)
    assert population.deactivate((1, 4), 0)  # it emigrates (visit 0 ends)
    back = Row(**{**row.__dict__, "version": 2})
    assert population.immigrate(back)  # it comes back two migrations later
    assert population.n_active == 1 and population.n == 1
    assert not population.deactivate((1, 4), 0)  # a stale message for visit 0
    assert population.n_active == 1
    assert not population.immigrate(back)  # the same visit again is ignored


def test_duplicates_are_recognised_by_their_genes():
    space = SearchSpace({"x": (0.0, 1.0), "n": (1, 5)})
    rng = np.random.default_rng(4)
    population = Population(space)
    row = _row(space, rng, 0, 0, 1.0)
    population.add(row)
    assert population.is_duplicate(row.genes.copy())
    assert not population.is_duplicate(space.sample(rng))
