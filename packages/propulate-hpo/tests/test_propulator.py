import math
import time

import numpy as np
import pytest
from propulate_hpo import (
    BestAtStep,
    CheckpointError,
    Propulator,
    RunConfig,
    SearchOptions,
    SearchSpace,
    benchmark,
    fully_connected,
    load_loss,
    propulate,
    run_search,
    summarize_checkpoint,
)
from propulate_hpo.propagators import Conditional, InitUniform

from shared_hpc import UserError


def test_finds_the_sphere_optimum():
    loss, space = benchmark("sphere")
    result = propulate(loss, space, generations=800, seed=0)
    assert result.best_loss < 1e-3
    assert np.allclose(list(result.best_params.values()), 0.0, atol=0.05)
    assert result.n_evaluations == 800 and result.counts()["ok"] == 800


def test_same_seed_same_history_other_seed_other_history():
    loss, space = benchmark("rastrigin", dim=5)

    def history(seed):
        frame = propulate(loss, space, generations=150, seed=seed).history
        return frame[["generation", "loss", *space.names]].to_numpy()

    first, again, other = history(7), history(7), history(8)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_failing_and_nan_losses_are_recorded_and_the_run_goes_on():
    space = SearchSpace({"x": (-1.0, 1.0), "y": (-1.0, 1.0)})

    def loss(p):
        if p["x"] > 0.5:
            raise RuntimeError("diverged")
        if p["x"] < -0.5:
            return math.nan
        if p["y"] > 0.9:
            return math.inf
        return p["x"] ** 2 + p["y"] ** 2

    result = propulate(loss, space, generations=300, seed=0)
    history = result.history
    failed = history[history["status"] == "failed"]
    assert result.n_evaluations == 300 and len(failed) > 20
    assert set(failed["error"].str.split(":").str[0]) == {
        "RuntimeError",
        "loss is nan",
        "loss is inf",
    }
    assert failed["error"].str.contains("diverged").any()
    assert failed["loss"].isna().all() and not failed["active"].any()
    ok = history[history["status"] == "ok"]
    assert ok["x"].between(-0.5, 0.5).all() and result.best_loss < 1e-2
    assert result.best_params["x"] == pytest.approx(0.0, abs=0.1)


def test_loss_may_return_metrics_and_may_take_the_worker_communicator():
    space = SearchSpace({"x": (0.0, 1.0)})
    seen = []

    def loss(p, comm):
        seen.append(comm.Get_size())
        return {"loss": p["x"], "accuracy": 1 - p["x"]}

    history = propulate(loss, space, generations=20).history
    assert np.allclose(history["accuracy"], 1 - history["loss"])
    assert seen == [1] * 20


def test_generator_losses_are_stopped_early_by_the_surrogate():
    space = SearchSpace({"rate": (0.01, 1.0)})

    def training(p):
        loss = 10.0
        for _ in range(10):
            loss *= 1 - p["rate"]
            yield loss
        return {"final_rate": p["rate"]}

    result = propulate(training, space, generations=60, seed=0, surrogate=BestAtStep(0.1))
    history = result.history
    cancelled = history[history["status"] == "cancelled"]
    finished = history[history["status"] == "ok"]
    assert len(cancelled) > 10 and (cancelled["steps"] < 10).all()
    assert (finished["steps"] == 10).all() and finished["final_rate"].notna().all()
    # a cancelled candidate's loss is its last intermediate loss, worse than the best at that step
    assert (cancelled["loss"] > 10 * (1 - history["rate"].max()) ** cancelled["steps"]).all()
    plain = propulate(training, space, generations=20, seed=0).history
    assert (plain["status"] == "ok").all() and (plain["steps"] == 10).all()


def test_a_generator_yielding_nan_or_nothing_fails_cleanly():
    space = SearchSpace({"x": (0.0, 1.0)})

    def bad(p):
        yield 1.0
        if p["x"] > 0.5:
            yield math.nan

    def empty(p):
        return
        yield

    history = propulate(bad, space, generations=40, seed=0).history
    nan = history[history["x"] > 0.5]
    assert (nan["status"] == "failed").all() and nan["error"].str.contains("nan").all()
    assert (history[history["x"] <= 0.5]["status"] == "ok").all()
    empty_history = propulate(empty, space, generations=3).history
    assert (empty_history["status"] == "failed").all()
    assert empty_history["error"].str.contains("no loss").all()


