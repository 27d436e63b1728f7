"""The command line end to end, its demo, its settings from flags and TOML, and bad input."""

import json

import numpy as np
import pytest
from petnet.checkpoint import load_checkpoint
from petnet.cli import main
from petnet.singles import Singles

FULL_SIMULATION = """
[simulation]
duration_s = 0.001
seed = 1

[simulation.scanner]
name = "small"

[[simulation.sources]]
kind = "cylinder"
activity_bq = 5e7
radius_mm = 20.0
length_mm = 16.0

[[simulation.sources]]
kind = "point"
activity_bq = 1e6
position_mm = [10.0, 0.0, 0.0]
"""


def test_demo_writes_a_run_record_and_plots(tmp_path):
    assert main(["demo", "--output", str(tmp_path), "--quick"]) == 0
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["package"] == "petnet"
    headline = record["headline"]
    assert headline["paper"] == 0.952 and 0.9 < headline["value"] <= 1.0
    # one recorder around everything; the training's own meter measured a part of it
    training = record["metrics"]["training"]["energy"]
    assert 0 < training["seconds"] < record["energy"]["seconds"] <= record["wall_time_s"]
    names = [m["name"] for m in record["metrics"]["methods"]]
    assert names[0] == "sliding window (paper)" and names[-1] == "PETNet (ring)"
    for png in ("spectrum.png", "comparison.png"):
        assert (tmp_path / png).stat().st_size > 10_000
    assert "PETNet (ring)" in (tmp_path / "comparison.md").read_text()


def test_simulate_sort_train_evaluate(tmp_path, capsys):
    data = tmp_path / "data.h5"
    assert main(["simulate", "--output", str(data), "--duration-ms", "2", "--seed", "3"]) == 0
    pairs = tmp_path / "pairs.npz"
    args = ["sort", str(data), "--method", "gate", "--delayed-offset-ns", "100"]
    assert main([*args, "--output", str(pairs)]) == 0
    out = capsys.readouterr().out
    assert "delayed window" in out and "trues" in out
    with np.load(pairs) as stored:
        assert len(stored["index1"]) > 100 and np.all(stored["time_ns2"] >= stored["time_ns1"])
    assert main(["sort", str(data), "--method", "sliding", "--energy-window-kev", "none"]) == 0
    run = tmp_path / "run"
    train_args = ["train", str(data), "--output", str(run), "--train.epochs", "1"]
    assert main([*train_args, "--train.max-steps-per-epoch", "3", "--train.batch-size", "128"]) == 0
    record = json.loads((run / "results.json").read_text())
    assert record["headline"]["paper"] == 0.952 and record["energy"]["seconds"] > 0
    assert len(record["metrics"]["history"]) == 1
    assert main(["sort", str(data), "--method", "petnet", "--model", str(run / "best.pt")]) == 0
    evaluation = tmp_path / "eval"
    eval_args = ["evaluate", str(data), "--model", str(run / "best.pt"), "--repeats", "1"]
    assert main([*eval_args, "--policies", "takeAllGoods", "--output", str(evaluation)]) == 0
    rows = json.loads((evaluation / "comparison.json").read_text())
    assert [r["name"] for r in rows][:2] == ["sliding window (paper)", "GATE takeAllGoods"]
    assert rows[-1]["name"].startswith("PETNet (ring")
    assert all(0.0 <= r["f1"] <= 1.0 and r["singles_per_second"] > 0 for r in rows)
    record = json.loads((evaluation / "results.json").read_text())
    assert record["headline"]["value"] == round(max(r["f1"] for r in rows), 4)


def test_train_flags_win_over_the_toml_file_and_the_file_over_the_defaults(tmp_path, capsys):
    data = tmp_path / "data.npz"
    assert main(["simulate", "--output", str(data), "--duration-ms", "1"]) == 0
    toml = tmp_path / "run.toml"
    toml.write_text(
        "[model]\nhidden = [8]\n\n[encoding]\ntolerance_bins = 3\n\n"
        "[train]\nepochs = 3\nbatch_size = 64\nmax_steps_per_epoch = 2\n"
    )
    run = tmp_path / "run"
    argv = ["train", str(data), "--output", str(run), "--config", str(toml)]
    assert main([*argv, "--train.epochs", "1", "--encoding.bin-width-ns", "0.5"]) == 0
    stored = json.loads((run / "results.json").read_text())["config"]["petnet"]
    assert stored["train"]["epochs"] == 1  # flag over file
    assert stored["train"]["batch_size"] == 64 and stored["model"]["hidden"] == [8]  # file
    assert stored["encoding"] == {
        "bin_width_ns": 0.5,  # flag over default
        "max_gap_bins": 32,
        "energy_window_kev": [350.0, 650.0],
        "tolerance_bins": 3,
        "channels": ["spike", "energy"],
    }
    checkpoint = load_checkpoint(run / "last.pt")
    assert checkpoint["epoch"] == 0 and checkpoint["model"]["hidden"] == (8,)


def test_simulate_flags_win_over_the_toml_file(tmp_path):
    flat = tmp_path / "flat.toml"
    flat.write_text('scanner = "preclinical"\nactivity_mbq = 10.0\nduration_ms = 1.0\nseed = 5\n')
    out = tmp_path / "flat.h5"
    assert main(["simulate", "--config", str(flat), "--seed", "7", "--output", str(out)]) == 0
    meta = Singles.load(out).meta
    assert (meta["seed"], meta["duration_s"]) == (7, 1e-3)
    assert meta["config"]["scanner"]["name"] == "preclinical"
    [source] = meta["config"]["sources"]
    assert source["activity_bq"] == 1e7 and meta["config"]["water"]["radius_mm"] == 15.0

    full = tmp_path / "full.toml"
    full.write_text(FULL_SIMULATION)
    out = tmp_path / "full.h5"
    argv = ["simulate", "--config", str(full), "--duration-ms", "0.5", "--output", str(out)]
    assert main(argv) == 0
    meta = Singles.load(out).meta
    assert (meta["seed"], meta["duration_s"]) == (1, 5e-4)  # seed from the file
    assert [s["kind"] for s in meta["config"]["sources"]] == ["cylinder", "point"]
    assert meta["config"]["water"] is None


