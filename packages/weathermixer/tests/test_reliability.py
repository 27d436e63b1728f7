"""Failures: bad data on one rank, a fault on one rank, unusable outputs, a second run on a
folder, a resume on other data, planted links, nonsense sizes and a ``latest`` that leads away.

The MPI cases start ``mpiexec -n 2`` themselves (they run in the serial test session) and
check that the whole job ends, in bounded time."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from weathermixer.checkpoint import CheckpointError
from weathermixer.cli import main
from weathermixer.evaluate import TrainedRun
from weathermixer.plots import loss_plot

from shared_hpc import RunRecord, lock_folder, serial_environ

TINY = [
    "--model.embed-dim",
    "8",
    "--model.token-hidden",
    "8",
    "--model.channel-hidden",
    "16",
    "--model.depth",
    "1",
    "--train.batch-size",
    "2",
    "--train.warmup-steps",
    "1",
    "--train.checkpoint-every",
    "2",
    "--train.log-every",
    "1",
    "--train.val-batches",
    "1",
]


def _train_args(data, run):
    return ["train", "--data.path", str(data), "--output", str(run)]


def _train(data, run, *extra, steps=2):
    args = [*_train_args(data, run), *TINY, "--train.steps", str(steps), "--threads", "1"]
    return main([*args, *extra])


def _one_line(err, command):
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith(f"weathermixer {command}: error: "), err
    return err


@pytest.fixture
def data(write_nc, make_era5):
    return write_nc(make_era5(times=24, nlat=8))


@pytest.fixture
def trained(data, tmp_path, capsys):
    """A run folder with a checkpoint at step 2."""
    run = tmp_path / "run"
    assert _train(data, run) == 0
    capsys.readouterr()
    return run


def _mpiexec_train(mpiexec, program, data, run, *flags):
    """``mpiexec -n 2 python <program> train --grid 2x1 ...``: the finished job and its time."""
    train = [*_train_args(data, run), *TINY, "--train.steps", "4", "--threads", "1", *flags]
    started = time.monotonic()
    done = subprocess.run(
        [mpiexec, "-n", "2", sys.executable, *program, *train, "--grid", "2x1"],
        env=serial_environ(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, time.monotonic() - started


# --- case 1: a failure on one rank -------------------------------------------------------------
@pytest.mark.parametrize("preload", [False, True])
def test_nan_in_one_ranks_band_stops_every_rank_with_one_line(
    preload, mpiexec, make_era5, write_nc, tmp_path
):
    """NaNs only in rank 1's band (rows 4..8 of 8 on a 2x1 grid): every rank refuses them
    together, so the job ends at once with exit code 2 and one line, no abort."""
    ds = make_era5(times=24, nlat=8)
    ds["t2m"][:, 4:, :] = np.nan
    data = write_nc(ds)
    flags = ["--data.preload"] if preload else []
    done, seconds = _mpiexec_train(mpiexec, ["-m", "weathermixer"], data, tmp_path / "r", *flags)
    assert seconds < 60
    assert done.returncode == 2, done.stderr
    line = _one_line(done.stderr, "train")
    assert "'t2m' has" in line and "NaN/inf" in line and "(rows 4..8)" in line
    assert line.endswith("(found by rank 1 of 2)\n")


def test_a_fault_on_one_rank_only_ends_the_whole_job(mpiexec, data, tmp_path):
    """An error that only rank 1 meets, in the middle of training, while rank 0 waits for it in
    a collective: nothing on rank 1's way out waits for rank 0, so the job ends."""
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import sys\n"
        "from shared_hpc import get_comm\n"
        "from weathermixer.cli import main\n"
        "from weathermixer.train import Trainer\n"
        "step = Trainer.step\n"
        "def failing_step(self, index, batch):\n"
        "    if index == 1 and get_comm().Get_rank() == 1:\n"
        "        raise RuntimeError('injected fault on rank 1')\n"
        "    return step(self, index, batch)\n"
        "Trainer.step = failing_step\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    done, seconds = _mpiexec_train(mpiexec, [str(driver)], data, tmp_path / "r")
    assert seconds < 60
    assert done.returncode != 0
    assert "RuntimeError: injected fault on rank 1" in done.stderr
    assert "rank 1 of 2: the other ranks did not fail" in done.stderr