def test_a_wall_clock_budget_stops_the_run():
    space = SearchSpace({"x": (0.0, 1.0)})

    def slow(p):
        time.sleep(0.01)
        return p["x"]

    started = time.perf_counter()
    result = propulate(slow, space, generations=None, budget_s=0.5)
    elapsed = time.perf_counter() - started
    assert 10 < result.n_evaluations < 60 and elapsed < 2.0


def test_a_total_evaluation_budget():
    loss, space = benchmark("sphere")
    result = propulate(loss, space, generations=None, max_evaluations=37)
    assert result.n_evaluations == 37
    with pytest.raises(UserError, match="max_evaluations"):
        propulate(loss, space, max_evaluations=0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"generations": 0}, "generations must be >= 1"),
        ({"budget_s": -1.0}, "budget_s"),
        ({"migration_probability": 1.5}, "migration_probability"),
        ({"pop_size": 1}, "pop_size"),
        ({"seed": -3}, "seed"),
        ({"islands": 2}, "2 islands need at least 2 workers"),
        ({"island_sizes": [2]}, "add up to 2 workers, there are 1"),
        ({"islands": 2, "island_sizes": [1, 1, 1]}, "3 island sizes"),
        ({"no_such_option": 1}, "unexpected option 'no_such_option'"),
        ({"ranks_per_worker": 2}, "cannot be split"),
        ({"topology": [[0, 1], [1, 0]]}, "1 x 1"),
        ({"migrants": -1}, "migrants"),
        ({"propagator": [InitUniform(), InitUniform()]}, "2 propagators for 1 islands"),
        ({"propagator": 3}, "Propagator"),
        ({"propagator": "gaa"}, "unknown propagator 'gaa'"),
        ({"propagator": "cma", "space": {"x": (0.0, 1.0), "c": ("a", "b")}}, "numeric"),
        ({"early_stopping": -0.5}, "margin"),
        ({"early_stopping": 0.5, "surrogate": BestAtStep(0.1)}, "not both"),
    ],
)
def test_bad_options_are_refused_before_any_work(options, message):
    calls = []
    space = SearchSpace(options.pop("space", {"x": (0.0, 1.0)}))
    expected = TypeError if message.startswith(("Propagator", "unexpected")) else UserError
    with pytest.raises(expected, match=message):
        Propulator(lambda p: calls.append(p) or 0.0, space, **options).run()
    assert calls == []


def test_bad_search_space_and_loss_are_refused():
    with pytest.raises(UserError, match="empty range"):
        Propulator(lambda p: 0.0, {"x": (1.0, 1.0)})
    with pytest.raises(TypeError, match="callable"):
        Propulator(3.0, {"x": (0.0, 1.0)})


def test_results_plot_and_csv(tmp_path):
    loss, space = benchmark("himmelblau")
    result = propulate(loss, space, generations=50)
    csv = result.to_csv(tmp_path / "history.csv")
    png = result.plot(tmp_path / "progress.png")
    assert csv.read_text().splitlines()[0].startswith("worker,generation,island,loss,status")
    assert len(csv.read_text().splitlines()) == 51
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "50 evaluations" in result.summary()


def test_keyword_options_and_an_options_object_mean_the_same_search():
    loss, space = benchmark("sphere")
    by_keywords = propulate(loss, space, generations=60, seed=5, propagator="ga-paper")
    options = SearchOptions(generations=60, seed=5, propagator="ga-paper")
    by_object = propulate(loss, space, options)
    assert np.array_equal(by_keywords.table.genes, by_object.table.genes)
    # the command line's settings are the library's: a RunConfig is a SearchOptions
    config = RunConfig(function="sphere", generations=60, seed=5, propagator="ga-paper")
    assert np.array_equal(run_search(config).table.genes, by_object.table.genes)


def test_every_default_is_the_options_default():
    options = SearchOptions()
    assert options.generations == 100  # no limit given: 100 per worker
    assert SearchOptions(budget_s=5.0).generations is None
    propulator = Propulator(lambda p: p["x"], {"x": (0.0, 1.0)})
    assert propulator.options == options and propulator.pop_size == 8
    assert isinstance(propulator.propagator, Conditional)  # the default breeding, "ga"
    assert Propulator(lambda p: p["x"], {"x": (0.0, 1.0)}, pop_size=4).pop_size == 4


