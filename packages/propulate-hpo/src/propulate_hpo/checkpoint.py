"""Crash-safe, incremental checkpoints: one append-only JSON-lines log per worker.

Upstream Propulate pickles the whole population into one file every generation, so the cost of
a checkpoint grows with the run and a crash while writing can lose it. Here each worker appends
what is new — a ``start`` line before it evaluates a candidate (the candidate is now *in
flight*), a ``done`` line after, and a line per migration event it causes — with a single
``write`` per line. After an evaluation that took under a millisecond, a worker writes no
``start`` line for the next candidate (it would double the cost of logging quick functions);
its ``done`` line carries the candidate instead. A crash can then lose only that one candidate
in flight, which the resumed run replaces with a new one, never a result. A killed process
loses nothing that was written; a torn last line (the machine died mid-write) is recognised and
dropped. ``meta.json`` (written atomically) pins the search space, the island count and the
loss function (its name, or a loss file's content), so a checkpoint is never resumed with a
different search space, and with another loss function only when the user forces it.

On resume every worker reads all logs: finished candidates are known, in-flight ones are
evaluated again under their original identity, the island populations are rebuilt by
replaying the migration events in time order. Resuming with another number of ranks works:
workers keep their own counters, and the in-flight candidates of workers that no longer exist
are adopted by worker ``old_worker mod n_workers``.
"""

from __future__ import annotations

import errno
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from propulate_hpo.layout import Layout
from propulate_hpo.population import FAILED, Population, Row
from propulate_hpo.space import SearchSpace
from shared_hpc.errors import UserError
from shared_hpc.files import write_json_atomic
from shared_hpc.fingerprint import check_resume

SCHEMA = "propulate-hpo/checkpoint/1"
META = "meta.json"


class CheckpointError(UserError):
    """A checkpoint that cannot be resumed (other search space, corrupt file, ...)."""


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass
class Evaluation:
    """Everything known about one candidate: from the logs, or of an evaluation just made.

    Attributes:
        worker: The worker that bred it.
        generation: That worker's counter.
        island: Its birth island.
        genes: Its genes.
        t_start: When its evaluation began (``time.time()``).
        done: Whether its evaluation finished.
        loss: Its loss (infinite while unknown or failed).
        status: ``OK``, ``FAILED`` or ``CANCELLED``.
        duration: How long the evaluation took in seconds.
        curve: Intermediate losses of a generator loss.
        metrics: Extra metrics the loss function returned (and every objective's value).
        error: Why it failed, ``None`` if it did not.
        objectives: Its objectives as minimised, in a multi-objective search.
    """

    worker: int
    generation: int
    island: int
    genes: np.ndarray
    t_start: float
    done: bool = False
    loss: float = math.inf
    status: int = FAILED
    duration: float = 0.0
    curve: list[float] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    objectives: np.ndarray | None = None

    @property
    def key(self) -> tuple[int, int]:
        """Its identity, ``(worker, generation)``."""
        return (self.worker, self.generation)

    def row(self, version: int = 0, current: int = 0) -> Row:
        """The candidate as a population row.

        Args:
            version: Its number of migrations.
            current: Island-local index of the worker responsible for it.
        """
        return Row(
            self.worker,
            self.generation,
            self.island,
            self.loss,
            self.status,
            self.t_start,
            self.duration,
            version,
            current,
            self.genes.copy(),
            self.objectives,
        )