@pytest.mark.parametrize(
    "argv",
    [
        ["sort", "missing.h5"],
        ["evaluate", "missing.h5"],
        ["train", "missing.h5", "--output", "{tmp}/run"],
        ["simulate", "--output", "{tmp}/x.h5", "--activity-mbq", "-5"],
        ["simulate", "--output", "{tmp}/x.csv"],
        ["simulate", "--output", "{tmp}/x.h5", "--phantom-radius-mm", "70"],
        [
            "simulate",
            "--output",
            "{tmp}/x.h5",
            "--source-kind",
            "point",
            "--phantom-radius-mm",
            "5",
        ],
        ["simulate", "--output", "{tmp}/x.h5", "--config", "{full}", "--activity-mbq", "3"],
        ["simulate", "--output", "{tmp}/x.h5", "--config", "{tmp}/missing.toml"],
        ["sort", "{data}", "--method", "petnet"],
        ["sort", "{data}", "--model", "{data}"],
        ["sort", "{data}", "--window-ns", "0"],
        ["sort", "{data}", "--energy-window-kev", "600,300"],
        ["train", "{measured}", "--output", "{tmp}/run"],
        ["train", "{data}", "--output", "{tmp}/run", "--train.epochs", "0"],
        ["train", "{data}", "--output", "{data}"],
        ["train", "{data}", "--output", "{tmp}/run", "--resume", "{tmp}/missing.pt"],
        ["evaluate", "{data}", "--model", "{data}"],
        ["evaluate", "{measured}"],
        ["evaluate", "{data}", "--policies", "keepAll"],
        # nonsense that used to run: an empty acquisition, a learning rate that makes the
        # network silent or NaN, sizes no machine holds, a device the machine lacks
        ["simulate", "--output", "{tmp}/x.h5", "--activity-mbq", "0"],
        ["simulate", "--output", "{tmp}/x.h5", "--duration-ms", "1e-9"],
        ["simulate", "--output", "{tmp}/x.h5", "--duration-ms", "1e9"],
        ["train", "{data}", "--output", "{tmp}/run", "--train.lr", "1e30"],
        ["train", "{data}", "--output", "{tmp}/run", "--train.grad-clip", "0"],
        ["train", "{data}", "--output", "{tmp}/run", "--train.timing-weight", "-1"],
        ["train", "{data}", "--output", "{tmp}/run", "--model.threshold", "0"],
        ["train", "{data}", "--output", "{tmp}/run", "--encoding.bin-width-ns", "inf"],
        ["train", "{data}", "--output", "{tmp}/run", "--model.hidden", "10000000,10000000"],
        ["train", "{data}", "--output", "{tmp}/run", "--train.batch-size", "100000000"],
        ["train", "{data}", "--output", "{tmp}/run", "--force-resume"],
        ["evaluate", "{data}", "--device", "tpu"],
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(argv, tmp_path, capsys, train_singles):
    data = train_singles.save(tmp_path / "data.npz")
    measured = train_singles.subset(np.arange(1000))
    measured.decay_id = measured.scattered = None
    measured.save(tmp_path / "measured.npz")
    (tmp_path / "full.toml").write_text(FULL_SIMULATION)
    paths = {"data": data, "measured": tmp_path / "measured.npz", "full": tmp_path / "full.toml"}
    argv = [a.format(tmp=tmp_path, **paths) for a in argv]
    capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"petnet {argv[0]}: error: ")
    assert captured.out == ""


def test_a_fresh_process_prints_only_the_error_line(tmp_path, run_command):
    result = run_command("petnet", "sort", "missing.h5", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "petnet sort: error: singles file missing.h5 does not exist\n"
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["simulate", "sort", "train", "evaluate", "demo"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: petnet" in capsys.readouterr().out


def test_unknown_command_is_refused():
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2


def documented_blocks(doc: str) -> list[str]:
    """The indented blocks that follow a line ending in ``::``."""
    blocks, current = [], None
    for line in doc.splitlines():
        if line.endswith("::"):
            current = []
            blocks.append(current)
        elif current is not None and (line.startswith("    ") or not line):
            current.append(line[4:])
        else:
            current = None
    return ["\n".join(block).strip() + "\n" for block in blocks]


def test_the_documented_toml_examples_load_and_run(tmp_path):
    import petnet.config

    train_toml, flat_toml, full_toml = documented_blocks(petnet.config.__doc__)
    flat = tmp_path / "flat.toml"
    flat.write_text(flat_toml)
    assert main(["simulate", "--config", str(flat), "--output", str(tmp_path / "flat.npz")]) == 0
    full = tmp_path / "full.toml"
    full.write_text(full_toml)
    data = tmp_path / "data.npz"
    assert main(["simulate", "--config", str(full), "--output", str(data)]) == 0
    assert len(Singles.load(data).meta["config"]["sources"]) == 2
    run = tmp_path / "run.toml"
    run.write_text(train_toml.replace("epochs = 8", "epochs = 1"))
    args = ["train", str(data), "--config", str(run), "--output", str(tmp_path / "out")]
    assert main([*args, "--train.max-steps-per-epoch", "2", "--train.batch-size", "64"]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nlayers = 3\n")
    assert main(["train", str(data), "--config", str(bad), "--output", str(tmp_path)]) == 2