def test_python_names_of_options_map_onto_the_options(tmp_path):
    propulator = Propulator(
        lambda p: p["x"], {"x": (0.0, 1.0)}, checkpoint_dir=str(tmp_path), islands=[1]
    )
    assert propulator.options.checkpoint == tmp_path
    assert propulator.options.island_sizes == (1,) and propulator.options.islands == 1
    assert isinstance(propulator.propagator, Conditional)
    cma = Propulator(lambda p: p["x"], {"x": (0.0, 1.0)}, propagator="cma")
    assert type(cma.propagator).__name__ == "CMAES" and cma.options.propagator == "cma"
    with pytest.raises(TypeError, match="not both"):
        Propulator(lambda p: 0.0, {"x": (0.0, 1.0)}, checkpoint=tmp_path, checkpoint_dir=tmp_path)


def test_the_fully_connected_topology_sends_migrants_between_every_pair():
    assert fully_connected(3, 2).tolist() == [[0, 2, 2], [2, 0, 2], [2, 2, 0]]
    assert Propulator(lambda p: 0.0, {"x": (0.0, 1.0)}, migrants=0).topology.tolist() == [[0]]


def test_early_stopping_margin_gives_the_best_at_step_surrogate():
    propulator = Propulator(lambda p: 0.0, {"x": (0.0, 1.0)}, early_stopping=0.2)
    assert isinstance(propulator.surrogate, BestAtStep) and propulator.surrogate.margin == 0.2
    assert Propulator(lambda p: 0.0, {"x": (0.0, 1.0)}).surrogate is None


def test_load_loss_finds_modules_and_files_and_names_what_is_wrong(tmp_path):
    assert load_loss("math:sqrt")(4.0) == 2.0
    (tmp_path / "mine.py").write_text("def f(p):\n    return 1.0\n")
    assert load_loss(f"{tmp_path / 'mine.py'}:f")({}) == 1.0
    for spec, message in (
        ("nowhere:f", "cannot import 'nowhere'"),
        ("math:no_such", "has no function 'no_such'"),
        (f"{tmp_path / 'missing.py'}:f", "does not exist"),
        ("no-colon", "package.module:function"),
    ):
        with pytest.raises(UserError, match=message):
            load_loss(spec)


def test_a_checkpoint_summary_lists_the_best_candidates(tmp_path):
    loss, space = benchmark("sphere")
    result = propulate(loss, space, generations=25, checkpoint_dir=tmp_path, seed=2)
    summary = summarize_checkpoint(tmp_path)
    assert summary.result.n_evaluations == 25 and summary.in_flight == 0
    assert summary.result.best_loss == result.best_loss
    text = summary.summary(top=3)
    assert "25 finished candidates, 0 in flight" in text and "#3 loss" in text
    with pytest.raises(CheckpointError, match="not a propulate-hpo checkpoint"):
        summarize_checkpoint(tmp_path / "nothing")


def test_a_result_gives_the_figures_of_a_run_record():
    loss, space = benchmark("himmelblau")
    result = propulate(loss, space, generations=30, seed=1)
    metrics = result.metrics()
    assert metrics["best_loss"] == result.best_loss and metrics["evaluations"] == 30
    assert metrics["ok"] == 30 and "migration" not in metrics and "candidates" not in metrics
    assert metrics["best_params"] == result.best_params
    headline = result.headline()
    assert (headline.name, headline.value, headline.higher_is_better) == (
        "best loss",
        result.best_loss,
        False,
    )


def test_the_record_keeps_every_candidates_own_metrics():
    space = SearchSpace({"x": (0.0, 1.0)})
    result = propulate(lambda p: {"loss": p["x"], "energy_j": 10 * p["x"]}, space, generations=12)
    candidates = result.metrics()["candidates"]
    assert len(candidates) == 12
    assert set(candidates[0]) == {"worker", "generation", "loss", "status", "energy_j"}
    assert all(c["energy_j"] == pytest.approx(10 * c["loss"]) for c in candidates)
    assert [c["loss"] for c in candidates] == result.history["loss"].tolist()
