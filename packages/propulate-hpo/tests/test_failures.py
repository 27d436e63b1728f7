"""How a search fails (Reliability v1): Ctrl-C and SystemExit in a loss on one rank end the whole
job, every output path is checked before any work, a second run on a checkpoint is refused, a
resume with another loss function is refused unless forced, files are written atomically, and
a run whose candidates all failed says so."""

import json
import subprocess
import sys
import time

import pandas as pd
import pytest
from propulate_hpo import CheckpointError, benchmark, propulate
from propulate_hpo.demo import _plot_islands

from shared_hpc import UserError, lock_folder, serial_environ

LOSSES = """
import time

from shared_hpc import get_comm


def interrupt_on_rank_1(params):
    time.sleep(0.01)
    if get_comm().Get_rank() == 1:
        raise KeyboardInterrupt
    return params["x0"] ** 2


def exit_on_the_workers_root(params, comm):
    if comm.Get_rank() == 0:
        raise SystemExit(3)
    return 1.0


def exit_3(params):
    raise SystemExit(3)


def fail_above_0(params):
    if params["x0"] > 0:
        raise ValueError(f"x0 = {params['x0']:.3f} > 0")
    return params["x0"] ** 2
"""


def _problem(folder, dim=1):
    """A loss file and a TOML space of ``dim`` parameters in ``folder``."""
    (folder / "losses.py").write_text(LOSSES)
    (folder / "space.toml").write_text("".join(f"x{i} = [-1.0, 1.0]\n" for i in range(dim)))
    return ["--space", str(folder / "space.toml")]


@pytest.mark.parametrize(
    ("loss", "dim", "extra", "code", "expected"),
    [
        ("interrupt_on_rank_1", 1, [], 130, "rank 1 of 2: propulate-hpo run: interrupted"),
        # the root of a worker of 2 ranks told its helper to stop on the way out, a collective
        # that waits for a helper stuck in another one when the message is large
        (
            "exit_on_the_workers_root",
            20000,
            ["--ranks-per-worker", "2"],
            3,
            "rank 0 of 2: propulate-hpo run: stopped by SystemExit(3) at ",
        ),
    ],
    ids=["ctrl-c-on-rank-1", "system-exit-on-a-workers-root"],
)
def test_ctrl_c_or_system_exit_in_the_loss_on_one_rank_ends_the_job(
    loss, dim, extra, code, expected, tmp_path, mpiexec
):
    space = _problem(tmp_path, dim)
    command = [sys.executable, "-m", "propulate_hpo", "run", "--loss", f"losses.py:{loss}"]
    started = time.monotonic()
    done = subprocess.run(
        [mpiexec, "-n", "2", *command, *space, *extra, "--generations", "50"],
        cwd=tmp_path,
        env=serial_environ(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert time.monotonic() - started < 60
    assert done.returncode == code, done.stderr
    assert expected in done.stderr
    assert not (tmp_path / "propulate-hpo-run" / "results.json").exists()


def test_system_exit_in_a_serial_run_says_where(tmp_path, run_command):
    space = _problem(tmp_path)
    result = run_command("propulate_hpo", "run", "--loss", "losses.py:exit_3", *space, cwd=tmp_path)
    assert result.returncode == 3
    line = LOSSES.splitlines().index("    raise SystemExit(3)") + 1
    assert result.stderr == f"propulate-hpo run: stopped by SystemExit(3) at losses.py:{line}\n"


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit], ids=lambda e: e.__name__)
def test_ctrl_c_and_system_exit_are_no_failed_candidates(stop, tmp_path):
    calls = []

    def loss(params):
        calls.append(params)
        if len(calls) == 5:
            raise stop
        return params["x"] ** 2

    with pytest.raises(stop):
        propulate(loss, {"x": (-1.0, 1.0)}, generations=20, checkpoint_dir=tmp_path)
    lines = (tmp_path / "worker-00000.jsonl").read_text().splitlines()
    done = [json.loads(line) for line in lines if '"e":"done"' in line]
    assert len(done) == 4 and all(r["s"] == 0 for r in done)  # the 4 finished ones, all ok


def test_every_output_file_is_checked_before_the_search(tmp_path, run_command):
    (tmp_path / "out" / "progress.png").mkdir(parents=True)
    argv = ["run", "--function", "sphere", "--output", "out", "--checkpoint", "ckpt"]
    result = run_command("propulate_hpo", *argv, cwd=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr
        == "propulate-hpo run: error: out/progress.png is a folder, not a file to write\n"
    )
    assert not (tmp_path / "ckpt").exists()  # no work was done


