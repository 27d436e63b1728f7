"""The command line: the demo end to end, train, evaluate, benchmark, flags and TOML, --help,
and one-line errors."""

from __future__ import annotations

import json

import pytest
from weathermixer.cli import main

from shared_hpc import RunRecord

COMMANDS = ("generate", "train", "evaluate", "benchmark", "demo")
TINY_MODEL = [
    "--model.embed-dim",
    "8",
    "--model.token-hidden",
    "8",
    "--model.channel-hidden",
    "16",
    "--model.depth",
    "1",
]


def test_quick_demo_writes_record_plots_and_skill(tmp_path):
    assert main(["demo", "--output", str(tmp_path), "--quick", "--threads", "1"]) == 0
    record = RunRecord.read(tmp_path / "results.json")
    assert record.package == "weathermixer"
    assert record.headline["name"].startswith("Z500 RMSE skill vs persistence")
    assert record.energy["seconds"] > 0
    for png in ("skill_vs_lead.png", "map_z500.png", "training_loss.png"):
        assert (tmp_path / png).stat().st_size > 1000
    skill = json.loads((tmp_path / "skill.json").read_text())
    assert len(skill["model"]["z500"]["rmse"]) == 4
    # persistence is exact at lead 0 only; at 6 h it must have a positive error
    assert skill["persistence"]["z500"]["rmse"][0] > 0
    model, persistence = (
        skill["model"]["z500"]["rmse"][-1],
        skill["persistence"]["z500"]["rmse"][-1],
    )
    assert record.headline["value"] == pytest.approx(1 - model / persistence)
    assert record.metrics["z500_rmse_skill_vs_persistence"] == record.headline["value"]
    assert not (tmp_path / "run" / "results.json").exists()  # one record per run: the demo's


@pytest.mark.slow
def test_full_demo_beats_persistence(tmp_path):
    assert main(["demo", "--output", str(tmp_path)]) == 0
    record = RunRecord.read(tmp_path / "results.json")
    assert record.headline["value"] > 0
    assert record.wall_time_s < 180


def test_evaluate_and_benchmark_commands(tmp_path, capsys, monkeypatch):
    # Relative paths at training time; evaluation from another directory still finds the data.
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--output", "first", "--quick", "--threads", "1"]) == 0
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    out = tmp_path / "again"
    args = ["--run", "../first/run", "--output", str(out), "--leads-h", "6,12", "--stride-h", "24"]
    assert main(["evaluate", *args]) == 0
    skill = json.loads((out / "skill.json").read_text())
    assert skill["leads_h"] == [6.0, 12.0]
    record = RunRecord.read(out / "results.json")
    assert record.headline["name"].startswith("Z500 RMSE skill vs persistence at +12 h")
    model, persistence = skill["model"]["z500"]["rmse"][1], skill["persistence"]["z500"]["rmse"][1]
    assert record.headline["value"] == pytest.approx(1 - model / persistence)
    assert record.artifacts == ["skill.json", "skill_vs_lead.png", "map_z500.png"]
    assert "z500 RMSE model" in capsys.readouterr().out
    # without --output the evaluation goes beside the checkpoints, not over train's record
    assert main(["evaluate", "--run", "../first/run", "--leads-h", "6"]) == 0
    assert (tmp_path / "first" / "run" / "evaluation" / "skill.json").exists()
    result = tmp_path / "bench.json"
    bench = ["--model.grid", "16,32", *TINY_MODEL, "--steps", "2", "--warmup", "1"]
    assert main(["benchmark", *bench, "--output", str(result)]) == 0
    record = RunRecord.read(result)
    ranks = record.metrics["ranks"]
    assert ranks[0]["parameters_rank"] == ranks[0]["parameters_total"]
    assert ranks[0]["step_s"] > 0 and ranks[0]["activation_bytes"] > 0
    assert record.headline["value"] == ranks[0]["samples_per_s"]
    assert record.config["model"]["grid"] == [16, 32]
    assert "ms/step" in capsys.readouterr().out


def test_train_flags_override_the_toml_file(write_nc, make_era5, tmp_path):
    data = write_nc(make_era5(times=48, nlat=8))
    toml = tmp_path / "run.toml"
    toml.write_text(
        f'output = "{tmp_path / "from-toml"}"\n'
        f'[data]\npath = "{data}"\n'
        "[model]\nembed_dim = 16\ndepth = 1\n"
        "[train]\nsteps = 5\nbatch_size = 2\nwarmup_steps = 1\nlog_every = 1\nval_batches = 1\n"
    )
    out = tmp_path / "from-flags"
    flags = ["--output", str(out), "--train.steps", "3", "--model.token-hidden", "8"]
    assert main(["train", "--config", str(toml), *flags, "--threads", "1"]) == 0
    assert not (tmp_path / "from-toml").exists()
    record = RunRecord.read(out / "results.json")
    assert record.metrics["steps"] == 3  # the flag wins over the file
    model = record.config["model"]
    assert (model["embed_dim"], model["depth"], model["token_hidden"]) == (16, 1, 8)
    assert (model["state_channels"], model["extra_channels"], model["grid"]) == (12, 4, [8, 16])
    assert record.config["train"]["batch_size"] == 2  # from the file
    assert record.headline["value"] == record.metrics["valid_loss"]
    assert record.artifacts == ["train_log.jsonl", "stats.nc", "checkpoints/"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_answers_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: weathermixer {command}")
    expected = {
        "generate": ["--nlat", "--days", "--output-interval-h", "--config"],
        "train": ["--data.path", "--train.min-lr", "--model.embed-dim", "--grid", "--output"],
        "evaluate": ["--run", "--data", "--period", "--climatology", "--leads-h", "--stride-h"],
        "benchmark": ["--model.grid", "--batch-size", "--compile", "--peak-tflops"],
        "demo": ["--output", "--quick", "--threads"],
    }[command]
    for flag in expected:
        assert flag in text, flag


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data.path", "{tmp}/missing.nc"], "no such data file"),
        (["train"], "no data: set data.path"),
        (["train", "--train.steps", "0"], "train.steps must be >= 1, got 0"),
        (["train", "--data.path", "{data}", "--model.grid", "16,32"], "model.grid is (16, 32)"),
        (["train", "--data.path", "{data}", "--grid", "1x4"], "impossible process grid 1x4"),
        (["train", "--data.train-period", "soon"], "'START:END' dates, got 'soon'"),
        (["train", "--config", "{tmp}/missing.toml"], "missing.toml does not exist"),
        (["benchmark", "--grid", "2x1"], "world size 1 is not divisible"),
        (["evaluate", "--run", "{tmp}"], "no checkpoint"),
        (["evaluate", "--run", "{tmp}", "--leads-h", "-6"], "leads_h must be positive"),
        (["generate", "--output", "{tmp}/x.nc", "--nlat", "7"], "nlat must be an even number"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(
    args, message, write_nc, make_era5, tmp_path, capsys
):
    data = write_nc(make_era5(times=12, nlat=8))
    args = [a.format(tmp=tmp_path, data=data) for a in args]
    if args[0] == "train":
        args += ["--output", str(tmp_path / "run")]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.endswith("\n")
    assert captured.err.startswith(f"weathermixer {args[0]}: error: ")
    assert message in captured.err


def test_bad_input_in_a_fresh_process_prints_only_its_line(tmp_path, run_command):
    """No warning of a dependency comes before the line (a fresh process shows every one)."""
    run = run_command("weathermixer", "train", "--data.path", tmp_path / "x.nc", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr == f"weathermixer train: error: no such data file: {tmp_path / 'x.nc'}\n"


def test_unknown_command_is_an_argparse_error():
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
