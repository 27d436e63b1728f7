"""The runner: one job per point, resume without rerunning, failures recorded, SLURM scripts."""

import json
import subprocess

import pytest
from energy_scaling.config import DataConfig, ModelConfig, SweepConfig, TrainConfig
from energy_scaling.runner import run_sweep
from energy_scaling.slurm import SlurmOptions, write_slurm

from shared_hpc import UserError


def _sweep(era5_file, **changes):
    settings = {
        "name": "tiny",
        "ranks": [1, 2],
        "global_batch": [8, 32],
        "threads": 1,
        "model": ModelConfig(name="afno", patch=4, embed_dim=8, depth=1, blocks=2),
        "data": DataConfig(source="era5", path=str(era5_file), validation=0.25),
        "train": TrainConfig(max_steps=2, warmup_epochs=0),
    }
    return SweepConfig(**{**settings, **changes})


def test_an_interrupted_sweep_resumes_and_a_failed_point_does_not_stop_it(tmp_path, era5_file):
    sweep = _sweep(era5_file)
    folder = tmp_path / "sweep"
    first = run_sweep(sweep, folder, only=["r1-g8-l8"])  # as if stopped after one point
    assert first.ids("done") == ["r1-g8-l8"]
    record = folder / "points" / "r1-g8-l8" / "results.json"
    written = record.stat().st_mtime_ns
    seen = []
    rest = run_sweep(sweep, folder, progress=seen.append)
    assert rest.ids("skipped") == ["r1-g8-l8"]
    assert record.stat().st_mtime_ns == written  # not rerun
    assert rest.ids("done") == ["r2-g8-l4"]  # two ranks under mpiexec
    # 17 training samples: a global batch of 32 cannot run; recorded, and the sweep went on
    assert rest.ids("failed") == ["r1-g32-l32", "r2-g32-l16"]
    assert [o.point.id for o in seen] == ["r1-g8-l8", "r1-g32-l32", "r2-g8-l4", "r2-g32-l16"]
    failed = json.loads((folder / "points" / "r1-g32-l32" / "failed.json").read_text())
    assert failed["returncode"] == 2
    assert "global batch 32 exceeds the 17 training samples" in failed["message"]
    two = json.loads((folder / "points" / "r2-g8-l4" / "results.json").read_text())
    assert two["metrics"]["ranks"] == 2 and two["environment"]["mpi_size"] == 2
    assert two["energy"]["ranks"] == 2 and two["energy"]["nodes"] == 1  # one node, counted once


def test_another_sweep_on_the_same_folder_is_refused(tmp_path, era5_file):
    folder = tmp_path / "sweep"
    from energy_scaling.runner import prepare_sweep

    prepare_sweep(_sweep(era5_file), folder)
    with pytest.raises(UserError, match="sweep settings"):
        run_sweep(_sweep(era5_file, global_batch=[8]), folder)


def _sbatch_options(script):
    options = {}
    for line in script.read_text().splitlines():
        if line.startswith("#SBATCH --"):
            key, _, value = line[len("#SBATCH --") :].partition("=")
            options[key] = value
    return options


def test_slurm_scripts_parse_and_ask_for_each_points_resources(tmp_path, era5_file):
    sweep = _sweep(era5_file, ranks=[1, 4], global_batch=[32], device="cuda")
    scripts = write_slurm(sweep, tmp_path / "s", SlurmOptions(time="00:30:00", partition="gpu"))
    names = [s.name for s in scripts]
    assert names == ["r1-g32-l32.sbatch", "r4-g32-l8.sbatch", "submit.sh"]
    for script in scripts:
        assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    four = _sbatch_options(scripts[1])
    assert four["ntasks"] == "4" and four["gpus-per-task"] == "1"
    assert (four["time"], four["partition"], four["job-name"]) == ("00:30:00", "gpu",
                                                                   "tiny-r4-g32-l8")  # fmt: skip
    body = scripts[1].read_text()
    assert "srun " in body and "--point r4-g32-l8" in body and "sweep.json" in body
    assert body.count("sbatch") == 0
    submit = scripts[2].read_text()
    assert submit.count("sbatch ") == 2 and "results.json ] ||" in submit
    cpu = write_slurm(_sweep(era5_file, ranks=[2], global_batch=[32]), tmp_path / "c")
    assert "gpus-per-task" not in _sbatch_options(cpu[0])


def test_a_point_past_its_timeout_is_ended_with_all_its_ranks(tmp_path, era5_file):
    folder = tmp_path / "slow-sweep"
    run = run_sweep(_sweep(era5_file, ranks=[2], global_batch=[8]), folder, timeout_s=1.0)
    assert run.ids("failed") == ["r2-g8-l4"]
    failed = json.loads((folder / "points" / "r2-g8-l4" / "failed.json").read_text())
    assert failed["message"] == "ended after the timeout of 1 s"
    left = subprocess.run(["pgrep", "-f", str(folder)], capture_output=True, check=False)
    assert left.returncode == 1, left.stdout  # no rank of the job still runs