# --- case 2: outputs checked before any work ---------------------------------------------------
@pytest.mark.parametrize(
    ("command", "blocked", "message", "not_written"),
    [
        ("train", "run/results.json", "run/results.json is a folder", "run/train_log.jsonl"),
        ("train", "run/stats.nc", "run/stats.nc is a folder", "run/train_log.jsonl"),
        ("train-stats", "file/stats.nc", "file is a file, not a folder", "run/train_log.jsonl"),
        ("evaluate", "run/evaluation/map_z500.png", "map_z500.png is a folder", "run/evaluation"),
        ("demo", "demo/results.json", "demo/results.json is a folder", "demo/data.nc"),
        ("generate", "file/world.nc", "file is a file, not a folder", "file/world.nc"),
        ("benchmark", "bench.json", "bench.json is a folder", "bench.json/.lock"),
    ],
)
def test_unusable_outputs_are_refused_before_any_work(
    command, blocked, message, not_written, data, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    if command == "evaluate":
        assert _train(data, tmp_path / "run") == 0
        capsys.readouterr()
    (tmp_path / "file").write_text("a file where a folder is meant\n")
    if not blocked.startswith("file/"):
        (tmp_path / blocked).mkdir(parents=True)
    args = {
        "train": [*_train_args(data, "run"), *TINY],
        "train-stats": [*_train_args(data, "run"), *TINY, "--data.stats-path", blocked],
        "evaluate": ["evaluate", "--run", "run"],
        "demo": ["demo", "--output", "demo", "--quick"],
        "generate": ["generate", "--output", blocked, "--nlat", "8", "--days", "1"],
        "benchmark": ["benchmark", "--output", blocked, "--steps", "1", "--warmup", "0"],
    }[command]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in _one_line(captured.err, args[0])
    written = tmp_path / not_written
    assert not written.is_file() and not (written / "results.json").exists()


# --- case 3: one run per folder ----------------------------------------------------------------
def test_a_second_train_on_a_folder_in_use_is_refused(data, tmp_path, run_command):
    run = tmp_path / "run"
    with lock_folder(run):  # the first run
        second = run_command("weathermixer", *_train_args(data, run), *TINY, cwd=tmp_path)
    assert second.returncode == 2, second.stderr
    assert "is in use by another run (pid" in _one_line(second.stderr, "train")
    assert not (run / "stats.nc").exists()


@pytest.mark.parametrize("command", ["evaluate", "demo"])
def test_a_second_evaluate_or_demo_on_a_folder_in_use_is_refused(
    command, trained, tmp_path, capsys
):
    folder = tmp_path / "out"
    args = {
        "evaluate": ["evaluate", "--run", str(trained), "--output", str(folder)],
        "demo": ["demo", "--output", str(folder), "--quick"],
    }[command]
    with lock_folder(folder):
        assert main(args) == 2
    assert "is in use by another run" in _one_line(capsys.readouterr().err, command)
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]


# --- case 4: no resume on other data -----------------------------------------------------------
def test_resume_on_other_data_is_refused_unless_forced(
    trained, data, make_era5, write_nc, tmp_path, capsys
):
    other = write_nc(make_era5(times=24, nlat=8, seed=1), "other.nc")
    assert _train(other, trained, steps=3) == 2
    line = _one_line(capsys.readouterr().err, "train")
    assert "the checkpoint was made with the data" in line and str(data) in line
    assert str(other) in line and "--force-resume" in line
    assert (trained / "checkpoints" / "latest").read_text() == "step-000002\n"
    # a copy of the same data elsewhere is the same data
    moved = tmp_path / "moved.nc"
    shutil.copyfile(data, moved)
    assert _train(moved, trained, steps=3) == 0
    assert RunRecord.read(trained / "results.json").metrics["steps_this_run"] == 1
    assert _train(other, trained, "--force-resume", steps=4) == 0
    assert RunRecord.read(trained / "results.json").metrics["steps_this_run"] == 1
    assert (trained / "checkpoints" / "latest").read_text() == "step-000004\n"


