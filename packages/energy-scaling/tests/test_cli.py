"""The command line: analyze and recommend on a sweep folder, bad input, faults, help, demo."""

import json

import pytest
from energy_scaling.cli import main
from energy_scaling.config import SweepConfig
from energy_scaling.runner import prepare_sweep

from shared_hpc import RunRecord, lock_folder


@pytest.fixture
def sweep_folder(tmp_path, sweep_points):
    """A finished sweep folder whose point records hold the synthetic points' metrics."""
    folder = tmp_path / "sweep"
    prepare_sweep(SweepConfig(name="synthetic", hardware="test-cpu"), folder)
    for p in sweep_points:
        record = RunRecord.create("energy-scaling", "0", config={}, metrics=p.metrics,
                                  wall_time_s=p["wall_time_s"])  # fmt: skip
        record.write(folder / "points" / p["point"] / "results.json")
    return folder


def test_analyze_writes_report_plots_and_a_record_with_the_fitted_k(sweep_folder, tmp_path):
    out = tmp_path / "analysis"
    assert main(["analyze", str(sweep_folder), "--output", str(out)]) == 0
    record = json.loads((out / "results.json").read_text())
    fit = record["metrics"]["fits"][0]
    assert record["headline"]["value"] == pytest.approx(fit["watts_per_device"])
    assert fit["hardware"] == "test-cpu" and fit["points"] == 5
    assert "estimated energy" in record["headline"]["name"]
    report = (out / "report.md").read_text()
    assert "## Energy against device-hours" in report and "r1-g32-l32" in report
    for name in ("energy.png", "scaling.png", "batch.png", "pareto.png"):
        assert (out / name).stat().st_size > 1000
    choice = json.loads((out / "recommendation.json").read_text())["choice"]
    assert choice["point"] == "r1-g32-l32"


def test_recommend_prints_json_under_a_deadline(sweep_folder, capsys):
    assert main(["recommend", str(sweep_folder), "--deadline", "130", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["choice"]["point"] == "r2-g32-l16" and data["rule"] == "least energy within 130 s"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sweep", "--output", "OUT", "--ranks", "1,3", "--global-batch", "64"],
         "global batch 64 is not divisible by ranks x local batch = 3 x 21 = 63"),
        (["sweep", "--output", "OUT", "--train.lr-rule", "cubic"], "train.lr_rule must be"),
        (["sweep", "--output", "OUT", "--config", "missing.toml"], "missing.toml does not exist"),
        (["analyze", "OUT", "--output", "OUT2"], "is not a sweep folder"),
        (["recommend", "OUT", "--deadline", "10"], "is not a sweep folder"),
        (["demo", "--output", "FILE"], "is a file, not a folder"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2_before_any_work(tmp_path, run_command, args, message):
    (tmp_path / "FILE").write_text("")
    names = ("OUT", "OUT2", "FILE", "missing.toml")
    args = [str(tmp_path / a) if a in names else a for a in args]
    result = run_command("energy_scaling", *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not (tmp_path / "OUT").exists() or args[0] == "analyze"


def test_a_second_run_on_the_same_sweep_folder_is_refused(tmp_path, run_command):
    with lock_folder(tmp_path):  # a sweep in progress
        result = run_command("energy_scaling", "sweep", "--output", str(tmp_path))
    assert result.returncode == 2 and "is in use by another run" in result.stderr
    assert not (tmp_path / "points").exists()


def test_sweep_slurm_writes_scripts(tmp_path, run_command):
    result = run_command("energy_scaling", "sweep", "--slurm", tmp_path / "s", "--ranks", "1,2",
                         "--device", "cuda", "--time", "00:10:00")  # fmt: skip
    assert result.returncode == 0, result.stderr
    script = (tmp_path / "s" / "slurm" / "r2-g32-l16.sbatch").read_text()
    assert "#SBATCH --ntasks=2" in script and "#SBATCH --gpus-per-task=1" in script


def test_a_failure_on_one_rank_ends_the_whole_point_job(tmp_path, mpi_job):
    folder = tmp_path / "sweep"
    prepare_sweep(SweepConfig(ranks=[2], global_batch=[32]), folder)
    job = mpi_job(
        "import sys\n"
        "from shared_hpc import get_comm\n"
        "import energy_scaling.training as training\n"
        "from energy_scaling.cli import main\n"
        "if get_comm().Get_rank() == 1:\n"
        "    def broken(*args, **kwargs):\n"
        "        raise RuntimeError('injected fault on rank 1')\n"
        "    training._update = broken\n"
        "sys.exit(main(['point', '--sweep', sys.argv[1], '--point', 'r2-g32-l16',\n"
        "               '--output', sys.argv[2]]))\n",
        folder / "sweep.json",
        folder / "points" / "r2-g32-l16",
    )
    assert job.seconds < 90  # rank 0 waits in an all-reduce: aborted, not hung
    assert job.returncode != 0
    assert "rank 1 of 2: Traceback" in job.stderr and "injected fault" in job.stderr
    assert not (folder / "points" / "r2-g32-l16" / "results.json").exists()


def test_a_point_started_with_the_wrong_rank_count_is_refused(tmp_path, run_command):
    prepare_sweep(SweepConfig(ranks=[2], global_batch=[32]), tmp_path)
    result = run_command("energy_scaling", "point", "--sweep", tmp_path / "sweep.json",
                         "--point", "r2-g32-l16", "--output", tmp_path / "p")  # fmt: skip
    assert result.returncode == 2
    assert "point r2-g32-l16 needs 2 rank(s); started with 1 (mpiexec -n 2)" in result.stderr


@pytest.mark.parametrize(
    "command", [[], ["sweep"], ["point"], ["analyze"], ["recommend"], ["demo"]]
)
def test_every_command_answers_help(run_command, command):
    result = run_command("energy_scaling", *command, "--help")
    assert result.returncode == 0 and "usage:" in result.stdout


@pytest.mark.slow
def test_demo_sweeps_analyses_and_recommends(tmp_path):
    record = RunRecord.read(tmp_path / "results.json") if main(
        ["demo", "--output", str(tmp_path)]) == 0 else None  # fmt: skip
    assert record.headline["unit"] == "W per device" and record.headline["value"] > 0
    assert len(list((tmp_path / "sweep" / "points").glob("*/results.json"))) == 4
    assert (tmp_path / "energy.png").stat().st_size > 1000
