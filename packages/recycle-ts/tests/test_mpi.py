"""Under ``mpiexec -n 2``: the search runs one propulate-hpo worker per rank, and every rank
ends with the same outcome."""

import pytest

pytest.importorskip("propulate_hpo")


@pytest.mark.mpi(ranks=2)
def test_two_ranks_search_together_and_agree(comm, make_load):
    from recycle_ts.config import ForecastConfig
    from recycle_ts.data import to_cycles
    from recycle_ts.hpo import search

    series = to_cycles(make_load(days=40), "time", ["load"], cycle=24)
    config = ForecastConfig(target=["load"], history=7, horizon=1, epochs=2, heads=2, cycle="24")
    result = search(series, config, generations=1, comm=comm, seed=1)
    assert len(result.candidates) == 2
    assert {c["worker"] for c in result.candidates} == {0, 1}
    assert comm.allgather(result.best_params) == [result.best_params] * 2
    best = min(result.candidates, key=lambda c: c["loss"])
    assert result.best_params == best["params"]
    assert result.metrics()["best_validation_loss"] == pytest.approx(best["loss"], rel=1e-6)
