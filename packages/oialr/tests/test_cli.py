"""The command line: train, resume, compare, bad input, a second run, a failing rank."""

from __future__ import annotations

import csv
import dataclasses

import pytest
import torch
from oialr.cli import main

from shared_hpc import RunRecord, lock_folder

QUICK = [
    "--epochs", "3", "--model.width", "64", "--model.depth", "2", "--schedule.check-every", "5",
    "--schedule.frequency", "5", "--schedule.stability", "0.5",
]  # fmt: skip


def test_train_writes_record_history_events_plot_and_checkpoint(tmp_path):
    assert main(["train", "--output", str(tmp_path), *QUICK]) == 0
    record = RunRecord.read(tmp_path / "results.json")
    assert record.config["recipe"] == "mlp-digits" and record.config["epochs"] == 3
    assert record.metrics["test_accuracy"] > 0.5  # 3 epochs of a small MLP; chance is 0.1
    assert record.metrics["trainable_share"] < 1.0
    assert record.headline["name"].startswith("test accuracy (mlp-digits, ")
    history = list(csv.DictReader((tmp_path / "history.csv").open()))
    assert [int(h["epoch"]) for h in history] == [1, 2, 3]
    kinds = {e["kind"] for e in csv.DictReader((tmp_path / "events.csv").open())}
    assert {"check", "switch", "cut"} <= kinds
    assert (tmp_path / "ranks.png").stat().st_size > 0
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["recipe"] == "mlp-digits" and len(saved["history"]) == 3


def test_full_rank_is_the_baseline(tmp_path):
    assert main(["train", "--output", str(tmp_path), *QUICK, "--full-rank"]) == 0
    record = RunRecord.read(tmp_path / "results.json")
    assert record.metrics["trainable_share"] == 1.0 and record.metrics["ranks"] == {}
    assert not (tmp_path / "events.csv").exists()


def test_a_run_interrupted_after_an_epoch_resumes_exactly(tmp_path):
    from oialr import TrainConfig, get_recipe, train

    from shared_hpc import load_config

    recipe = get_recipe("mlp-digits")
    config = load_config(
        TrainConfig,
        recipe.settings,
        epochs=4,
        model={"width": 64, "depth": 2},
        schedule={"check_every": 5, "frequency": 5, "stability": 0.5},
    )
    straight = train(recipe, config)

    def ctrl_c_after_epoch_2(record):
        if record.epoch == 2:
            raise KeyboardInterrupt

    checkpoint = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        train(recipe, config, checkpoint=checkpoint, progress=ctrl_c_after_epoch_2)
    resumed = train(recipe, config, checkpoint=checkpoint, resume=True)
    same_time = dataclasses.replace(straight.history[3], seconds=resumed.history[3].seconds)
    assert resumed.history[3] == same_time
    assert resumed.test == straight.test and resumed.events == straight.events
    assert [h.validation for h in resumed.history] == [h.validation for h in straight.history]


def test_compare_writes_a_table_of_the_three_arms(tmp_path):
    assert main(["compare", "--output", str(tmp_path), *QUICK, "--epochs", "2",
                 "--schedule.delay", "10"]) == 0  # fmt: skip
    table = (tmp_path / "comparison.md").read_text()
    for arm in ("full-rank", "oialr", "fixed-delay"):
        assert f"| {arm} | 1 |" in table
    record = RunRecord.read(tmp_path / "results.json")
    assert [r["arm"] for r in record.metrics["arms"]] == ["full-rank", "oialr", "fixed-delay"]
    assert record.headline["unit"] == "points"
    assert (tmp_path / "comparison.png").stat().st_size > 0


def test_a_second_run_on_the_same_folder_is_refused(tmp_path, run_command):
    with lock_folder(tmp_path):
        result = run_command("oialr", "train", "--output", str(tmp_path), *QUICK)
    assert result.returncode == 2 and "is in use by another run" in result.stderr
    assert not (tmp_path / "results.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--schedule.beta", "1.5"], "beta must lie in (0, 1), got 1.5"),
        (["--schedule.frequency", "0"], "frequency must be >= 1, got 0"),
        (["--batch-size", "0"], "batch_size must be >= 1, got 0"),
        (["--batch-size", "5000"], "batch_size 5000 exceeds the 1221 training samples"),
        (["--recipe", "vit-cifar10", "--data", "NOWHERE"], "CIFAR-10 not found"),
        (["--output", "FILE"], "is a file, not a folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, run_command, args, message):
    (tmp_path / "FILE").write_text("")
    args = [str(tmp_path / a) if a in ("FILE", "NOWHERE") else a for a in args]
    output = [] if "--output" in args else ["--output", str(tmp_path / "run")]
    result = run_command("oialr", "train", *output, *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert result.stdout == ""


def test_resume_with_other_data_is_refused_unless_forced(
    tmp_path, cifar_root, make_cifar, run_command
):
    other = make_cifar(tmp_path / "other", seed=1)
    tiny = ["--recipe", "vit-cifar10", "--epochs", "1", "--batch-size", "32", "--model.width",
            "16", "--model.depth", "1", "--model.heads", "2", "--model.patch", "8"]  # fmt: skip
    run = str(tmp_path / "run")
    first = run_command("oialr", "train", "--output", run, *tiny, "--data", str(cifar_root))
    assert first.returncode == 0, first.stderr
    again = ["train", "--output", run, *tiny, "--epochs", "2", "--data", str(other), "--resume"]
    refused = run_command("oialr", *again)
    assert refused.returncode == 2 and "the checkpoint was made with the data" in refused.stderr
    assert "--force-resume" in refused.stderr
    forced = run_command("oialr", *again, "--force-resume")
    assert forced.returncode == 0, forced.stderr


@pytest.mark.parametrize("command", [[], ["train"], ["compare"], ["demo"]])
def test_every_command_answers_help(run_command, command):
    result = run_command("oialr", *command, "--help")
    assert result.returncode == 0 and "usage:" in result.stdout


def test_a_failure_on_one_rank_ends_the_whole_job(tmp_path, mpi_job):
    job = mpi_job(
        "import importlib, sys\n"
        "from shared_hpc import get_comm\n"
        "from oialr.cli import main\n"
        "if get_comm().Get_rank() == 1:\n"
        "    training = importlib.import_module('oialr.training')\n"
        "    def broken(*args, **kwargs):\n"
        "        raise RuntimeError('injected fault on rank 1')\n"
        "    training._evaluate = broken\n"
        "sys.exit(main(['train', '--output', sys.argv[1], '--epochs', '2']))\n",
        tmp_path / "run",
    )
    assert job.seconds < 120  # rank 0 waits in a collective: aborted, not hung
    assert job.returncode != 0
    assert "rank 1 of 2: Traceback" in job.stderr and "injected fault" in job.stderr
    assert not (tmp_path / "run" / "results.json").exists()


def test_a_diverging_run_stops_with_one_line(tmp_path, run_command):
    result = run_command("oialr", "train", "--output", str(tmp_path), *QUICK, "--lr", "1e30")
    assert result.returncode == 2
    assert "training diverged at step" in result.stderr and result.stderr.count("\n") == 1