# --- case 5: every file atomic, nothing written through a planted link ------------------------
def test_checkpoints_are_staged_in_a_fresh_folder(data, tmp_path):
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run / "checkpoints").mkdir(parents=True)
    # the old predictable staging name, planted as a link; and a crashed run's staging folder
    (run / "checkpoints" / "step-000002.partial").symlink_to(elsewhere)
    (run / "checkpoints" / ".step-000002.0123456789abcdef.tmp").mkdir()
    assert _train(data, run) == 0
    assert list(elsewhere.iterdir()) == []
    assert (run / "checkpoints" / "latest").read_text() == "step-000002\n"
    assert (run / "checkpoints" / "step-000002" / "meta.json").is_file()
    assert list((run / "checkpoints").glob(".step-*")) == []


def test_plots_replace_a_planted_link_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    plot = tmp_path / "training_loss.png"
    plot.symlink_to(victim)
    loss_plot([{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5, "val_loss": 0.6}], plot)
    assert victim.read_text() == "precious\n"
    assert not plot.is_symlink() and plot.read_bytes().startswith(b"\x89PNG")


# --- case 6: nonsense settings and sizes refused before any work -------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--train.warmup-steps", "-1"], "train.warmup_steps must be >= 0, got -1"),
        (["train", "--train.weight-decay", "-0.1"], "train.weight_decay must be >= 0"),
        (["train", "--train.grad-clip", "nan"], "train.grad_clip must be >= 0, got nan"),
        (["train", "--train.keep-checkpoints", "-1"], "train.keep_checkpoints must be >= 0"),
        (["train", "--train.val-batches", "0"], "train.val_batches must be >= 1, got 0"),
        (["train", "--train.finetune-lr", "0"], "train.finetune_lr must be positive"),
        (["train", "--data.path", "{data}", "--model.embed-dim", "20000000"], "needs about"),
        (["benchmark", "--model.grid", "0,0"], "model.grid must be at least 1x1, got 0x0"),
        (["benchmark", "--peak-tflops", "-1"], "peak_tflops must be positive, got -1.0"),
        (["benchmark", "--model.embed-dim", "20000000"], "needs about"),
        (["generate", "--output", "{tmp}/w.nc", "--nlat", "100000"], "needs about"),
        (["generate", "--output", "{tmp}/w.nc", "--radiative-days", "0"], "radiative_days must"),
        (["generate", "--output", "{tmp}/w.nc", "--drag-days", "0"], "drag_days must"),
        (["generate", "--output", "{tmp}/w.nc", "--equator-pole-k", "-1"], "equator_pole_k must"),
        (["generate", "--output", "{tmp}/w.nc", "--days", "nan"], "days must be a finite number"),
        (["generate", "--output", "{tmp}/w.nc", "--days", "1e12"], "GiB, but its disk has"),
        (["generate", "--output", "{tmp}/w.nc", "--equator-pole-k", "1e6"], "became unstable"),
    ],
)
def test_nonsense_settings_and_sizes_are_refused_in_one_line(args, message, data, tmp_path, capsys):
    if message == "needs about" and torch.cuda.is_available():
        pytest.skip("the model's memory is checked on the CPU only")
    args = [a.format(tmp=tmp_path, data=data) for a in args]
    if args[0] == "train":
        args += ["--output", str(tmp_path / "run")]
    assert main(args) == 2
    line = _one_line(capsys.readouterr().err, args[0])
    assert message in line
    if message == "needs about":
        assert "GiB of memory, but only" in line
    assert not (tmp_path / "w.nc").exists()
    assert not (tmp_path / "run" / "train_log.jsonl").exists()


# --- case 8: ``latest`` stays inside the run -----------------------------------------------------
@pytest.mark.parametrize("pointer", ["absolute", "parent", "link"])
def test_a_latest_pointer_that_leads_out_of_the_run_is_refused(pointer, trained, tmp_path, capsys):
    checkpoints = trained / "checkpoints"
    outside = tmp_path / "outside" / "step-000002"
    shutil.copytree(checkpoints / "step-000002", outside)
    if pointer == "link":
        (checkpoints / "step-000009").symlink_to(outside)
    name = {
        "absolute": str(outside),
        "parent": "../../outside/step-000002",
        "link": "step-000009",
    }[pointer]
    (checkpoints / "latest").write_text(name + "\n")
    with pytest.raises(CheckpointError, match="which is not a checkpoint inside"):
        TrainedRun.open(trained)
    assert main(["evaluate", "--run", str(trained)]) == 2
    assert f"names {name!r}, which is not" in _one_line(capsys.readouterr().err, "evaluate")
    assert json.loads((outside / "meta.json").read_text())["step"] == 2