def write_meta(
    directory: Path,
    space: SearchSpace,
    n_islands: int,
    loss: dict[str, Any],
    *,
    objectives: list[str] | None = None,
    force: bool = False,
) -> None:
    """Create ``meta.json`` in ``directory``, or check the one there against this run.

    Args:
        directory: The checkpoint directory (created if missing).
        space: The run's search space.
        n_islands: The run's number of islands.
        loss: The fingerprint of the run's loss function.
        objectives: The objectives of a multi-objective search (``name:direction`` each).
        force: Accept a checkpoint of another loss function.

    Raises:
        CheckpointError: ``meta.json`` is unreadable, foreign, or for another search space,
            number of islands, objectives or (unless ``force``) loss function.
    """
    path = directory / META
    if path.exists():
        try:
            meta = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise CheckpointError(f"{path} is not readable JSON: {error}") from None
        if meta.get("schema") != SCHEMA:
            raise CheckpointError(
                f"{path}: not a propulate-hpo checkpoint ({meta.get('schema')!r})"
            )
        if meta.get("space") != space.to_dict():
            raise CheckpointError(
                f"checkpoint {directory} was written for another search space:\n"
                f"  checkpoint: {meta.get('space')}\n  this run:   {space.to_dict()}\n"
                "use a new checkpoint directory for a new search space"
            )
        if meta.get("islands") != n_islands:
            raise CheckpointError(
                f"checkpoint {directory} has {meta.get('islands')} islands, this run asks for "
                f"{n_islands}; resume with the same number of islands"
            )
        if meta.get("objectives") != objectives:
            raise CheckpointError(
                f"checkpoint {directory} was written for the objectives "
                f"{meta.get('objectives') or 'loss'}, this run has {objectives or 'loss'}; "
                "use a new checkpoint directory for other objectives"
            )
        try:  # a checkpoint of version 0.1.0 names no loss function: accepted
            check_resume(
                "loss function",
                meta.get("loss"),
                loss,
                force=force,
                force_flag="--force-resume (force_resume=True in Python)",
            )
        except UserError as refusal:
            raise CheckpointError(str(refusal)) from None
        return
    meta = {
        "schema": SCHEMA,
        "space": space.to_dict(),
        "islands": n_islands,
        "loss": loss,
        "objectives": objectives,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json_atomic(path, meta)


def log_path(directory: Path, worker: int) -> Path:
    """The log file of a worker.

    Args:
        directory: The checkpoint directory.
        worker: The worker.
    """
    return directory / f"worker-{worker:05d}.jsonl"


class WorkerLog:
    """Append-only log of one worker: one JSON object per line, one ``write`` per line.

    Args:
        directory: The checkpoint directory.
        worker: The worker whose log it is.
        fsync_interval_s: Flush the log to disk at most this often (a killed process loses
            nothing written; a machine that goes down, at most this much).
    """

    def __init__(self, directory: Path, worker: int, fsync_interval_s: float = 1.0) -> None:
        self.path = log_path(directory, worker)
        self.fsync_interval_s = fsync_interval_s
        _drop_torn_tail(self.path)
        # the mode the user's umask gives (usually 0644), so that colleagues can read the logs
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        self._synced = time.monotonic()

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as a line.

        Args:
            record: A JSON object.
        """
        self._append(json.dumps(record, allow_nan=False, separators=(",", ":")))

    def _append(self, line: str) -> None:
        data = (line + "\n").encode()
        try:
            written = os.write(self._fd, data)
            now = time.monotonic()
            if now - self._synced > self.fsync_interval_s:
                os.fsync(self._fd)
                self._synced = now
        except OSError as error:  # a full disk: say which file (the run then ends)
            raise OSError(error.errno, error.strerror, str(self.path)) from None
        if written < len(data):  # the disk filled up mid-line; a resume drops the torn line
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))

    def start(self, worker: int, generation: int, island: int, genes: np.ndarray, t: float) -> None:
        """A candidate is now in flight.

        Args:
            worker: The worker that bred it.
            generation: That worker's counter.
            island: Its birth island.
            genes: Its genes.
            t: When its evaluation begins (``time.time()``).
        """
        x = _genes_json(genes)
        self._append(
            f'{{"e":"start","w":{worker},"g":{generation},"i":{island},"x":{x},"t":{t!r}}}'
        )

    def done(self, ev: Evaluation, with_candidate: bool = False) -> None:
        """The result of an evaluation.

        Args:
            ev: The finished evaluation.
            with_candidate: No start record was written for it: this record carries its island
                and genes.
        """
        candidate = f',"i":{ev.island},"x":{_genes_json(ev.genes)}' if with_candidate else ""
        if ev.curve or ev.metrics or ev.error is not None or not math.isfinite(ev.loss):
            record: dict[str, Any] = {
                "e": "done",
                "w": ev.worker,
                "g": ev.generation,
                "loss": _finite_or_none(ev.loss),
                "s": ev.status,
                "t": ev.t_start,
                "dt": ev.duration,
            }
            if with_candidate:
                record["i"], record["x"] = ev.island, ev.genes.tolist()
            if ev.curve:
                record["c"] = [_finite_or_none(v) for v in ev.curve]
            if ev.metrics:
                record["m"] = {k: _finite_or_none(v) for k, v in ev.metrics.items()}
            if ev.error is not None:
                record["err"] = ev.error
            if ev.objectives is not None:
                record["o"] = ev.objectives.tolist()
            self.write(record)
            return
        self._append(
            f'{{"e":"done","w":{ev.worker},"g":{ev.generation},"loss":{ev.loss!r},'
            f'"s":{ev.status},"t":{ev.t_start!r},"dt":{ev.duration!r}{candidate}}}'
        )

    def event(self, kind: str, key: tuple[int, int], version: int, **fields: int) -> None:
        """Migration (``mig``), pollination (``pol``) or replacement (``deact``) of ``key``.

        Args:
            kind: ``mig``, ``pol`` or ``deact``.
            key: The individual, ``(worker, generation)``.
            version: Its number of migrations before the event.
            **fields: The islands and workers involved (``from``, ``to``, ``cur``, ``i``).
        """
        self.write({"e": kind, "w": key[0], "g": key[1], "v": version, "t": time.time(), **fields})

    def close(self) -> None:
        """Flush the log to disk and close it."""
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1


def _genes_json(genes: np.ndarray) -> str:
    """``genes`` as a JSON array, formatted by hand: the same text as ``json.dumps`` (the repr of
    a float round-trips exactly; genes are always finite) at a fraction of the cost, which
    counts for cheap loss functions."""
    return f"[{','.join(map(repr, genes.tolist()))}]"


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that was only partly written when a machine went down."""
    if not path.exists():
        return
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end != len(data):
        with open(path, "r+b") as f:
            f.truncate(end)


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete = lines[:-1]  # the last piece is empty or a torn line
    for number, line in enumerate(complete, start=1):
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError:
            raise CheckpointError(f"{path}, line {number}: corrupt record {line[:80]!r}") from None


@dataclass
class CheckpointState:
    """The content of a checkpoint directory, read once at start-up."""

    evaluations: dict[tuple[int, int], Evaluation] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> list[Evaluation]:
        """The finished evaluations, in order of completion."""
        return sorted(
            (e for e in self.evaluations.values() if e.done),
            key=lambda e: (e.t_start + e.duration, e.key),
        )

    def in_flight(self, worker: int, n_workers: int) -> list[Evaluation]:
        """Unfinished candidates this worker must evaluate again (its own and orphans).

        Args:
            worker: The worker.
            n_workers: Workers of the resumed run (orphans of workers beyond them are adopted
                by ``worker mod n_workers``).
        """
        return sorted(
            (e for e in self.evaluations.values() if not e.done and e.worker % n_workers == worker),
            key=lambda e: e.key,
        )

    def next_generation(self, worker: int) -> int:
        """The next free generation counter of a worker.

        Args:
            worker: The worker.
        """
        return 1 + max(
            (e.generation for e in self.evaluations.values() if e.worker == worker), default=-1
        )

    def population(
        self,
        space: SearchSpace,
        island: int,
        owner: int,
        current: Callable[[int], int],
        island_size: int,
        n_objectives: int = 0,
    ) -> Population:
        """Rebuild one island's population by replaying the migration events in time order.

        Args:
            space: The search space.
            island: The island.
            owner: Global index of the worker that will hold the population.
            current: Gives the island-local worker responsible for a row bred by a worker.
            island_size: Workers of the island.
            n_objectives: Objectives of a multi-objective search (0: one loss).
        """
        population = Population(space, owner, n_objectives=n_objectives)
        for ev in self.finished:
            if ev.island == island:
                population.add(ev.row(0, current(ev.worker)))
        for event in self.events:
            ev = self.evaluations.get((event["w"], event["g"]))
            if ev is None or not ev.done:
                continue
            kind, version = event["e"], event["v"]
            if kind in ("mig", "pol") and event["to"] == island:
                population.immigrate(ev.row(version + 1, event.get("cur", 0) % island_size))
            if (kind == "mig" and event["from"] == island) or (
                kind == "deact" and event["i"] == island
            ):
                population.deactivate(ev.key, version)
        return population

    def curves(self) -> list[np.ndarray]:
        """The loss curves of the finished generator losses (for the early-stopping surrogate)."""
        return [np.array(e.curve, dtype=float) for e in self.finished if e.curve]


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def read_checkpoint(directory: Path, space: SearchSpace | None = None) -> CheckpointState:
    """Parse every worker log in ``directory`` (tolerating a torn last line).

    Args:
        directory: The checkpoint directory.
        space: The search space, to check the number of genes of every candidate.

    Returns:
        Every evaluation and migration event of the logs.

    Raises:
        CheckpointError: A corrupt or malformed record.
    """
    state = CheckpointState()
    for path in sorted(directory.glob("worker-*.jsonl")):
        for number, rec in _lines(path):
            kind = rec.get("e")
            try:
                key = (int(rec["w"]), int(rec["g"]))
                if kind == "start" or (kind == "done" and "x" in rec):
                    genes = np.array(rec["x"], dtype=float)
                    if space is not None and genes.shape != (space.dim,):
                        raise CheckpointError(
                            f"{path}, line {number}: {len(genes)} genes, the space has {space.dim}"
                        )
                    if key not in state.evaluations:
                        state.evaluations[key] = Evaluation(
                            key[0], key[1], int(rec["i"]), genes, float(rec["t"])
                        )
                if kind == "done":
                    ev = state.evaluations.get(key)
                    if ev is None:
                        raise CheckpointError(
                            f"{path}, line {number}: result of {key} without its candidate"
                        )
                    ev.done = True
                    ev.status = int(rec["s"])
                    ev.loss = math.inf if rec["loss"] is None else float(rec["loss"])
                    ev.t_start, ev.duration = float(rec["t"]), float(rec["dt"])
                    ev.curve = [_nan(v) for v in rec.get("c", [])]
                    ev.metrics = {k: _nan(v) for k, v in rec.get("m", {}).items()}
                    ev.error = rec.get("err")
                    if "o" in rec:
                        ev.objectives = np.array(rec["o"], dtype=float)
                elif kind in ("mig", "pol", "deact"):
                    state.events.append(rec)
                elif kind != "start":
                    raise CheckpointError(f"{path}, line {number}: unknown record {kind!r}")
            except (KeyError, TypeError, ValueError) as error:
                raise CheckpointError(
                    f"{path}, line {number}: malformed record ({error})"
                ) from None
    state.events.sort(key=lambda r: (r["t"], r["w"], r["g"]))
    return state


def read_meta(directory: Path) -> dict[str, Any]:
    """The content of ``meta.json``: schema, search space, number of islands, creation time.

    Args:
        directory: The checkpoint directory.

    Raises:
        CheckpointError: ``directory`` is not a propulate-hpo checkpoint.
    """
    path = Path(directory) / META
    if not path.exists():
        raise CheckpointError(f"{directory} is not a propulate-hpo checkpoint (no {META})")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not readable JSON: {error}") from None
    if meta.get("schema") != SCHEMA:
        raise CheckpointError(f"{path}: not a propulate-hpo checkpoint")
    return meta


def load_state(
    directory: Path | None,
    space: SearchSpace,
    layout: Layout,
    loss: dict[str, Any],
    *,
    objectives: list[str] | None = None,
    force: bool = False,
) -> CheckpointState:
    """What a checkpoint holds for this run (collective over ``layout.world``).

    Rank 0 creates or checks ``meta.json``; then every worker root reads all logs. A problem
    on any rank is raised on every rank, so that no rank waits for one that gave up.

    Args:
        directory: The checkpoint directory, ``None`` for a run without a checkpoint.
        space: The run's search space.
        layout: This rank's place in the run.
        loss: The fingerprint of the run's loss function.
        objectives: The objectives of a multi-objective search (``name:direction`` each).
        force: Resume a checkpoint of another loss function.

    Returns:
        The state (empty without a checkpoint and on helper ranks).

    Raises:
        CheckpointError: A checkpoint of another search space, number of islands or (unless
            ``force``) loss function, or a corrupt one.
    """
    if directory is None:
        return CheckpointState()
    problem = None
    if layout.world.Get_rank() == 0:
        try:
            write_meta(directory, space, layout.n_islands, loss, objectives=objectives, force=force)
        except Exception as error:  # shared with all ranks, raised everywhere below
            problem = error
    problem = layout.world.bcast(problem, root=0)
    if problem is not None:
        raise problem
    if layout.workers is None:
        return CheckpointState()
    problem, state = None, CheckpointState()
    try:
        state = read_checkpoint(directory, space)
    except Exception as error:
        problem = error
    # also the guarantee that every root has read the logs before anyone appends to them
    for found in layout.workers.allgather(problem):
        if found is not None:
            raise found
    return state
