"""The digits HPO: a real torch training per candidate, data-parallel over the worker's ranks."""

from functools import partial

import pytest
from propulate_hpo import BestAtStep, propulate
from propulate_hpo.digits import DIGITS_SPACE, digits_data, digits_loss

from shared_hpc import SerialComm


def test_digits_data_is_split_without_overlap():
    data = digits_data()
    sizes = {name: len(x) for name, (x, _) in data.items()}
    assert sizes == {"train": 1078, "val": 359, "test": 360}
    assert all(x.min() >= 0.0 and x.max() <= 1.0 for x, _ in data.values())


def test_one_candidate_trains_and_reports_energy():
    params = {"lr": 0.01, "width": 64, "dropout": 0.1, "optimizer": "adam"}
    generator = digits_loss(params, SerialComm(), epochs=5)
    steps = []
    while True:
        try:
            steps.append(next(generator))
        except StopIteration as stop:
            metrics = stop.value
            break
    losses = [s["loss"] for s in steps]
    assert len(losses) == 5 and losses[-1] < 0.5 * losses[0]
    assert metrics["val_accuracy"] > 0.85 and metrics["test_accuracy"] > 0.85
    assert metrics["energy_j"] > 0 and metrics["energy_j"] >= steps[-1]["energy_j"]
    assert metrics["energy_measured"] in (0.0, 1.0)


def test_a_bad_learning_rate_trains_badly():
    params = {"lr": 1e-4, "width": 16, "dropout": 0.5, "optimizer": "sgd"}
    losses = [s["loss"] for s in digits_loss(params, SerialComm(), epochs=3)]
    assert losses[-1] > 1.5  # barely better than chance (ln 10 = 2.3)


@pytest.mark.mpi(ranks=4)
def test_two_workers_of_two_ranks_train_data_parallel_with_early_stopping():
    loss = partial(digits_loss, epochs=4)
    result = propulate(
        loss,
        DIGITS_SPACE,
        generations=3,
        ranks_per_worker=2,
        seed=0,
        surrogate=BestAtStep(0.3, min_step=1),
    )
    history = result.history
    assert result.n_workers == 2 and result.n_evaluations == 6
    assert set(history["status"]) <= {"ok", "cancelled"}
    assert (history["energy_j"] > 0).all()
    ok = history[history["status"] == "ok"]
    assert len(ok) > 0 and ok["test_accuracy"].notna().all()