def test_a_second_run_on_a_checkpoint_is_refused(tmp_path, run_command):
    with lock_folder(tmp_path):  # a run in progress
        argv = ["run", "--function", "sphere", "--checkpoint", str(tmp_path), "--output", "out"]
        result = run_command("propulate_hpo", *argv, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.count("\n") == 1
        assert f"{tmp_path} is in use by another run (pid " in result.stderr
        with pytest.raises(UserError, match="is in use by another run"):
            propulate(lambda p: p["x"], {"x": (0.0, 1.0)}, generations=3, checkpoint_dir=tmp_path)
    assert not list(tmp_path.glob("worker-*.jsonl")) and not (tmp_path / "meta.json").exists()


def test_a_second_demo_in_the_same_folder_is_refused(tmp_path, run_command):
    with lock_folder(tmp_path):
        result = run_command("propulate_hpo", "demo", "--output", str(tmp_path))
    assert result.returncode == 2 and "is in use by another run" in result.stderr


def test_resuming_with_another_loss_function_needs_force_resume(tmp_path, run_command):
    base = ["run", "--generations", "10", "--checkpoint", "ckpt", "--output", "out"]
    assert run_command("propulate_hpo", *base, "--function", "sphere", cwd=tmp_path).returncode == 0
    # rastrigin in 2 dimensions has sphere's search space
    other = [*base, "--function", "rastrigin", "--dim", "2"]
    result = run_command("propulate_hpo", *other, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "made with the loss function sphere, this run has rastrigin" in result.stderr
    assert "--force-resume" in result.stderr
    forced = run_command(
        "propulate_hpo", *other, "--force-resume", "--generations", "15", cwd=tmp_path
    )
    assert forced.returncode == 0, forced.stderr
    assert (
        json.loads((tmp_path / "out" / "results.json").read_text())["metrics"]["evaluations"] == 15
    )


def test_resuming_with_an_edited_loss_file_is_refused(tmp_path, run_command):
    space = _problem(tmp_path)
    argv = ["run", "--loss", "losses.py:fail_above_0", *space, "--checkpoint", "ckpt"]
    assert run_command("propulate_hpo", *argv, "--generations", "4", cwd=tmp_path).returncode == 0
    (tmp_path / "losses.py").write_text(LOSSES.replace("** 2", "** 4"))
    result = run_command("propulate_hpo", *argv, "--generations", "8", cwd=tmp_path)
    assert result.returncode == 2 and "losses.py:fail_above_0 (sha256 " in result.stderr


def test_resuming_with_another_python_loss_function_needs_force_resume(tmp_path):
    loss, space = benchmark("sphere")
    propulate(loss, space, generations=5, checkpoint_dir=tmp_path)
    rastrigin, same_space = benchmark("rastrigin", dim=2)
    with pytest.raises(CheckpointError, match="force_resume=True"):
        propulate(rastrigin, same_space, generations=10, checkpoint_dir=tmp_path)

    def square(params):  # named by its module and qualified name
        return params["x0"] ** 2

    with pytest.raises(CheckpointError, match=r"test_failures:test_\w+\.<locals>\.square;"):
        propulate(square, same_space, generations=10, checkpoint_dir=tmp_path)
    result = propulate(
        rastrigin, same_space, generations=10, checkpoint_dir=tmp_path, force_resume=True
    )
    assert result.n_evaluations == 10


def test_a_checkpoint_without_a_loss_fingerprint_still_resumes(tmp_path):
    loss, space = benchmark("sphere")
    propulate(loss, space, generations=5, checkpoint_dir=tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["loss"] == {"name": "sphere"}
    del meta["loss"]  # as version 0.1.0 wrote it
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    assert propulate(loss, space, generations=8, checkpoint_dir=tmp_path).n_evaluations == 8


def test_plots_replace_a_planted_link_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "progress.png").symlink_to(victim)
    (tmp_path / "islands.png").symlink_to(victim)
    loss, space = benchmark("sphere")
    result = propulate(loss, space, generations=5)
    result.plot(tmp_path / "progress.png")
    history = pd.DataFrame({"status": ["ok"], "island": [0], "val_accuracy": [0.9]})
    _plot_islands(history, tmp_path / "islands.png")
    assert victim.read_text() == "keep me"
    for name in ("progress.png", "islands.png"):
        path = tmp_path / name
        assert not path.is_symlink() and path.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "islands.png",
        "progress.png",
        "victim.txt",
    ]


def test_a_run_whose_candidates_all_failed_exits_1_and_names_the_first_error(tmp_path, run_command):
    space = _problem(tmp_path)
    argv = ["run", "--loss", "losses.py:fail_above_0", *space, "--output", "out"]
    (tmp_path / "space.toml").write_text("x0 = [0.5, 1.0]\n")  # every candidate fails
    result = run_command("propulate_hpo", *argv, "--generations", "3", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("propulate-hpo run: error: all 3 candidates failed; the first:")
    assert "ValueError: x0 = " in result.stderr and result.stderr.count("\n") == 1
    assert (tmp_path / "out" / "history.csv").exists()  # the errors are kept
    (tmp_path / "space.toml").write_text("x0 = [-1.0, 1.0]\n")  # about half fail
    result = run_command("propulate_hpo", *argv, "--generations", "20", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert " of 20 candidates failed; the first: ValueError: x0 = " in result.stdout
