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
dropped. ``meta.json`` (written atomically) pins the search space and island count, so a
checkpoint is never resumed with a different search space.

On resume every worker reads all logs: finished candidates are known, in-flight ones are
evaluated again under their original identity, the island populations are rebuilt by
replaying the migration events in time order. Resuming with another number of ranks works:
workers keep their own counters, and the in-flight candidates of workers that no longer exist
are adopted by worker ``old_worker mod n_workers``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from propulate_hpo.population import FAILED, Population, Row
from propulate_hpo.space import SearchSpace

SCHEMA = "propulate-hpo/checkpoint/1"
META = "meta.json"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed (other search space, corrupt file, ...)."""


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass
class Evaluation:
    """Everything known about one candidate from the logs."""

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

    @property
    def key(self) -> tuple[int, int]:
        return (self.worker, self.generation)

    def row(self, version: int = 0, current: int = 0) -> Row:
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
        )


def write_meta(directory: Path, space: SearchSpace, n_islands: int) -> None:
    """Create or check ``meta.json``; raises :class:`CheckpointError` on a mismatch."""
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
        return
    directory.mkdir(parents=True, exist_ok=True)
    meta = {
        "schema": SCHEMA,
        "space": space.to_dict(),
        "islands": n_islands,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def log_path(directory: Path, worker: int) -> Path:
    return directory / f"worker-{worker:05d}.jsonl"


class WorkerLog:
    """Append-only log of one worker: one JSON object per line, one ``write`` per line."""

    def __init__(self, directory: Path, worker: int, fsync_interval_s: float = 1.0) -> None:
        self.path = log_path(directory, worker)
        self.fsync_interval_s = fsync_interval_s
        _drop_torn_tail(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._synced = time.monotonic()

    def write(self, record: dict[str, Any]) -> None:
        self._append(json.dumps(record, allow_nan=False, separators=(",", ":")))

    def _append(self, line: str) -> None:
        os.write(self._fd, (line + "\n").encode())
        now = time.monotonic()
        if now - self._synced > self.fsync_interval_s:
            os.fsync(self._fd)
            self._synced = now

    def start(self, worker: int, generation: int, island: int, genes: np.ndarray, t: float) -> None:
        x = _genes_json(genes)
        self._append(
            f'{{"e":"start","w":{worker},"g":{generation},"i":{island},"x":{x},"t":{t!r}}}'
        )

    def done(self, ev: Evaluation, with_candidate: bool = False) -> None:
        """The result of ``ev``; ``with_candidate``: no start record was written for it."""
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
            self.write(record)
            return
        self._append(
            f'{{"e":"done","w":{ev.worker},"g":{ev.generation},"loss":{ev.loss!r},'
            f'"s":{ev.status},"t":{ev.t_start!r},"dt":{ev.duration!r}{candidate}}}'
        )

    def event(self, kind: str, key: tuple[int, int], version: int, **fields: int) -> None:
        """Migration (``mig``), pollination (``pol``) or replacement (``deact``) of ``key``."""
        self.write({"e": kind, "w": key[0], "g": key[1], "v": version, "t": time.time(), **fields})

    def close(self) -> None:
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
        return sorted(
            (e for e in self.evaluations.values() if e.done),
            key=lambda e: (e.t_start + e.duration, e.key),
        )

    def in_flight(self, worker: int, n_workers: int) -> list[Evaluation]:
        """Unfinished candidates this worker must evaluate again (its own and orphans)."""
        return sorted(
            (e for e in self.evaluations.values() if not e.done and e.worker % n_workers == worker),
            key=lambda e: e.key,
        )

    def next_generation(self, worker: int) -> int:
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
    ) -> Population:
        """Rebuild one island's population; ``current(worker)`` gives the responsible rank."""
        population = Population(space, owner)
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
        return [np.array(e.curve, dtype=float) for e in self.finished if e.curve]


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def read_checkpoint(directory: Path, space: SearchSpace | None = None) -> CheckpointState:
    """Parse every worker log in ``directory`` (tolerating a torn last line)."""
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
