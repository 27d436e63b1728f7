"""Crash-safe checkpoints: resume, in-flight candidates, torn and corrupt files, kill -9."""

import contextlib
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from propulate_hpo import CheckpointError, SearchSpace, propulate, propulator
from propulate_hpo.checkpoint import read_checkpoint

SCRIPT = str(Path(__file__).with_name("checkpointed_run.py"))
SPACE = {"x": (-5.12, 5.12), "y": (-5.12, 5.12)}


def sphere(p):
    return p["x"] ** 2 + p["y"] ** 2


def records(directory: Path) -> list[dict]:
    out = []
    for path in sorted(directory.glob("worker-*.jsonl")):
        data = path.read_text()
        lines = data.split("\n")[:-1]  # a torn last line is not a record
        out.extend(json.loads(line) for line in lines)
    return out


def check_nothing_lost_or_repeated(before: list[dict], after: list[dict], total: int) -> None:
    """Every result written before the crash is kept; each candidate logged and ended once
    (its genes are in its start record or, for a quick evaluation, in its result)."""
    done = {(r["w"], r["g"]): r for r in after if r["e"] == "done"}
    candidates = [r for r in after if "x" in r]
    logged = Counter((r["w"], r["g"]) for r in candidates)
    assert len(done) == total == sum(r["e"] == "done" for r in after)  # none evaluated twice
    assert set(logged) == set(done) and max(logged.values()) == 1
    for r in before:
        if r["e"] == "done":
            assert done[(r["w"], r["g"])] == r  # nothing finished before the crash is lost
    genes = [tuple(r["x"]) for r in candidates]
    assert len(genes) == len(set(genes))  # and no duplicate candidates


def test_resume_continues_where_the_run_stopped(tmp_path, monkeypatch):
    # every evaluation counts as quick, even one that a loaded machine stretches past 1 ms
    monkeypatch.setattr(propulator, "_IN_FLIGHT_ABOVE_S", 1.0)
    first = propulate(sphere, SPACE, generations=30, checkpoint_dir=tmp_path, seed=1)
    before = records(tmp_path)
    # quick evaluations: after the first, the result records carry the candidates
    assert sum(r["e"] == "start" for r in before) == 1
    second = propulate(sphere, SPACE, generations=70, checkpoint_dir=tmp_path, seed=1)
    assert first.n_evaluations == 30 and second.n_evaluations == 70
    check_nothing_lost_or_repeated(before, records(tmp_path), 70)
    assert set(second.history["generation"]) == set(range(70))
    assert second.best_loss <= first.best_loss
    # a finished run resumed with the same budget evaluates nothing new
    written = len(records(tmp_path))
    third = propulate(sphere, SPACE, generations=70, checkpoint_dir=tmp_path, seed=1)
    assert third.n_evaluations == 70 and len(records(tmp_path)) == written


def test_in_flight_candidate_is_evaluated_again_under_its_identity(tmp_path):
    propulate(sphere, SPACE, generations=5, checkpoint_dir=tmp_path)
    log = tmp_path / "worker-00000.jsonl"
    with log.open("a") as f:  # the process died while evaluating generation 5
        f.write(json.dumps({"e": "start", "w": 0, "g": 5, "i": 0, "x": [1.5, -2.0], "t": 0.0}))
        f.write("\n")
        f.write('{"e": "done", "w": 0, "g": 5, "lo')  # and was cut mid-write: a torn line
    evaluated = []
    result = propulate(
        lambda p: evaluated.append(p) or sphere(p),
        SPACE,
        generations=8,
        checkpoint_dir=tmp_path,
        loss_fingerprint=propulator.loss_name(sphere),  # sphere, watched
    )
    assert evaluated[0] == {"x": 1.5, "y": -2.0}  # the in-flight one first, once
    assert len(evaluated) == 3 and result.n_evaluations == 8
    row = result.history.query("generation == 5").iloc[0]
    assert row["loss"] == pytest.approx(1.5**2 + 2.0**2)
    state = read_checkpoint(tmp_path)
    assert all(e.done for e in state.evaluations.values()) and len(state.evaluations) == 8


