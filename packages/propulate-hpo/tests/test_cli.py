import json

import pytest
from propulate_hpo.cli import main


def test_demo_tunes_the_digits_mlp_and_writes_a_record_and_plots(tmp_path):
    assert main(["demo", "--output", str(tmp_path), "--generations", "6", "--budget-s", "30"]) == 0
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["package"] == "propulate-hpo"
    assert record["headline"]["name"].startswith("test accuracy")
    assert 0.5 < record["headline"]["value"] <= 1.0
    assert record["metrics"]["evaluations"] == 6
    assert record["energy"]["total_joules"] > 0
    for name in ("progress.png", "energy.png", "history.csv"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "checkpoint" / "meta.json").exists()


def test_run_a_benchmark_function_and_summarize_its_checkpoint(tmp_path, capsys):
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    argv = [
        "run",
        "--function",
        "rosenbrock",
        "--generations",
        "80",
        "--checkpoint",
        str(ckpt),
        "--output",
        str(out),
        "--seed",
        "3",
    ]
    assert main(argv) == 0
    record = json.loads((out / "results.json").read_text())
    assert record["metrics"]["evaluations"] == 80
    assert record["headline"]["value"] == record["metrics"]["best_loss"] < 1.0
    assert (out / "progress.png").exists() and (out / "history.csv").exists()
    capsys.readouterr()
    assert main(["summarize", str(ckpt), "--top", "2"]) == 0
    printed = capsys.readouterr().out
    assert "80 finished candidates, 0 in flight" in printed and "#2 loss" in printed


def test_run_your_own_loss_with_a_toml_space_and_early_stopping(tmp_path):
    (tmp_path / "space.toml").write_text(
        '[space]\nlr = {type = "float", low = 1e-4, high = 1.0, log = true}\n'
        'layers = [1, 4]\nact = ["relu", "tanh"]\n'
    )
    (tmp_path / "my_loss.py").write_text(
        "import math\n"
        "def train(params):\n"
        "    loss = 5.0\n"
        "    for epoch in range(6):\n"
        "        loss *= 1 - 0.5 * params['lr'] ** 0.1 / params['layers']\n"
        "        yield loss + (params['act'] == 'tanh')\n"
    )
    out = tmp_path / "out"
    argv = [
        "run",
        "--loss",
        f"{tmp_path / 'my_loss.py'}:train",
        "--space",
        str(tmp_path / "space.toml"),
        "--generations",
        "30",
        "--early-stopping",
        "0.05",
        "--output",
        str(out),
    ]
    assert main(argv) == 0
    record = json.loads((out / "results.json").read_text())
    assert record["metrics"]["cancelled"] > 0
    assert record["metrics"]["best_params"]["act"] == "relu"


def test_run_options_from_a_config_file(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        f'function = "step"\ngenerations = 40\noutput = "{tmp_path / "o"}"\npropagator = "ga"\n'
    )
    assert main(["run", "--config", str(config), "--generations", "30"]) == 0
    assert json.loads((tmp_path / "o" / "results.json").read_text())["metrics"]["evaluations"] == 30


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--loss", "nowhere:fn", "--space", "s.toml"], "cannot import"),
        (["run", "--loss", "math:sqrt"], "needs a search space"),
        (["run", "--function", "sphere", "--generations", "0"], "generations"),
        (["run", "--function", "sphere", "--propagator", "cma", "--islands", "3"], "3 islands"),
        (["run", "--function", "sphere", "--migration-probability", "2"], "migration_prob"),
        (["run"], "either a benchmark function or a loss"),
        (["summarize", "no-such-dir"], "not a propulate-hpo checkpoint"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_code_2(
    argv, message, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text("x = [0.0, 1.0]\n")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_bad_search_space_file_and_foreign_checkpoint(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text('x = {type = "float", low = 0.0, high = 1.0, log = true}\n')
    (tmp_path / "loss.py").write_text("def f(p):\n    return p['x']\n")
    argv = ["run", "--loss", f"{tmp_path / 'loss.py'}:f", "--space", str(tmp_path / "bad.toml")]
    assert main(argv) == 2
    assert "log scale needs positive bounds" in capsys.readouterr().err
    ckpt = str(tmp_path / "ckpt")
    base = ["run", "--generations", "3", "--checkpoint", ckpt, "--output", str(tmp_path / "o")]
    assert main([*base, "--function", "sphere"]) == 0
    capsys.readouterr()
    assert main([*base, "--function", "rastrigin"]) == 2
    assert "another search space" in capsys.readouterr().err


def test_unknown_command_and_function_are_refused():
    for argv in (["no-such-command"], ["run", "--function", "spherez"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2


def test_mpiexec_n_4_propulate_hpo_run_works(tmp_path, launch):
    out = tmp_path / "out"
    process = launch(
        [
            "-m",
            "propulate_hpo",
            "run",
            "--function",
            "rastrigin",
            "--islands",
            "2",
            "--migration-probability",
            "0.9",
            "--generations",
            "60",
            "--checkpoint",
            str(tmp_path / "ckpt"),
            "--output",
            str(out),
        ],
        ranks=4,
    )
    printed, _ = process.communicate(timeout=120)
    assert process.returncode == 0, printed
    record = json.loads((out / "results.json").read_text())
    assert record["metrics"]["evaluations"] == 240
    assert record["environment"]["mpi_size"] == 4 and record["config"]["islands"] == 2
    migration = record["metrics"]["migration"]
    assert migration["0"]["emigrants"] > 0 and migration["1"]["immigrants"] > 0
    assert printed.count("240 evaluations") == 1  # rank 0 prints, the others do not
    assert "warning" not in printed


def test_islands_without_migration_get_a_warning(tmp_path, launch):
    argv = ["-m", "propulate_hpo", "run", "--function", "sphere", "--islands", "2"]
    process = launch([*argv, "--generations", "4", "--output", str(tmp_path)], ranks=2)
    printed, _ = process.communicate(timeout=120)
    assert process.returncode == 0, printed
    assert printed.count("never exchange candidates") == 1
