"""Training: it learns, it resumes exactly, and bad checkpoints or data are refused."""

import numpy as np
import pytest
import torch
from petnet.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from petnet.config import ModelConfig, PETNetConfig, TrainConfig
from petnet.inference import PETNetSorter
from petnet.metrics import score
from petnet.train import train

from shared_hpc import UserError

QUICK = PETNetConfig(train=TrainConfig(epochs=2, batch_size=256, max_steps_per_epoch=12))


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def trained(train_singles, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return train(train_singles, QUICK, out), out


def test_short_training_lowers_the_loss_and_beats_chance(trained, test_singles):
    result, out = trained
    assert result.history[1]["loss"] < result.history[0]["loss"]
    assert (out / "best.pt").is_file() and (out / "last.pt").is_file()
    assert result.energy.seconds > 0 and result.energy.total_joules >= 0
    assert (
        result.metrics()["best_val_f1"]
        == result.best_f1
        == max(h["val_f1"] for h in result.history)
    )
    headline = result.headline()
    assert headline.value == round(result.best_f1, 4) and headline.paper == 0.952
    sorter = PETNetSorter.from_checkpoint(out / "best.pt")
    assert sorter.engine == "events"  # trained quiescent, so it runs event-driven
    decoded = sorter.predict(test_singles)
    stepped = PETNetSorter.from_checkpoint(out / "best.pt", engine="steps").predict(test_singles)
    assert np.array_equal(decoded.flags, stepped.flags) and decoded.spurious == stepped.spurious
    f1 = score(test_singles, decoded.flags, decoded.spurious).f1
    rng = np.random.default_rng(0)
    guess = rng.random(len(test_singles)) < decoded.flags.mean()
    chance = score(test_singles, guess).f1
    assert f1 > 0.9 and f1 > chance + 0.3


def test_resume_continues_exactly_where_the_run_stopped(trained, train_singles, tmp_path):
    result, out = trained

    def stop_after_first_epoch(message):
        raise Interrupt(message)

    with pytest.raises(Interrupt):
        train(train_singles, QUICK, tmp_path, log=stop_after_first_epoch)
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 0
    resumed = train(train_singles, QUICK, tmp_path, resume=tmp_path / "last.pt")
    assert [h["val_f1"] for h in resumed.history] == [h["val_f1"] for h in result.history]
    a = load_checkpoint(out / "last.pt")["state_dict"]
    b = load_checkpoint(tmp_path / "last.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_foreign_corrupt_and_mismatched_checkpoints_are_refused(trained, train_singles, tmp_path):
    _, out = trained
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a PETNet checkpoint"):
        PETNetSorter.from_checkpoint(foreign)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes((out / "last.pt").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(corrupt)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(text)
    payload = load_checkpoint(out / "last.pt")
    payload.pop("format")
    other_world = save_checkpoint(tmp_path / "world.pt", {**payload, "world_size": 4})
    with pytest.raises(CheckpointError, match="same number of ranks"):
        train(train_singles, QUICK, tmp_path, resume=other_world)
    other_model = PETNetConfig(model=ModelConfig(hidden=(8,)), train=QUICK.train)
    with pytest.raises(CheckpointError, match="different model"):
        train(train_singles, other_model, tmp_path, resume=out / "last.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        train(train_singles, QUICK, tmp_path, resume=tmp_path / "missing.pt")
    assert issubclass(CheckpointError, UserError)  # the command line answers in one line


def test_training_needs_truth_and_enough_samples(train_singles, hand_singles, tmp_path):
    measured = train_singles.subset(np.arange(100))
    measured.decay_id = measured.scattered = None
    with pytest.raises(UserError, match="ground truth"):
        train(measured, QUICK, tmp_path)
    tiny = hand_singles([0.0, 1.0, 9.0, 10.0], [0, 32, 1, 33], [511] * 4, decay_id=[1, 1, 2, 2])
    with pytest.raises(UserError, match="too few"):
        train(tiny, QUICK, tmp_path)


def test_dense_architecture_trains_and_predicts(train_singles, test_singles, tmp_path):
    config = PETNetConfig(
        model=ModelConfig(architecture="dense", hidden=(32, 32)),
        train=TrainConfig(epochs=1, batch_size=8, max_steps_per_epoch=3),
    )
    result = train(train_singles, config, tmp_path)
    sorter = PETNetSorter.from_checkpoint(result.best_checkpoint)
    part = test_singles.subset(np.arange(2000))
    decoded = sorter.predict(part)
    assert decoded.flags.shape == (2000,) and decoded.flags.any()
    wrong = PETNetSorter.from_checkpoint(result.best_checkpoint)
    wrong.scanner = wrong.scanner.__class__(name="other", crystals_per_ring=32)
    with pytest.raises(UserError, match="trained for scanner"):
        wrong.predict(part)
