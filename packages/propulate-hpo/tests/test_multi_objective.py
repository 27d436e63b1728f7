"""Multi-objective search: dominance, crowding and hypervolume against hand-computed values and
DEAP, objectives from loss functions, asynchronous NSGA-II, checkpoints and the command line."""

import json

import numpy as np
import pandas as pd
import pytest
from propulate_hpo import CheckpointError, Propulator, propulate
from propulate_hpo.messages import decode_row, encode_row
from propulate_hpo.mo_functions import MO_BENCHMARKS
from propulate_hpo.objectives import ObjectiveError, Objectives
from propulate_hpo.pareto import (
    crowding_distance,
    hypervolume,
    nondominated_ranks,
    pareto_mask,
)
from propulate_hpo.population import OK, Row
from propulate_hpo.propagators import DeapToolbox, PolynomialMutation

from shared_hpc import UserError
from shared_hpc.mpi import SerialComm

POINTS = np.array([[1, 4], [2, 2], [4, 1], [3, 3], [5, 5], [2, 5]], dtype=float)
ZDT1 = MO_BENCHMARKS["zdt1"]


def test_nondominated_sorting_of_a_hand_computed_example():
    assert nondominated_ranks(POINTS).tolist() == [0, 0, 0, 1, 2, 1]
    assert pareto_mask(POINTS).tolist() == [True, True, True, False, False, False]


def test_crowding_distance_of_a_hand_computed_front():
    front = np.array([[0, 4], [1, 2], [3, 1], [4, 0]], dtype=float)
    distance = crowding_distance(front)
    assert np.isinf(distance[[0, 3]]).all()
    assert distance[1] == pytest.approx(3 / 4 + 3 / 4)  # gaps 3 of 4 in f1, 3 of 4 in f2
    assert distance[2] == pytest.approx(3 / 4 + 2 / 4)


def test_hypervolume_in_two_and_three_dimensions():
    staircase = np.array([[1, 3], [2, 2], [3, 1], [3.5, 3.5]])  # the last is dominated
    assert hypervolume(staircase, np.array([4.0, 4.0])) == pytest.approx(3 + 2 + 1)
    boxes = np.array([[0, 0, 1], [1, 1, 0]], dtype=float)  # 4 + 2 - 1 overlap
    assert hypervolume(boxes, np.array([2.0, 2.0, 2.0])) == pytest.approx(5.0)
    assert hypervolume(np.array([[5.0, 0.0]]), np.array([4.0, 4.0])) == 0.0  # outside


def test_hypervolume_matches_monte_carlo_on_random_3d_points():
    rng = np.random.default_rng(0)
    points = rng.random((30, 3))
    ref = np.ones(3)
    samples = rng.random((200_000, 3))
    dominated = np.zeros(len(samples), dtype=bool)
    for p in points:
        dominated |= (samples >= p).all(axis=1)
    assert hypervolume(points, ref) == pytest.approx(dominated.mean(), abs=0.005)


def test_sorting_and_crowding_agree_with_deap():
    creator = pytest.importorskip("deap.creator")
    from deap import base, tools

    if not hasattr(creator, "FitnessMin3"):
        creator.create("FitnessMin3", base.Fitness, weights=(-1.0, -1.0, -1.0))
        creator.create("Point3", list, fitness=creator.FitnessMin3)
    rng = np.random.default_rng(1)
    values = np.round(rng.random((60, 3)), 1)  # ties, as real losses have
    spread = rng.random((60, 3))  # crowding ties are broken differently: none here
    individuals = []
    for i, v in enumerate(values):
        ind = creator.Point3([i])
        ind.fitness.values = tuple(v)
        individuals.append(ind)
    ranks = nondominated_ranks(values)
    for rank, front in enumerate(tools.sortNondominated(individuals, len(individuals))):
        rows = [ind[0] for ind in front]
        assert (ranks[rows] == rank).all()
    for front in tools.sortNondominated(individuals, len(individuals)):
        rows = [ind[0] for ind in front]
        for ind in front:
            ind.fitness.values = tuple(spread[ind[0]])
        tools.emo.assignCrowdingDist(front)
        ours = crowding_distance(spread[rows])
        # DEAP divides by the number of objectives as well: the same order
        theirs = 3 * np.array([ind.fitness.crowding_dist for ind in front])
        assert (np.isinf(ours) == np.isinf(theirs)).all()
        finite = np.isfinite(ours)
        assert ours[finite] == pytest.approx(theirs[finite])


