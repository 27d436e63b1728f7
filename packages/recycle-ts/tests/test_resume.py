"""An interrupted training run continues from its last epoch and ends as an uninterrupted one."""

import json

import pandas as pd
import pytest
import torch
from recycle_ts.cli import STATE, main
from recycle_ts.config import ForecastConfig
from recycle_ts.data import to_cycles
from recycle_ts.training import fit

from shared_hpc import UserError

SMALL = {"history": 7, "horizon": 2, "epochs": 5, "patience": 10, "width": 16, "heads": 2,
         "cycle": "24", "dropout": 0.2}  # fmt: skip
"""Dropout on: a resumed run must also continue the random draws of the uninterrupted one."""


class Crash(Exception):
    """Stands for the process dying after an epoch."""


@pytest.fixture
def series(load_frame):
    return to_cycles(load_frame, "time", ["load"], cycle=24)


def _crash_after(epoch: int):
    def progress(record):
        if record.epoch == epoch:
            raise Crash

    return progress


@pytest.mark.parametrize("model", ["recycle", "lstm"])
def test_a_resumed_run_ends_as_the_uninterrupted_one(tmp_path, series, model):
    config = ForecastConfig(target=["load"], model=model, **SMALL)
    whole = fit(series, config, references=False)
    state = tmp_path / STATE
    with pytest.raises(Crash):
        fit(series, config, references=False, state_file=state, progress=_crash_after(2))
    resumed = fit(series, config, references=False, state_file=state, resume=True)
    assert resumed.resumed_epochs == 2 and whole.resumed_epochs == 0
    assert [(r.train_loss, r.validation_loss) for r in resumed.history] == [
        (r.train_loss, r.validation_loss) for r in whole.history
    ]
    for name, tensor in whole.forecaster.network.state_dict().items():
        assert torch.equal(tensor, resumed.forecaster.network.state_dict()[name]), name
    pd.testing.assert_frame_equal(resumed.test_forecasts, whole.test_forecasts)


def test_a_finished_run_resumes_without_training_and_more_epochs_continue_it(tmp_path, series):
    config = ForecastConfig(target=["load"], **{**SMALL, "epochs": 2})
    state = tmp_path / STATE
    first = fit(series, config, references=False, state_file=state)
    again = fit(series, config, references=False, state_file=state, resume=True)
    assert again.resumed_epochs == 2 and len(again.history) == 2
    pd.testing.assert_frame_equal(again.test_forecasts, first.test_forecasts)
    longer = fit(series, ForecastConfig(target=["load"], **{**SMALL, "epochs": 3}),
                 references=False, state_file=state, resume=True)  # fmt: skip
    assert longer.resumed_epochs == 2 and len(longer.history) == 3


def test_early_stopping_survives_the_resume(tmp_path, series):
    config = ForecastConfig(target=["load"], **{**SMALL, "epochs": 30, "patience": 0})
    whole = fit(series, config, references=False)
    assert len(whole.history) < 30  # it stopped early
    state = tmp_path / STATE
    with pytest.raises(Crash):
        fit(series, config, references=False, state_file=state, progress=_crash_after(1))
    resumed = fit(series, config, references=False, state_file=state, resume=True)
    assert resumed.best_epoch == whole.best_epoch and len(resumed.history) == len(whole.history)


def test_other_settings_or_data_are_refused(tmp_path, series, make_load):
    config = ForecastConfig(target=["load"], **SMALL)
    state = tmp_path / STATE
    with pytest.raises(Crash):
        fit(series, config, {"name": "a"}, references=False, state_file=state,
            progress=_crash_after(1))  # fmt: skip
    other = ForecastConfig(target=["load"], **{**SMALL, "lr": 0.01})
    with pytest.raises(UserError, match=r"lr=0\.001"):
        fit(series, other, {"name": "a"}, references=False, state_file=state, resume=True)
    with pytest.raises(UserError, match="made with the data"):
        fit(series, config, {"name": "b"}, references=False, state_file=state, resume=True)
    forced = fit(series, config, {"name": "b"}, references=False, state_file=state,
                 resume=True, force_resume=True)  # fmt: skip
    assert forced.resumed_epochs == 1
    state.write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="cannot read the training state"):
        fit(series, config, {"name": "a"}, references=False, state_file=state, resume=True)


def test_train_resume_on_the_command_line(tmp_path, load_csv):
    common = ["train", "--csv", str(load_csv), "--date-column", "time", "--target", "load",
              "--output", str(tmp_path / "run"), "--cycle", "24", "--history", "7",
              "--horizon", "1", "--width", "16", "--heads", "2", "--patience", "20"]  # fmt: skip
    assert main([*common, "--epochs", "2"]) == 0
    assert (tmp_path / "run" / STATE).exists()
    assert main([*common, "--epochs", "4", "--resume"]) == 0
    record = json.loads((tmp_path / "run" / "results.json").read_text())
    assert record["metrics"]["resumed_epochs"] == 2 and record["metrics"]["epochs"] == 4
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3, 4]
    assert main([*common, "--epochs", "4", "--resume", "--lr", "0.01"]) == 2
