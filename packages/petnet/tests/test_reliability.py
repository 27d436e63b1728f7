"""How runs fail: a rank that fails ends the MPI job, outputs are checked before work, one run
per folder, a resume only on the data it was made with, and no writer follows a planted link."""

import subprocess
import sys
import time

import pytest
import torch
from petnet.cli import main
from petnet.config import PETNetConfig, TrainConfig
from petnet.train import train

from shared_hpc import UserError, lock_folder, serial_environ

TINY_TRAINING = ["--train.epochs", "1", "--train.max-steps-per-epoch", "3"]
TINY_TRAINING += ["--train.batch-size", "64"]

# Runs `petnet` under mpiexec with one fault injected into petnet's training on one rank.
DRIVER = """
import errno, sys
import petnet.train
from petnet.cli import main
from shared_hpc import get_comm

fault, rank = sys.argv[1], get_comm().Get_rank()
loss_of = petnet.train.count_timing_loss
calls = []

def failing_loss(*args, **kwargs):
    calls.append(1)
    loss = loss_of(*args, **kwargs)
    if len(calls) < 2:
        return loss
    if fault == "exception":
        raise RuntimeError("injected failure")
    return loss * float("nan")

def full_disk(path, payload):
    raise OSError(errno.ENOSPC, "No space left on device", str(path))

if fault in ("exception", "nan") and rank == 1:
    petnet.train.count_timing_loss = failing_loss
if fault == "disk-full" and rank == 0:
    petnet.train.save_checkpoint = full_disk
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize(
    ("fault", "code", "expected"),
    [
        # rank 1 fails while rank 0 waits for it in DDP's gradient all-reduce
        ("exception", 1, "rank 1 of 2: Traceback"),
        # rank 0 cannot save while rank 1 waits for it at the end of the epoch
        ("disk-full", 1, "rank 0 of 2: petnet train: error: No space left on device"),
        # one rank's loss turns NaN: the averaged gradients stop every rank at the same step
        ("nan", 2, "petnet train: error: training diverged at epoch 0, step 1 (loss "),
    ],
)
def test_a_failure_on_one_rank_ends_the_training_job(
    fault, code, expected, tmp_path, mpiexec, train_singles
):
    data = train_singles.subset(slice(0, 6000)).save(tmp_path / "data.npz")
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    argv = ["train", data, "--output", tmp_path / "run", *TINY_TRAINING]
    started = time.monotonic()
    done = subprocess.run(
        [mpiexec, "-n", "2", sys.executable, script, fault, *map(str, argv)],
        env=serial_environ(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert time.monotonic() - started < 60  # a hang would wait for the 180 s timeout
    assert done.returncode == code, done.stderr
    assert expected in done.stderr
    if fault == "nan":  # every rank stopped together: rank 0's one line, nothing else
        assert len(done.stderr.splitlines()) == 1 and "lower the learning rate" in done.stderr
        assert not (tmp_path / "run" / "last.pt").exists()


def test_a_diverging_loss_stops_training_with_one_line(train_singles, tmp_path, monkeypatch):
    import petnet.train

    loss_of = petnet.train.count_timing_loss
    monkeypatch.setattr(
        petnet.train, "count_timing_loss", lambda *a, **k: loss_of(*a, **k) * float("inf")
    )
    config = PETNetConfig(train=TrainConfig(epochs=1, batch_size=64, max_steps_per_epoch=3))
    with pytest.raises(UserError, match=r"training diverged at epoch 0, step 0 \(loss inf"):
        train(train_singles.subset(slice(0, 6000)), config, tmp_path)
    assert not (tmp_path / "last.pt").exists()


@pytest.mark.parametrize(
    ("command", "blocked"),
    [
        ("train", "last.pt"),
        ("train", "results.json"),
        ("evaluate", "comparison.png"),
        ("demo", "spectrum.png"),
    ],
)
def test_an_unusable_output_file_is_refused_before_any_work(
    command, blocked, tmp_path, capsys, train_singles
):
    data = train_singles.subset(slice(0, 6000)).save(tmp_path / "data.npz")
    out = tmp_path / "out"
    (out / blocked).mkdir(parents=True)  # a folder where the command writes a file
    argv = {
        "train": ["train", str(data), "--output", str(out), *TINY_TRAINING],
        "evaluate": ["evaluate", str(data), "--output", str(out), "--repeats", "1"],
        "demo": ["demo", "--output", str(out), "--quick"],
    }[command]
    capsys.readouterr()
    started = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - started < 5  # refused before the work, not after it
    err = capsys.readouterr().err.splitlines()
    assert err == [f"petnet {command}: error: {out / blocked} is a folder, not a file to write"]
    assert {p.name for p in out.iterdir()} <= {blocked, ".lock"}


def test_a_second_run_on_the_same_folder_is_refused(tmp_path, run_command, train_singles):
    data = train_singles.subset(slice(0, 6000)).save(tmp_path / "data.npz")
    run = tmp_path / "run"
    with lock_folder(run):  # another run holds the folder
        done = run_command("petnet", "train", data, "--output", run, *TINY_TRAINING)
        evaluated = run_command("petnet", "evaluate", data, "--output", run, "--repeats", "1")
    assert done.returncode == evaluated.returncode == 2
    for command, result in (("train", done), ("evaluate", evaluated)):
        assert result.stderr.startswith(f"petnet {command}: error: {run} is in use by another run")
        assert len(result.stderr.splitlines()) == 1
    assert sorted(p.name for p in run.iterdir()) == [".lock"]
    assert main(["train", str(data), "--output", str(run), *TINY_TRAINING]) == 0  # released


def test_resume_on_other_data_is_refused_unless_forced(tmp_path, capsys, train_singles):
    first = train_singles.subset(slice(0, 6000)).save(tmp_path / "first.npz")
    other = train_singles.subset(slice(6000, 12000)).save(tmp_path / "other.npz")
    run = tmp_path / "run"
    options = ["--output", str(run), *TINY_TRAINING]
    assert main(["train", str(first), *options]) == 0
    resume = ["--resume", str(run / "last.pt"), *options]
    capsys.readouterr()
    assert main(["train", str(other), *resume]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"petnet train: error: the checkpoint was made with the data {first}")
    assert f"this run has {other}" in line and line.endswith("pass --force-resume to mix them")
    moved = tmp_path / "moved" / "first.npz"  # a copy of the same data is the same data
    moved.parent.mkdir()
    moved.write_bytes(first.read_bytes())
    assert main(["train", str(moved), *resume]) == 0
    assert main(["train", str(other), *resume, "--force-resume"]) == 0
    assert main(["train", str(first), "--force-resume", *options]) == 2
    assert capsys.readouterr().err.endswith("--force-resume needs --resume\n")


def test_no_writer_follows_a_link_planted_at_its_output(tmp_path, train_singles):
    data = train_singles.subset(slice(0, 6000)).save(tmp_path / "data.npz")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "eval"
    out.mkdir()
    names = ["comparison.md", "comparison.json", "comparison.png", "results.json"]
    for name in names:
        (out / name).symlink_to(victim)
    pairs = tmp_path / "pairs.npz"
    pairs.symlink_to(victim)
    assert main(["sort", str(data), "--output", str(pairs)]) == 0
    argv = ["evaluate", str(data), "--output", str(out), "--repeats", "1"]
    assert main([*argv, "--policies", "takeAllGoods"]) == 0
    assert victim.read_text() == "precious"
    for path in [pairs, *(out / name for name in names)]:
        assert not path.is_symlink() and path.stat().st_size > 0


def test_an_acquisition_without_true_coincidences_is_not_scored(tmp_path, capsys, hand_singles):
    lonely = hand_singles([0.0, 50.0, 100.0], [0, 32, 1], [511] * 3, decay_id=[1, 2, 3])
    data = lonely.save(tmp_path / "lonely.npz")
    assert main(["evaluate", str(data)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("petnet evaluate: error: ") and "no true coincidence" in line


def test_a_device_the_machine_lacks_is_refused_in_one_line(tmp_path, capsys, train_singles):
    from dataclasses import asdict

    from petnet.checkpoint import save_checkpoint
    from petnet.config import EncodingConfig, ModelConfig
    from petnet.inference import PETNetSorter, build_model
    from petnet.scanner import preset

    net = build_model(preset("small"), EncodingConfig(), ModelConfig())
    stored = {"scanner": preset("small").to_dict(), "state_dict": net.state_dict()}
    stored |= {"model": asdict(ModelConfig()), "encoding": asdict(EncodingConfig())}
    checkpoint = save_checkpoint(tmp_path / "net.pt", stored)
    data = train_singles.subset(slice(0, 2000)).save(tmp_path / "data.npz")
    for argv in (["sort", "--method", "petnet"], ["evaluate"]):
        assert main([*argv, str(data), "--model", str(checkpoint), "--device", "cuda:99"]) == 2
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith(f"petnet {argv[0]}: error: device 'cuda:99': ")
    with pytest.raises(UserError, match="cuda:99"):
        PETNetSorter.from_checkpoint(checkpoint, device="cuda:99")
    assert PETNetSorter.from_checkpoint(checkpoint).device == torch.device("cpu")
