"""Tests on 4 ranks: ``mpiexec -n 4 python -m pytest -m mpi tests/test_mpi.py``."""

import math
import time
from collections import Counter

import pytest
from propulate_hpo import (
    BestAtStep,
    CheckpointError,
    Propulator,
    RunConfig,
    SearchSpace,
    benchmark,
    propulate,
)

from shared_hpc import get_comm

pytestmark = pytest.mark.mpi(ranks=4)


def _population_view(propulator):
    """(island, sorted (worker, generation, active, version)) of this rank's population."""
    population = propulator.population
    n = population.n
    rows = sorted(
        zip(
            population.worker[:n].tolist(),
            population.generation[:n].tolist(),
            population.active[:n].tolist(),
            population.version[:n].tolist(),
            strict=True,
        )
    )
    return propulator.layout.island, rows


def test_finds_the_sphere_optimum_on_4_ranks():
    loss, space = benchmark("sphere")
    result = propulate(loss, space, generations=250, seed=0)
    assert result.n_workers == 4 and result.n_evaluations == 1000
    keys = Counter((r["worker"], r["generation"]) for r in result.records)
    assert len(keys) == 1000
    assert Counter(w for w, _ in keys) == {0: 250, 1: 250, 2: 250, 3: 250}
    assert result.best_loss < 1e-3


def test_every_worker_of_an_island_ends_with_the_same_population():
    loss, space = benchmark("rastrigin", dim=4)
    propulator = Propulator(loss, space, generations=100, seed=1)
    propulator.run()
    views = get_comm().allgather(_population_view(propulator))
    assert all(view == views[0] for view in views)
    assert len(views[0][1]) == 400  # each rank knows all 400 individuals


@pytest.mark.parametrize("pollination", [False, True], ids=["migration", "pollination"])
def test_islands_exchange_migrants(pollination):
    loss, space = benchmark("rastrigin", dim=4)
    propulator = Propulator(
        loss,
        space,
        generations=120,
        seed=2,
        islands=2,
        migration_probability=0.9,
        pollination=pollination,
    )
    result = propulator.run()
    stats = result.migration_stats()
    sent = stats[0]["emigrants"] + stats[1]["emigrants"]
    received = stats[0]["immigrants"] + stats[1]["immigrants"]
    assert stats[0]["emigrants"] > 10 and stats[1]["emigrants"] > 10
    views = get_comm().allgather(_population_view(propulator))
    for island in (0, 1):
        same = [rows for i, rows in views if i == island]
        assert len(same) == 2 and same[0] == same[1]  # the island's workers agree
    active = result.active_sets()
    if pollination:
        # copies: what an island already holds is not taken twice; each taken copy replaces one
        assert 0 < received <= sent
        assert 0 < stats[0]["replaced"] + stats[1]["replaced"] <= received
        assert active[0] & active[1]  # copies: the best live on both islands
    else:
        assert received == sent  # every migrant arrived exactly once
        assert not active[0] & active[1]  # a migrant lives on one island only
        assert len(active[0]) + len(active[1]) == 480  # nobody lost, nobody duplicated
        moved = {k for k in active[1] if k[0] < 2}  # bred on island 0, now active on island 1
        assert moved


def test_workers_of_two_ranks_get_their_communicator():
    space = SearchSpace({"x": (-1.0, 1.0)})

    def loss(params, comm):
        # a collective over the worker's ranks: both must evaluate the same candidate
        total = comm.allreduce(params["x"])
        return {
            "loss": total**2,
            "ranks": comm.Get_size(),
            "agree": float(total == 2 * params["x"]),
        }

    result = propulate(loss, space, generations=15, ranks_per_worker=2, seed=0)
    history = result.history
    assert result.n_workers == 2 and result.n_evaluations == 30
    assert (history["ranks"] == 2).all() and (history["agree"] == 1.0).all()


def test_early_stopping_is_coherent_across_the_ranks_of_a_worker():
    space = SearchSpace({"rate": (0.01, 1.0)})

    def training(params, comm):
        loss = 10.0
        for _ in range(8):
            loss *= 1 - params["rate"]
            comm.allreduce(1)  # a mismatch of cancel decisions between the ranks would hang
            yield loss

    result = propulate(
        training, space, generations=25, ranks_per_worker=2, seed=0, surrogate=BestAtStep(0.1)
    )
    counts = result.counts()
    assert result.n_evaluations == 50 and counts["cancelled"] > 5 and counts["ok"] > 0


