"""The command line: demo, the train-ensemble → fuse → finetune → compare path, settings from
flags and TOML, bad input, faults."""

import json
from importlib.metadata import entry_points

import pytest
import torch
from neuron_transplantation.cli import main
from neuron_transplantation.models import MLP, ViT

from shared_hpc import lock_folder


def test_demo_writes_a_run_record_with_a_headline_and_a_plot(tmp_path):
    assert main(["demo", "--output", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["package"] == "neuron-transplantation"
    metrics = record["metrics"]
    headline = record["headline"]
    assert headline["unit"] == "points"
    nt_gain = 100 * (metrics["nt_test_finetuned"] - metrics["best_member_test"])
    assert headline["value"] == pytest.approx(nt_gain)
    for label in ("nt", "nt_iterative", "nt_hierarchical", "ot", "wm", "avg"):
        assert 0.5 < metrics[f"{label}_test_finetuned"] <= 1.0
    assert metrics["avg_test_fused"] < metrics["wm_test_fused"]  # alignment matters
    assert record["energy"]["method"]
    assert (tmp_path / "comparison.png").stat().st_size > 0
    table = (tmp_path / "comparison.md").read_text()
    assert "| nt/hierarchical |" in table and "| ensemble (output average) |" in table


def test_fuse_finetune_and_compare_an_ensemble(tmp_path, ensemble_file):
    record = json.loads((ensemble_file.parent / "results.json").read_text())
    assert record["metrics"]["members"] == 2 and record["config"]["epochs"] == 3
    fused = tmp_path / "fused"
    assert (
        main(
            [
                "fuse",
                "--ensemble",
                str(ensemble_file),
                "--output",
                str(fused),
                "--variant",
                "hierarchical",
            ]
        )
        == 0
    )
    record = json.loads((fused / "results.json").read_text())
    assert record["config"]["variant"] == "hierarchical"
    assert 0 <= record["headline"]["value"] == record["metrics"]["test_fused"] <= 1
    payload = torch.load(fused / "fused.pt", weights_only=True)
    MLP(64, 10, width=16).load_state_dict(payload["state"])
    tuned = tmp_path / "tuned"
    assert (
        main(
            [
                "finetune",
                "--model",
                str(fused / "fused.pt"),
                "--output",
                str(tuned),
                "--epochs",
                "2",
            ]
        )
        == 0
    )
    history = (tuned / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,validation_accuracy" and len(history) == 4
    record = json.loads((tuned / "results.json").read_text())
    assert record["metrics"]["validation_after"] == pytest.approx(float(history[-1].split(",")[1]))
    compared = tmp_path / "compared"
    assert (
        main(
            [
                "compare",
                "--ensemble",
                str(ensemble_file),
                "--output",
                str(compared),
                "--methods",
                "nt,avg,kd",
                "--finetune.epochs",
                "1",
            ]
        )
        == 0
    )
    table = (compared / "comparison.md").read_text()
    assert "| nt |" in table and "| avg |" in table and "| kd |" in table
    assert "| ot |" not in table


def test_flags_win_over_the_toml_file(tmp_path, ensemble_file):
    settings = tmp_path / "fuse.toml"
    settings.write_text('method = "avg"\nseed = 5\n')
    out = tmp_path / "run"
    args = [
        "fuse",
        "--ensemble",
        str(ensemble_file),
        "--output",
        str(out),
        "--config",
        str(settings),
        "--method",
        "wm",
    ]
    assert main(args) == 0
    config = json.loads((out / "results.json").read_text())["config"]
    assert (config["method"], config["seed"]) == ("wm", 5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train-ensemble", "--output", "OUT", "--members", "1"], "an ensemble needs members >= 2"),
        (
            ["train-ensemble", "--output", "OUT", "--config", "missing.toml"],
            "missing.toml does not exist",
        ),
        (["fuse", "--ensemble", "missing.pt", "--output", "OUT"], "missing.pt does not exist"),
        (["fuse", "--ensemble", "FILE", "--output", "OUT"], "is not a readable checkpoint"),
        (
            [
                "fuse",
                "--ensemble",
                "ENSEMBLE",
                "--output",
                "OUT",
                "--method",
                "ot",
                "--variant",
                "iterative",
            ],
            "variant 'iterative' is a variant of nt",
        ),
        (
            ["finetune", "--model", "ENSEMBLE", "--output", "OUT"],
            "is not a model checkpoint (found neuron-transplantation/ensemble/1)",
        ),
        (
            ["compare", "--ensemble", "ENSEMBLE", "--output", "OUT", "--methods", "nt,xx"],
            "unknown method 'xx'",
        ),
        (["demo", "--output", "FILE"], "is a file, not a folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, run_command, ensemble_file, args, message):
    (tmp_path / "FILE").write_text("not a checkpoint")
    names = {
        "OUT": tmp_path / "out",
        "FILE": tmp_path / "FILE",
        "ENSEMBLE": ensemble_file,
        "missing.toml": tmp_path / "missing.toml",
        "missing.pt": tmp_path / "missing.pt",
    }
    args = [str(names.get(a, a)) for a in args]
    result = run_command("neuron_transplantation", *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dirichlet", "0.5"], "dirichlet skews the shards: give --shards too"),
        (["--arch", "vit", "--width", "18"], "a width divisible by its 4 heads"),
    ],
)
def test_bad_settings_of_the_new_options_exit_2_in_process(tmp_path, capsys, args, message):
    assert main(["train-ensemble", "--output", str(tmp_path / "out"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "members.pt").exists()


def test_a_second_run_on_the_same_folder_is_refused(tmp_path, run_command, ensemble_file):
    with lock_folder(tmp_path):  # a run in progress
        result = run_command(
            "neuron_transplantation",
            "fuse",
            "--ensemble",
            str(ensemble_file),
            "--output",
            str(tmp_path),
        )
    assert result.returncode == 2 and "is in use by another run" in result.stderr
    assert not (tmp_path / "results.json").exists()


def test_a_failure_on_one_rank_ends_the_whole_job(tmp_path, mpi_job):
    job = mpi_job(
        "import importlib, sys\n"
        "from shared_hpc import get_comm\n"
        "from neuron_transplantation.cli import main\n"
        "if get_comm().Get_rank() == 1:\n"
        "    def broken(*args, **kwargs):\n"
        "        raise RuntimeError('injected fault on rank 1')\n"
        "    importlib.import_module('neuron_transplantation.train').train_epochs = broken\n"
        "sys.exit(main(['train-ensemble', '--output', sys.argv[1], '--members', '2',\n"
        "               '--epochs', '2', '--width', '8']))\n",
        tmp_path / "run",
    )
    assert job.seconds < 90  # rank 0 waits in the gather: aborted, not hung
    assert job.returncode != 0
    assert "rank 1 of 2: Traceback" in job.stderr and "injected fault" in job.stderr
    assert not (tmp_path / "run" / "members.pt").exists()


@pytest.mark.parametrize(
    "command", [[], ["train-ensemble"], ["fuse"], ["finetune"], ["compare"], ["demo"]]
)
def test_every_command_answers_help(run_command, command):
    result = run_command("neuron_transplantation", *command, "--help")
    assert result.returncode == 0 and "usage:" in result.stdout


def test_nt_is_an_alias_of_the_command():
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts["nt"] == scripts["neuron-transplantation"] == "neuron_transplantation.cli:main"


def test_a_vit_ensemble_is_trained_and_fused_through_the_command_line(tmp_path):
    trained, fused = tmp_path / "vit", tmp_path / "fused"
    args = ["train-ensemble", "--output", str(trained), "--arch", "vit", "--width", "16",
            "--depth", "1", "--members", "2", "--epochs", "1"]  # fmt: skip
    assert main(args) == 0
    assert main(["fuse", "--ensemble", str(trained / "members.pt"), "--output", str(fused)]) == 0
    payload = torch.load(fused / "fused.pt", weights_only=True)
    ViT(1, 8, 10, width=16, depth=1).load_state_dict(payload["state"])