def test_objectives_are_parsed_checked_and_read_from_what_a_loss_returns():
    objectives = Objectives("accuracy:max, time_s")
    assert objectives.names == ("accuracy", "time_s") and objectives.returned == ("accuracy",)
    values = objectives.values({"accuracy": 0.9, "other": 1.0}, {"time_s": 2.0})
    assert values == {"accuracy": 0.9, "time_s": 2.0}
    assert objectives.minimised(values).tolist() == [-0.9, 2.0]
    assert objectives.values((0.8,), {"time_s": 1.0})["accuracy"] == 0.8
    with pytest.raises(ObjectiveError, match="returned 2 objective"):
        objectives.values((0.8, 1.0), {"time_s": 1.0})
    with pytest.raises(ObjectiveError, match="returned no accuracy"):
        objectives.values({"acc": 1.0}, {"time_s": 1.0})
    with pytest.raises(ObjectiveError, match="returned a float"):
        objectives.values(0.5, {"time_s": 1.0})
    for bad, message in [
        ("a", "at least two"),
        ("a,a", "named twice"),
        ("a:up,b", "min or max"),
        ("worker,b", "taken by the results"),
    ]:
        with pytest.raises(UserError, match=message):
            Objectives(bad)


def test_rows_with_objectives_travel_in_messages():
    row = Row(3, 7, 1, 0.5, OK, 1.0, 2.0, 1, 0, np.array([0.1, 0.2]), np.array([0.5, -0.25]))
    back, curve = decode_row(encode_row(row, np.array([9.0])), dim=2, n_objectives=2)
    assert back.objectives.tolist() == [0.5, -0.25] and back.genes.tolist() == [0.1, 0.2]
    assert curve.tolist() == [9.0] and back.key == (3, 7)


def test_asynchronous_nsga2_approaches_the_zdt1_front():
    space = ZDT1.space(10)
    result = propulate(ZDT1.loss, space, generations=800, objectives=("f1", "f2"), seed=0)
    assert result.counts()["ok"] == 800
    reached = result.hypervolume(ZDT1.reference)
    random_search = hypervolume(
        np.array([ZDT1.function(x) for x in np.random.default_rng(0).random((800, 10))]),
        np.array(ZDT1.reference),
    )
    assert reached > 0.8 * ZDT1.best_hypervolume() and reached > random_search + 0.3
    front = result.pareto_front()
    assert list(front.columns[:2]) == ["f1", "f2"] and len(front) >= 10
    assert (np.diff(front["f1"]) >= 0).all() and (np.diff(front["f2"]) <= 0).all()
    assert result.headline().name.startswith("hypervolume")


def test_a_loss_with_the_wrong_number_of_objectives_fails_with_a_clear_message():
    calls = []

    def loss(params):
        calls.append(1)
        return (params["x"], 1.0 - params["x"]) if len(calls) % 2 else (params["x"],)

    space = {"x": (0.0, 1.0)}
    result = propulate(loss, space, generations=20, objectives=("a", "b"), seed=0)
    assert result.counts() == {"ok": 10, "failed": 10, "cancelled": 0}
    assert "returned 1 objective(s), expected 2 (a, b)" in result.first_error()


def test_measured_time_and_maximised_objectives(tmp_path):
    def loss(params):
        return {"score": params["x"], "note": 3.0}

    result = propulate(
        loss, {"x": (0.0, 1.0)}, generations=12, objectives=("score:max", "time_s"), seed=0
    )
    history = result.history
    assert (history["time_s"] > 0).all() and (history["note"] == 3.0).all()
    front = result.pareto_front()
    assert front["score"].iloc[0] == history["score"].max()  # sorted best first