def test_failing_and_nan_losses_on_4_ranks():
    space = SearchSpace({"x": (-1.0, 1.0)})
    rank = get_comm().Get_rank()

    def loss(p):
        if rank == 1 and p["x"] > 0:
            raise ValueError("rank 1 fails on x > 0")
        return math.nan if rank == 2 else p["x"] ** 2

    result = propulate(loss, space, generations=40, seed=0)
    history = result.history
    assert result.n_evaluations == 160
    assert (history[history["worker"] == 2]["status"] == "failed").all()
    failed_1 = history[(history["worker"] == 1) & (history["status"] == "failed")]
    assert len(failed_1) > 0 and failed_1["error"].str.contains("rank 1 fails").all()
    assert (history[history["worker"].isin([0, 3])]["status"] == "ok").all()
    assert result.best_loss < 1e-2


def test_a_wall_clock_budget_stops_all_ranks():
    space = SearchSpace({"x": (0.0, 1.0)})
    rank = get_comm().Get_rank()

    def slow(p):
        time.sleep(0.005 * (rank + 1))  # uneven: rank 3 is four times slower than rank 0
        return p["x"]

    started = time.perf_counter()
    result = propulate(slow, space, generations=None, budget_s=1.0)
    elapsed = max(get_comm().allgather(time.perf_counter() - started))
    per_worker = Counter(r["worker"] for r in result.records)
    assert per_worker[0] > 2 * per_worker[3] > 0  # nobody waited for the slowest
    assert elapsed < 3.0


def test_a_total_budget_lets_fast_workers_do_more():
    space = SearchSpace({"x": (0.0, 1.0)})
    rank = get_comm().Get_rank()

    def slow(p):
        time.sleep(0.002 * (1 + 3 * (rank == 3)))  # rank 3 is four times slower
        return p["x"]

    result = propulate(slow, space, generations=None, max_evaluations=200, seed=0)
    per_worker = Counter(r["worker"] for r in result.records)
    assert 200 <= result.n_evaluations <= 203  # at most the candidates started together
    assert per_worker[0] > 2 * per_worker[3]


def test_checkpoint_resume_and_refusal_on_4_ranks(shared_dir):
    loss, space = benchmark("sphere")
    propulate(loss, space, generations=20, checkpoint_dir=shared_dir, seed=0)
    result = propulate(loss, space, generations=35, checkpoint_dir=shared_dir, seed=0)
    assert result.n_evaluations == 140
    assert len({(r["worker"], r["generation"]) for r in result.records}) == 140
    _, other = benchmark("sphere", dim=3)
    with pytest.raises(CheckpointError, match="another search space"):
        propulate(loss, other, generations=5, checkpoint_dir=shared_dir)


def test_parallel_nelder_mead_cma_and_pso_on_4_ranks():
    from propulate_hpo.propagators import ActiveCMA, BasicPSO, ParallelNelderMead

    loss, space = benchmark("sphere", dim=4)
    # random search with 800 samples reaches about 1.7 here. Asynchronous Nelder-Mead's result
    # depends on how the ranks interleave: after 200 evaluations per worker, one run in 80
    # ended above 0.2 with the code before the Skeleton v2 refactor and one with the code
    # after it; after 300, none of 100 ended above 0.07
    for propagator, target, generations in (
        (ParallelNelderMead(), 0.2, 300),
        (ActiveCMA(), 1e-2, 200),
        (BasicPSO(particles=2), 1e-2, 200),
    ):
        result = propulate(loss, space, generations=generations, seed=0, propagator=propagator)
        assert result.best_loss < target, type(propagator).__name__


def test_resume_rebuilds_the_islands_from_the_migration_log(shared_dir):
    """Migrations are logged; a resumed run replays them: nobody lost, nobody on two islands."""
    loss, space = benchmark("rastrigin", dim=4)
    options = {"islands": 2, "migration_probability": 0.9, "checkpoint_dir": shared_dir, "seed": 4}
    first = propulate(loss, space, generations=40, **options)
    assert sum(s["emigrants"] for s in first.migration_stats().values()) > 0
    propulator = Propulator(loss, space, generations=60, **options)
    result = propulator.run()
    assert result.n_evaluations == 240
    active = result.active_sets()
    assert not active[0] & active[1]
    assert len(active[0]) + len(active[1]) == 240
    views = get_comm().allgather(_population_view(propulator))
    for island in (0, 1):
        same = [rows for i, rows in views if i == island]
        assert same[0] == same[1]


def test_the_command_line_and_the_library_build_the_same_search():
    loss, space = benchmark("sphere")
    config = RunConfig(function="sphere", island_sizes=(1, 3), migrants=2)
    settings = {"islands": [1, 3], "migrants": 2}
    for propulator in (Propulator(loss, space, config), Propulator(loss, space, **settings)):
        assert propulator.layout.sizes == [1, 3]
        assert propulator.topology.tolist() == [[0, 2], [2, 0]]
        assert propulator.pop_size == 8  # max(8, 2 x the island's workers) on both islands
