import json
import sys

import pytest
from propulate_hpo.cli import main


def test_demo_tunes_the_digits_mlp_for_accuracy_and_energy(tmp_path):
    argv = ["demo", "--output", str(tmp_path), "--generations", "8", "--launch-ranks", "0"]
    assert main(argv) == 0
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["package"] == "propulate-hpo"
    assert record["headline"]["name"] == "test accuracy of the most accurate candidate"
    assert record["headline"]["higher_is_better"] is True
    assert 0.5 < record["headline"]["value"] <= 1.0
    metrics = record["metrics"]
    assert record["headline"]["value"] == metrics["best_test_accuracy"]
    assert metrics["evaluations"] == 8 and metrics["objectives"] == [
        "val_accuracy:max",
        "energy_j:min",
    ]
    front = metrics["pareto_front"]
    accuracies = [c["val_accuracy"] for c in front]
    energies = [c["energy_j"] for c in front]
    assert accuracies == sorted(accuracies, reverse=True) and energies == sorted(
        energies, reverse=True
    )
    assert metrics["cheapest_within_1_point_energy_j"] <= metrics["best_energy_j"]
    assert record["config"]["launch_ranks"] == 0 and record["config"]["islands"] == 2
    assert record["energy"]["total_joules"] > 0
    for name in ("progress.png", "islands.png", "history.csv", "pareto-front.csv"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "checkpoint" / "meta.json").exists()