def test_a_checkpoint_of_another_search_space_is_refused(tmp_path):
    propulate(sphere, SPACE, generations=3, checkpoint_dir=tmp_path)
    other = {"x": (-5.12, 5.12), "y": (-5.0, 5.0)}
    with pytest.raises(CheckpointError, match="another search space"):
        propulate(sphere, other, generations=3, checkpoint_dir=tmp_path)
    log_only = tmp_path / "copy"
    log_only.mkdir()
    (log_only / "worker-00000.jsonl").write_bytes((tmp_path / "worker-00000.jsonl").read_bytes())
    (log_only / "meta.json").write_text(
        json.dumps({**json.loads((tmp_path / "meta.json").read_text()), "islands": 2})
    )
    with pytest.raises(CheckpointError, match="2 islands"):
        propulate(sphere, SPACE, generations=3, checkpoint_dir=log_only)


def test_corrupt_checkpoints_give_clear_errors(tmp_path):
    propulate(sphere, SPACE, generations=4, checkpoint_dir=tmp_path)
    log = tmp_path / "worker-00000.jsonl"
    lines = log.read_text().split("\n")
    lines[2] = "{not json"
    log.write_text("\n".join(lines))
    with pytest.raises(CheckpointError, match="line 3: corrupt"):
        propulate(sphere, SPACE, generations=6, checkpoint_dir=tmp_path)
    (tmp_path / "meta.json").write_text("{")
    with pytest.raises(CheckpointError, match="not readable JSON"):
        propulate(sphere, SPACE, generations=6, checkpoint_dir=tmp_path)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "meta.json").write_text(json.dumps({"schema": "something/else"}))
    with pytest.raises(CheckpointError, match="not a propulate-hpo checkpoint"):
        propulate(sphere, SPACE, generations=6, checkpoint_dir=wrong)


def test_checkpoint_format_is_json_lines_not_pickle(tmp_path, monkeypatch):
    # a wide margin between slow and quick, so that a loaded machine cannot blur them
    monkeypatch.setattr(propulator, "_IN_FLIGHT_ABOVE_S", 0.05)
    calls = []

    def slow_then_quick(p):
        calls.append(p)
        if len(calls) <= 2:
            time.sleep(0.1)
        return sphere(p)

    propulate(slow_then_quick, SearchSpace(SPACE), generations=4, checkpoint_dir=tmp_path)
    written = records(tmp_path)
    # a start record while evaluations are slow, then the result records carry them
    assert [r["e"] for r in written] == ["start", "done"] * 3 + ["done"]
    assert [("x" in r) for r in written if r["e"] == "done"] == [False] * 3 + [True]
    assert read_checkpoint(tmp_path).evaluations[(0, 3)].genes.tolist() == written[-1]["x"]
    assert json.loads((tmp_path / "meta.json").read_text())["space"]["x"]["type"] == "float"


def _kill_after(process, directory: Path, done_lines: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sum(r["e"] == "done" for r in records(directory)) >= done_lines:
            break
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be killed:\n{process.stdout.read()}")
        time.sleep(0.05)
    else:
        pytest.fail("the run made no progress")
    _kill_9(process)


def _launched(pid: int) -> list[int]:
    """``pid`` and every process below it: MPICH's mpiexec starts its proxy and each rank in a
    session of their own, so killing the launch's process group would miss them."""
    found, queue = [], [pid]
    while queue:
        pid = queue.pop()
        found.append(pid)
        with contextlib.suppress(OSError):  # it has already exited
            queue.extend(map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split()))
    return found


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie writes nothing


