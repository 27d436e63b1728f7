"""The command line end to end, its demo, and its answers to bad input."""

import json

import numpy as np
import pytest
from petnet.cli import main


def test_demo_writes_a_run_record_and_plots(tmp_path):
    assert main(["demo", "--output", str(tmp_path), "--quick"]) == 0
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["package"] == "petnet"
    headline = record["headline"]
    assert headline["paper"] == 0.952 and 0.9 < headline["value"] <= 1.0
    assert record["energy"]["seconds"] > 0
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
    assert main(["sort", str(data), "--method", "sliding", "--no-energy-window"]) == 0
    run = tmp_path / "run"
    train_args = ["train", str(data), "--output", str(run), "--epochs", "1", "--max-steps", "3"]
    assert main([*train_args, "--batch-size", "128"]) == 0
    assert json.loads((run / "results.json").read_text())["headline"]["paper"] == 0.952
    assert main(["sort", str(data), "--method", "petnet", "--model", str(run / "best.pt")]) == 0
    evaluation = tmp_path / "eval"
    eval_args = ["evaluate", str(data), "--model", str(run / "best.pt"), "--repeats", "1"]
    assert main([*eval_args, "--policies", "takeAllGoods", "--output", str(evaluation)]) == 0
    rows = json.loads((evaluation / "comparison.json").read_text())
    assert [r["name"] for r in rows][:2] == ["sliding window (paper)", "GATE takeAllGoods"]
    assert rows[-1]["name"].startswith("PETNet (ring")
    assert all(0.0 <= r["f1"] <= 1.0 and r["singles_per_second"] > 0 for r in rows)


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "missing.h5"],
        ["simulate", "--output", "x.h5", "--activity-mbq", "-5"],
        ["sort", "{data}", "--method", "petnet"],
        ["train", "{measured}", "--output", "{tmp}/run"],
        ["sort", "{data}", "--window-ns", "0"],
        ["evaluate", "{data}", "--model", "{data}"],
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(argv, tmp_path, capsys, train_singles):
    data = train_singles.save(tmp_path / "data.npz")
    measured = train_singles.subset(np.arange(1000))
    measured.decay_id = measured.scattered = None
    measured.save(tmp_path / "measured.npz")
    argv = [a.format(data=data, measured=tmp_path / "measured.npz", tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0]


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


def test_the_documented_toml_examples_load_and_run(tmp_path):
    import petnet.config

    doc = petnet.config.__doc__
    train_toml, sim_toml = (part.split("::")[1] for part in doc.split("A simulation"))
    sim = tmp_path / "sim.toml"
    sim.write_text("\n".join(line[4:] for line in sim_toml.splitlines()))
    data = tmp_path / "data.npz"
    assert main(["simulate", "--config", str(sim), "--output", str(data)]) == 0
    run = tmp_path / "run.toml"
    lines = [line[4:] for line in train_toml.splitlines()]
    run.write_text("\n".join(lines).replace("epochs = 8", "epochs = 1"))
    args = ["train", str(data), "--config", str(run), "--output", str(tmp_path / "out")]
    assert main([*args, "--max-steps", "2", "--batch-size", "64"]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nlayers = 3\n")
    assert main(["train", str(data), "--config", str(bad), "--output", str(tmp_path)]) == 2