def test_demo_without_torch_says_which_extra_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    assert main(["demo", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pip install propulate-hpo[demo]" in err and err.count("\n") == 1
    assert not (tmp_path / "results.json").exists()


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
    assert record["headline"]["higher_is_better"] is False
    assert record["config"]["function"] == "rosenbrock" and record["config"]["seed"] == 3
    assert (out / "progress.png").exists() and (out / "history.csv").exists()
    capsys.readouterr()
    assert main(["summarize", str(ckpt), "--top", "2", "--output", str(tmp_path / "s")]) == 0
    printed = capsys.readouterr().out
    assert "80 finished candidates, 0 in flight" in printed and "#2 loss" in printed
    assert "#3 loss" not in printed
    assert len((tmp_path / "s" / "history.csv").read_text().splitlines()) == 81


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


def test_flags_win_over_the_config_file_and_the_file_over_the_defaults(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        'function = "step"\ngenerations = 40\npropagator = "ga-paper"\nmigrants = 3\n'
        "island_sizes = [1]\n"
    )
    out = tmp_path / "o"
    argv = ["run", "--config", str(config), "--generations", "30", "--output", str(out)]
    assert main(argv) == 0
    record = json.loads((out / "results.json").read_text())
    assert record["metrics"]["evaluations"] == 30  # the flag
    settings = record["config"]
    assert (settings["function"], settings["propagator"], settings["migrants"]) == (
        "step",
        "ga-paper",
        3,
    )  # the file
    assert settings["island_sizes"] == [1] and settings["islands"] == 1
    assert (settings["seed"], settings["pop_size"]) == (0, None)  # the defaults


def test_list_flags_take_comma_separated_values():
    from propulate_hpo.cli import _parser
    from propulate_hpo.config import RunConfig

    from shared_hpc import config_from_args

    args = _parser().parse_args(["run", "--function", "sphere", "--island-sizes", "2,6"])
    config = config_from_args(args)
    assert isinstance(config, RunConfig)
    assert config.island_sizes == (2, 6) and config.islands == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--loss", "nowhere:fn", "--space", "s.toml"], "cannot import 'nowhere'"),
        (["run", "--loss", "math:sqrt"], "needs a search space"),
        (["run", "--function", "sphere", "--generations", "0"], "generations must be >= 1"),
        (["run", "--function", "sphere", "--propagator", "cma", "--islands", "3"], "3 islands"),
        (["run", "--function", "sphere", "--migration-probability", "2"], "migration_prob"),
        (["run", "--function", "sphere", "--island-sizes", "2,6"], "add up to 8 workers"),
        (["run", "--function", "sphere", "--config", "missing.toml"], "does not exist"),
        (["run", "--function", "sphere", "--output", "FILE"], "is a file, not a folder"),
        (["run", "--function", "sphere", "--checkpoint", "FILE"], "is a file, not a folder"),
        (["run", "--function", "sphere", "--pop-size", "0"], "pop_size must be >= 2, got 0"),
        (["run", "--function", "sphere", "--dim", "1000000000"], "needs about"),
        (["run", "--loss", "bad_loss.py:f", "--space", "s.toml"], "bad_loss.py:2: invalid syntax"),
        (["run"], "either a benchmark function or a loss"),
        (["run", "--function", "sphere", "--objectives", "a,b"], "sphere has one objective"),
        (["run", "--function", "zdt1", "--objectives", "a,b,c"], "has the objectives f1, f2"),
        (["run", "--function", "zdt1", "--propagator", "pso"], "breeds for one loss"),
        (["summarize", "no-such-dir"], "not a propulate-hpo checkpoint"),
        (["summarize", "no-such-dir", "--top", "-3"], "--top must be >= 0, got -3"),
        (["demo", "--generations", "0"], "generations must be >= 1"),
        (["demo", "--output", "FILE"], "is a file, not a folder"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_code_2(argv, message, tmp_path, run_command):
    (tmp_path / "s.toml").write_text("x = [0.0, 1.0]\n")
    (tmp_path / "FILE").write_text("")
    (tmp_path / "bad_loss.py").write_text("def f(p):\n    return p['x'] +\n")
    result = run_command("propulate_hpo", *argv, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"propulate-hpo {argv[0]}: error: ")
    assert result.stdout == ""
    assert not (tmp_path / "propulate-hpo-run" / "results.json").exists()
    assert not (tmp_path / "no-such-dir").exists()


def test_bad_search_space_file_and_foreign_checkpoint(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text('x = {type = "float", low = 0.0, high = 1.0, log = true}\n')
    (tmp_path / "loss.py").write_text("def f(p):\n    return p['x']\n")
    argv = ["run", "--loss", f"{tmp_path / 'loss.py'}:f", "--space", str(tmp_path / "bad.toml")]
    assert main([*argv, "--output", str(tmp_path / "o")]) == 2
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


@pytest.mark.parametrize("command", [[], ["run"], ["summarize"], ["demo"]])
def test_every_command_answers_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert printed.startswith("usage: propulate-hpo")
    if command == ["run"]:  # every search option is a flag, with its help
        assert "--migration-probability" in printed and "--island-sizes A,B,..." in printed
        assert "Migrants per island pair" in printed and "--config TOML" in printed
    if command == ["demo"]:
        assert "--ranks-per-worker" in printed and "Candidates per worker" in printed


def test_the_readme_command_under_mpiexec_n_4(tmp_path, launch):
    # exactly as in the repository's README, run in an empty folder
    argv = ["run", "--function", "sphere", "--islands", "2", "--migration-probability", "0.9"]
    process = launch(["-m", "propulate_hpo", *argv], ranks=4, cwd=tmp_path)
    printed, _ = process.communicate(timeout=120)
    assert process.returncode == 0, printed
    record = json.loads((tmp_path / "propulate-hpo-run" / "results.json").read_text())
    assert record["metrics"]["evaluations"] == 400  # 100 per worker by default
    assert record["environment"]["mpi_size"] == 4 and record["config"]["islands"] == 2
    migration = record["metrics"]["migration"]
    assert migration["0"]["emigrants"] > 0 and migration["1"]["immigrants"] > 0
    assert printed.count("400 evaluations") == 1  # rank 0 prints, the others do not
    assert "WARNING" not in printed


def test_islands_without_migration_get_a_warning(tmp_path, launch):
    argv = ["-m", "propulate_hpo", "run", "--function", "sphere", "--island-sizes", "1,1"]
    process = launch([*argv, "--generations", "4", "--output", str(tmp_path)], ranks=2)
    printed, _ = process.communicate(timeout=120)
    assert process.returncode == 0, printed
    assert printed.count("never exchange candidates") == 1
