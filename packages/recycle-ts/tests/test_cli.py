"""The command line: demo, train, forecast, compare, settings, bad input, faults."""

import json

import pandas as pd
import pytest
from recycle_ts.cli import main

from shared_hpc import lock_folder

FAST = ["--history", "7", "--horizon", "1", "--epochs", "2", "--width", "16", "--heads", "2"]


def test_demo_writes_a_run_record_with_a_headline_and_a_plot(tmp_path):
    assert main(["demo", "--output", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["package"] == "recycle-ts"
    test = record["metrics"]["test"]
    assert record["headline"]["value"] == test["recycle"]["mae"]
    assert record["metrics"]["best_baseline"] in test and "ets" in test
    assert f"best baseline {record['metrics']['best_baseline']}" in record["headline"]["name"]
    assert record["energy"]["method"]
    assert (tmp_path / "forecast.png").stat().st_size > 0


def test_train_then_forecast_from_a_csv(tmp_path, load_csv, load_frame):
    out = tmp_path / "run"
    args = ["train", "--csv", str(load_csv), "--date-column", "time", "--target", "load",
            "--cycle", "auto", "--model", "dlinear", "--output", str(out), *FAST]  # fmt: skip
    assert main(args) == 0
    record = json.loads((out / "results.json").read_text())
    assert record["config"]["cycle"] == "auto" and record["metrics"]["model"] == "dlinear"
    assert set(record["metrics"]["test"]) >= {"dlinear", "day_type", "persistence", "ets"}
    assert record["metrics"]["data"]["sha256"]
    assert record["metrics"]["train_seconds"] > 0
    forecasts = pd.read_csv(out / "test_forecasts.csv", parse_dates=["timestamp", "origin"])
    assert {"timestamp", "origin", "lead", "load", "load_baseline", "load_actual"} <= set(forecasts)
    recent = tmp_path / "recent.csv"
    load_frame.iloc[-24 * 10 :].to_csv(recent, index=False)
    result = tmp_path / "forecast.csv"
    assert main(["forecast", "--model", str(out / "model"), "--csv", str(recent),
                 "--output", str(result)]) == 0  # fmt: skip
    table = pd.read_csv(result, parse_dates=["timestamp"])
    assert len(table) == 24
    assert table["timestamp"].iloc[0] == pd.Timestamp(load_frame["time"].iloc[-1]) + pd.Timedelta(
        "1h"
    )


def test_train_one_model_across_series_from_a_csv(tmp_path, make_load):
    frame = pd.concat([make_load(days=50, seed=i).assign(site=f"s{i}") for i in range(2)])
    frame.to_csv(tmp_path / "sites.csv", index=False)
    out = tmp_path / "run"
    args = ["train", "--csv", str(tmp_path / "sites.csv"), "--date-column", "time",
            "--series-column", "site", "--cycle", "24", "--output", str(out), *FAST]  # fmt: skip
    assert main(args) == 0
    record = json.loads((out / "results.json").read_text())
    assert set(record["metrics"]["test"]) == {"s0", "s1"}
    assert set(record["metrics"]["mean_test_mase"]) == {"global", "local"}
    assert (out / "models" / "s1" / "model.pt").exists()


def test_compare_writes_a_table_and_a_plot(tmp_path):
    out = tmp_path / "cmp"
    assert main(["compare", "--dataset", "taylor", "--models", "recycle,dlinear", "--seeds",
                 "0", "--output", str(out), "--tune", *FAST]) == 0  # fmt: skip
    record = json.loads((out / "results.json").read_text())
    assert set(record["metrics"]["tuned"]) == {"recycle", "dlinear"}
    assert record["metrics"]["tuned"]["recycle"]["width"] in (32, 64)
    mae = record["metrics"]["test_mae"]
    assert set(mae) >= {"recycle", "dlinear", "day_type", "seasonal_naive", "ets"}
    assert record["metrics"]["joules"]["recycle"] > 0
    assert "| recycle |" in (out / "comparison.md").read_text()
    assert (out / "comparison.png").stat().st_size > 0


def test_flags_win_over_the_toml_file(tmp_path):
    settings = tmp_path / "fit.toml"
    settings.write_text("epochs = 5\nwidth = 16\nheads = 2\nhistory = 7\nhorizon = 1\n")
    out = tmp_path / "run"
    assert main(["train", "--dataset", "taylor", "--output", str(out), "--config",
                 str(settings), "--epochs", "1"]) == 0  # fmt: skip
    config = json.loads((out / "results.json").read_text())["config"]
    assert (config["epochs"], config["width"], config["cycle"]) == (1, 16, "48")


def _paths(tmp_path, load_frame, args):
    (tmp_path / "FILE").write_text("")
    (tmp_path / "OUT").mkdir()
    load_frame.drop(index=[30, 31, 32]).to_csv(tmp_path / "GAPPY", index=False)
    names = ("OUT", "FILE", "missing.csv", "GAPPY", "OUT/f.csv")
    return [str(tmp_path / a) if a in names else a for a in args]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--dataset", "taylor", "--output", "OUT", "--epochs", "0"],
         "epochs must be >= 1, got 0"),
        (["train", "--csv", "missing.csv", "--output", "OUT"], "missing.csv does not exist"),
        (["train", "--csv", "GAPPY", "--date-column", "time", "--output", "OUT"],
         "gap in the series: 3 missing time steps"),
        (["train", "--csv", "GAPPY", "--date-column", "day", "--output", "OUT"],
         "has no column 'day'"),
        (["train", "--dataset", "taylor", "--output", "OUT", "--cycle", "x"],
         "cycle must be an integer >= 2 or 'auto'"),
        (["train", "--dataset", "taylor", "--output", "OUT", "--history", "80"],
         "the series is too short"),
        (["train", "--dataset", "taylor", "--output", "OUT", "--quantiles", "0.1,0.9"],
         "include 0.5"),
        (["forecast", "--model", "OUT", "--csv", "GAPPY", "--output", "OUT/f.csv"],
         "holds no model.json"),
        (["demo", "--output", "FILE"], "is a file, not a folder"),
        (["hpo", "--dataset", "taylor", "--output", "OUT", "--generations", "0"],
         "generations must be >= 1"),
        (["train", "--csv", "GAPPY", "--date-column", "time", "--series-column", "site",
          "--output", "OUT"], "no series column 'site'"),
        (["compare", "--dataset", "west-coast", "--output", "OUT"],
         "the data set west-coast holds several series; compare takes one"),
        (["train", "--dataset", "west-coast", "--output", "OUT", "--resume"],
         "--resume continues a run of one series"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, load_frame, args, message):
    assert main(_paths(tmp_path, load_frame, args)) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and message in captured.err, captured.err
    assert captured.out == ""


@pytest.mark.parametrize("args", [["train", "--csv", "GAPPY", "--date-column", "time",
                                   "--output", "OUT"], ["demo", "--output", "FILE"]])  # fmt: skip
def test_bad_input_in_a_fresh_process_is_one_line(tmp_path, run_command, load_frame, args):
    result = run_command("recycle_ts", *_paths(tmp_path, load_frame, args))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == ""


def test_a_second_run_on_the_same_folder_is_refused(tmp_path, run_command):
    with lock_folder(tmp_path):  # a run in progress
        result = run_command("recycle_ts", "train", "--dataset", "taylor", "--output",
                             str(tmp_path))  # fmt: skip
    assert result.returncode == 2 and "is in use by another run" in result.stderr
    assert not (tmp_path / "results.json").exists()


def test_a_failure_on_one_rank_ends_the_whole_job(tmp_path, mpi_job):
    job = mpi_job(
        "import importlib, sys\n"
        "from shared_hpc import get_comm\n"
        "from recycle_ts.cli import main\n"
        "if get_comm().Get_rank() == 1:\n"
        "    def broken(*args, **kwargs):\n"
        "        raise RuntimeError('injected fault on rank 1')\n"
        "    importlib.import_module('recycle_ts.training').fit = broken\n"
        "sys.exit(main(['train', '--dataset', 'taylor', '--epochs', '1',\n"
        "               '--output', sys.argv[1]]))\n",
        tmp_path / "run",
    )
    assert job.seconds < 90  # rank 0 waits in a collective: aborted, not hung
    assert job.returncode != 0
    assert "rank 1 of 2: Traceback" in job.stderr and "injected fault" in job.stderr


@pytest.mark.parametrize("command", [[], ["train"], ["forecast"], ["compare"], ["hpo"], ["demo"]])
def test_every_command_answers_help(run_command, command):
    result = run_command("recycle_ts", *command, "--help")
    assert result.returncode == 0 and "usage:" in result.stdout