def test_energy_is_measured_when_it_is_an_objective():
    result = propulate(
        lambda p: {"score": p["x"]},
        {"x": (0.0, 1.0)},
        generations=4,
        objectives=("score:max", "energy_j"),
        seed=0,
    )
    history = result.history
    assert (history["energy_j"] >= 0).all() and history["energy_measured"].isin([0, 1]).all()


def test_a_resumed_multi_objective_run_loses_no_evaluation(tmp_path):
    space = ZDT1.space(5)
    first = propulate(
        ZDT1.loss, space, generations=30, objectives=("f1", "f2"), checkpoint=tmp_path
    )
    second = propulate(
        ZDT1.loss, space, generations=50, objectives=("f1", "f2"), checkpoint=tmp_path
    )
    assert second.n_evaluations == 50
    keys = list(zip(second.history["worker"], second.history["generation"], strict=True))
    assert len(set(keys)) == 50
    earlier = first.history.set_index("generation")[["f1", "f2"]]
    again = second.history.set_index("generation").loc[earlier.index, ["f1", "f2"]]
    assert np.array_equal(earlier.to_numpy(), again.to_numpy())  # objectives kept exactly
    lines = [json.loads(line) for line in (tmp_path / "worker-00000.jsonl").read_text().split()]
    assert all(len(r["o"]) == 2 for r in lines if r["e"] == "done")
    with pytest.raises(CheckpointError, match="objectives"):
        propulate(ZDT1.loss, space, generations=60, objectives=("f2", "f1"), checkpoint=tmp_path)


def test_a_candidate_in_flight_at_a_crash_is_evaluated_again_with_its_objectives(tmp_path):
    space = ZDT1.space(2)
    propulate(ZDT1.loss, space, generations=6, objectives=("f1", "f2"), checkpoint=tmp_path)
    with (tmp_path / "worker-00000.jsonl").open("a") as log:  # died while evaluating #6
        log.write(json.dumps({"e": "start", "w": 0, "g": 6, "i": 0, "x": [0.25, 0.0], "t": 0.0}))
        log.write('\n{"e": "done", "w": 0, "g": 6, "o": [0.2')  # cut mid-write: a torn line
    result = propulate(
        ZDT1.loss, space, generations=9, objectives=("f1", "f2"), checkpoint=tmp_path
    )
    assert result.n_evaluations == 9 and result.counts()["ok"] == 9
    row = result.history.query("generation == 6").iloc[0]
    assert (row["f1"], row["f2"]) == pytest.approx(ZDT1.function(np.array([0.25, 0.0])))


def test_settings_that_cannot_work_with_objectives_are_refused():
    space = {"x": (0.0, 1.0)}
    for settings, message in [
        ({"objectives": ("a", "b"), "propagator": "cma"}, "breeds for one loss"),
        ({"propagator": "nsga2"}, "needs objectives"),
        ({"objectives": ("a", "b"), "early_stopping": 0.1}, "early stopping"),
        ({"objectives": ("x", "b")}, "named like parameters"),
    ]:
        with pytest.raises(UserError, match=message):
            Propulator(lambda p: 0.0, space, comm=SerialComm(), **settings)


def _deap_toolbox(space, weights):
    creator = pytest.importorskip("deap.creator")
    from deap import base, tools

    name = "Fit" + "".join("p" if w > 0 else "m" for w in weights)
    if not hasattr(creator, name):
        creator.create(name, base.Fitness, weights=weights)
        creator.create(name + "Individual", list, fitness=getattr(creator, name))
    low, up = space.lower.tolist(), space.upper.tolist()
    toolbox = base.Toolbox()
    toolbox.register("mate", tools.cxSimulatedBinaryBounded, low=low, up=up, eta=15.0)
    toolbox.register("mutate", tools.mutPolynomialBounded, low=low, up=up, eta=20.0, indpb=0.2)
    toolbox.register("select", tools.selNSGA2 if len(weights) > 1 else tools.selBest)
    return toolbox, getattr(creator, name + "Individual")