def _kill_9(process) -> None:
    """kill -9 the whole launch, mpiexec and every rank, and wait until all are gone: a rank
    that outlived mpiexec by a few milliseconds could write after the test reads the logs."""
    pids = _launched(process.pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(_running(pid) for pid in pids[1:]):
        if time.monotonic() > deadline:
            pytest.fail(f"processes of the launch outlived kill -9: {pids}")
        time.sleep(0.01)


def _finish(launch, directory: Path, generations: int, ranks: int | None) -> str:
    process = launch([SCRIPT, str(directory), str(generations), "0.003"], ranks)
    out, _ = process.communicate(timeout=240)
    assert process.returncode == 0, out
    return out


@pytest.mark.parametrize("ranks", [None, 4], ids=["serial", "mpiexec-n-4"])
def test_kill_9_mid_run_then_resume_loses_nothing(tmp_path, ranks, launch):
    generations = 60
    process = launch([SCRIPT, str(tmp_path), str(generations), "0.003"], ranks)
    _kill_after(process, tmp_path, done_lines=40)
    before = records(tmp_path)
    in_flight = {(r["w"], r["g"]) for r in before if r["e"] == "start"} - {
        (r["w"], r["g"]) for r in before if r["e"] == "done"
    }
    workers = ranks or 1
    assert sum(r["e"] == "done" for r in before) < generations * workers  # it was mid-run
    assert all("x" not in r for r in before if r["e"] == "done")  # 3 ms: start records
    out = _finish(launch, tmp_path, generations, ranks)
    assert f"done {generations * workers} " in out
    check_nothing_lost_or_repeated(before, records(tmp_path), generations * workers)
    done = {(r["w"], r["g"]) for r in records(tmp_path) if r["e"] == "done"}
    assert in_flight <= done  # the candidates in flight at the crash were evaluated after all


def test_resume_with_another_number_of_ranks(tmp_path, launch):
    """4 ranks are killed; the run resumes on 2: workers 2 and 3's in-flight work is adopted."""
    process = launch([SCRIPT, str(tmp_path), "40", "0.003"], 4)
    _kill_after(process, tmp_path, done_lines=30)
    before = records(tmp_path)
    out = _finish(launch, tmp_path, 50, 2)
    after = records(tmp_path)
    done = Counter(r["w"] for r in after if r["e"] == "done")
    # workers 0 and 1 went on to 50 candidates each; 2 and 3 kept what they had finished
    assert done[0] == 50 and done[1] == 50
    in_flight = {(r["w"], r["g"]) for r in before if r["e"] == "start"} - {
        (r["w"], r["g"]) for r in before if r["e"] == "done"
    }
    total = (
        100
        + sum(1 for r in before if r["e"] == "done" and r["w"] >= 2)
        + sum(1 for w, _ in in_flight if w >= 2)
    )
    check_nothing_lost_or_repeated(before, after, total)
    assert f"done {total} " in out
    losses = np.array([r["loss"] for r in after if r["e"] == "done"])
    assert np.isfinite(losses).all()


def test_resume_restores_the_early_stopping_baseline(tmp_path):
    from propulate_hpo import BestAtStep, Propulator

    def training(p):
        loss = 10.0
        for _ in range(6):
            loss *= 1 - p["rate"]
            yield loss

    space = {"rate": (0.01, 0.9)}
    first = propulate(
        training, space, generations=15, checkpoint_dir=tmp_path, surrogate=BestAtStep(0.1)
    )
    resumed = Propulator(
        training, space, generations=25, checkpoint_dir=tmp_path, surrogate=BestAtStep(0.1)
    )
    result = resumed.run()
    assert resumed.surrogate.curves == 25  # 15 read back from the logs, 10 new ones
    best_curve = 10.0 * np.cumprod(np.full(6, 1 - first.history["rate"].max()))
    assert np.all(resumed.surrogate.best <= best_curve + 1e-12)
    steps = result.history.set_index("generation")["steps"]
    assert (steps.loc[:14] == first.history.set_index("generation")["steps"]).all()


FAILING_RUN = """
import sys
from mpi4py import MPI
from propulate_hpo import propulate
from propulate_hpo.propagators import InitUniform

class Failing(InitUniform):
    calls = 0

    def apply(self, pool, rng):  # a bug in a propagator, on one rank only
        self.calls += 1
        if MPI.COMM_WORLD.rank == 1 and self.calls == 5:
            raise RuntimeError("propagator bug")
        return super().apply(pool, rng)

propulate(lambda p: p["x"] ** 2, {"x": (-1.0, 1.0)}, generations=400,
          checkpoint_dir=sys.argv[1], propagator=Failing())
"""


def test_an_error_on_one_rank_aborts_every_rank_instead_of_hanging(tmp_path, launch):
    script = tmp_path / "failing_run.py"
    script.write_text(FAILING_RUN)
    process = launch([str(script), str(tmp_path / "ckpt")], 2)
    try:
        out, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        _kill_9(process)
        pytest.fail("the other rank hung after one rank failed")
    assert process.returncode != 0
    assert "propagator bug" in out  # get_comm's excepthook ends the job
    assert "rank 1 of 2: uncaught RuntimeError; aborting the MPI job" in out
    finished = [r for r in records(tmp_path / "ckpt") if r["e"] == "done"]
    assert sum(r["w"] == 1 for r in finished) == 4  # its finished evaluations are kept