def test_a_deap_toolbox_breeds_valid_individuals_asynchronously():
    space = ZDT1.space(6)
    toolbox, individual = _deap_toolbox(space, (-1.0, -1.0))
    propagator = DeapToolbox(toolbox, individual, mu=12)
    result = propulate(
        ZDT1.loss, space, generations=300, objectives=("f1", "f2"), propagator=propagator, seed=2
    )
    genes = result.table.genes
    assert genes.shape == (300, 6) and ((genes >= 0) & (genes <= 1)).all()
    assert len(propagator._survivors) == 12
    rng = np.random.default_rng(0)
    random_search = np.array([ZDT1.function(x) for x in rng.random((300, 6))])
    reference = np.array([1.1, 10.0])  # random points are far from the front: a wide box
    assert result.hypervolume(reference) > hypervolume(random_search, reference) + 0.4


def test_a_deap_toolbox_with_one_loss_and_mismatched_weights():
    space = ZDT1.space(3)
    toolbox, individual = _deap_toolbox(space, (-1.0,))
    result = propulate(
        lambda p: sum(v**2 for v in p.values()),
        space,
        generations=150,
        propagator=DeapToolbox(toolbox, individual, mu=8),
        seed=0,
    )
    assert result.best_loss < 0.05
    toolbox, individual = _deap_toolbox(space, (1.0, -1.0))
    with pytest.raises(UserError, match="do not match"):
        Propulator(
            ZDT1.loss,
            space,
            objectives=("f1", "f2"),
            propagator=DeapToolbox(toolbox, individual, mu=8),
            comm=SerialComm(),
        )


def test_polynomial_mutation_stays_in_bounds_and_moves_genes():
    space = ZDT1.space(4)
    from propulate_hpo.population import Pool, Population

    pool = Pool(Population(space), genes=np.full((1, 4), 0.999))
    rng = np.random.default_rng(0)
    children = np.array(
        [PolynomialMutation(gene_probability=1.0)(pool, rng).genes[0] for _ in range(200)]
    )
    assert ((children >= 0) & (children <= 1)).all() and (children != 0.999).mean() > 0.9


def test_run_a_multi_objective_problem_and_summarize_its_checkpoint(tmp_path, capsys):
    from propulate_hpo.cli import main

    output, checkpoint = tmp_path / "out", tmp_path / "ckpt"
    argv = ["run", "--function", "zdt2", "--dim", "6", "--max-evaluations", "120"]
    assert main([*argv, "--output", str(output), "--checkpoint", str(checkpoint)]) == 0
    front = pd.read_csv(output / "pareto-front.csv")
    record = json.loads((output / "results.json").read_text())
    assert record["headline"]["name"] == "hypervolume of the Pareto front"
    assert len(record["metrics"]["pareto_front"]) == len(front) > 0
    assert record["metrics"]["objectives"] == ["f1:min", "f2:min"]
    assert (output / "progress.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["summarize", str(checkpoint), "--top", "2", "--output", str(tmp_path / "s")]) == 0
    printed = capsys.readouterr().out
    assert f"Pareto front: {len(front)} candidate(s)" in printed and "f1=" in printed


@pytest.mark.mpi(ranks=4)
def test_multi_objective_islands_on_4_ranks_share_one_result():
    from shared_hpc import get_comm

    space = ZDT1.space(8)
    result = propulate(
        ZDT1.loss,
        space,
        generations=400,  # enough that ranks descheduled on shared cores still converge
        objectives=("f1", "f2"),
        islands=2,
        migration_probability=0.2,
        seed=3,
    )
    assert result.n_evaluations == 1600 and result.n_islands == 2
    fronts = get_comm().allgather(result.pareto_front()[["f1", "f2"]].to_numpy())
    assert all(np.array_equal(front, fronts[0]) for front in fronts)
    assert result.hypervolume(ZDT1.reference) > 0.4 * ZDT1.best_hypervolume()  # random: 0
    assert sum(s["immigrants"] for s in result.migration_stats().values()) > 0
