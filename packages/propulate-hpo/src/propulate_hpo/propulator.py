"""The asynchronous propagation loop: breed, evaluate, tell the island, drain — never wait.

Every worker loops on its own (Propulate, arXiv:2301.08713): it breeds one candidate from the
whole population it currently knows, evaluates it, sends the result to the other workers of its
island with non-blocking point-to-point messages (flat float64 arrays), and takes in whatever
has arrived meanwhile. There is no barrier per generation; a slow evaluation delays nobody
else. With several islands, a worker occasionally sends its island's best individuals to other
islands: *migration* moves them (they are deactivated at home), *pollination* sends copies
(the receiving island deactivates as many of its worst). At the end the workers exchange how
many messages each sent to each other, receive all of them, and every worker of an island
holds the same population.
"""

from __future__ import annotations

import inspect
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from propulate_hpo import messages
from propulate_hpo.checkpoint import (
    CheckpointState,
    Evaluation,
    WorkerLog,
    read_checkpoint,
    write_meta,
)
from propulate_hpo.layout import check_topology, make_layout
from propulate_hpo.population import CANCELLED, FAILED, OK, Population, Row
from propulate_hpo.propagators import Propagator, default_propagator
from propulate_hpo.results import Result, Table
from propulate_hpo.space import SearchSpace
from propulate_hpo.surrogate import Surrogate

_GO, _STOP = 1.0, 0.0
_BREED_TRIES = 64  # breeds before falling back to random candidates to avoid a duplicate
_RANDOM_TRIES = 1000
_IN_FLIGHT_ABOVE_S = 1e-3  # after an evaluation this long, the next one is logged and announced
_AHEAD = 2  # evaluations a worker may run ahead of its peers' average before yielding its core
_PROBE_MISSES = 3  # probes in a row that find nothing before a drain ends

LossFunction = Callable[..., Any]


def _idle(since: float) -> None:
    """Wait politely: yield the core at first (fast hand-over when ranks share cores), then
    sleep, so a worker waiting minutes for a slow peer's last candidate burns no energy."""
    if time.monotonic() - since < 0.05:
        os.sched_yield()
    else:
        time.sleep(0.002)


def _split(value: Any) -> tuple[float, dict[str, float]]:
    """Loss and extra metrics of what a loss function returned or yielded."""
    if isinstance(value, Mapping):
        if "loss" not in value:
            raise ValueError(f"a loss function returned a dict without 'loss': {sorted(value)}")
        return float(value["loss"]), {str(k): float(v) for k, v in value.items() if k != "loss"}
    return float(value), {}


def _wants_comm(loss_fn: LossFunction) -> bool:
    """Does ``loss_fn`` take the worker communicator as its second positional argument?"""
    try:
        parameters = inspect.signature(loss_fn).parameters.values()
    except (TypeError, ValueError):
        return False
    kinds = [p.kind for p in parameters if p.default is inspect.Parameter.empty]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(k in positional for k in kinds) >= 2 or inspect.Parameter.VAR_POSITIONAL in kinds


class Propulator:
    """Asynchronous evolutionary optimisation of ``loss_fn`` over ``space`` on all ranks.

    Construct and :meth:`run` it on every rank (``mpiexec -n N python script.py``); a plain
    ``python`` process runs it with one worker. Limits: ``generations`` candidates per worker;
    ``max_evaluations`` candidates of all workers together (fast workers do more; split among
    islands by their size; exceeded by at most the candidates started at the same moment on
    different workers or, for evaluations under a millisecond, those whose results are still on
    their way); ``budget_s`` seconds of wall-clock time. Without any, 100 per worker.

    The loss function takes the parameter dict (and, if it accepts a second argument, the
    worker's communicator) and returns a float, a dict with ``"loss"`` and extra metrics, or is
    a generator yielding intermediate losses (for early stopping with ``surrogate``).
    Exceptions and NaN/inf losses mark the candidate failed; the run goes on.
    """

    def __init__(
        self,
        loss_fn: LossFunction,
        space: SearchSpace | Mapping[str, Any],
        *,
        generations: int | None = None,
        budget_s: float | None = None,
        max_evaluations: int | None = None,
        propagator: Propagator | Sequence[Propagator] | None = None,
        pop_size: int | None = None,
        islands: int | Sequence[int] = 1,
        topology: Any = None,
        migration_probability: float = 0.0,
        pollination: bool = False,
        ranks_per_worker: int = 1,
        checkpoint_dir: str | Path | None = None,
        seed: int = 0,
        surrogate: Surrogate | None = None,
        comm: Any = None,
        log_every: int = 0,
    ) -> None:
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        self.space = space if isinstance(space, SearchSpace) else SearchSpace(space)
        if generations is None and budget_s is None and max_evaluations is None:
            generations = 100  # no limit given: 100 candidates per worker
        if max_evaluations is not None and (
            isinstance(max_evaluations, bool) or max_evaluations < 1
        ):
            raise ValueError(f"max_evaluations must be >= 1, got {max_evaluations}")
        if generations is not None and (isinstance(generations, bool) or generations < 1):
            raise ValueError(f"generations must be >= 1, got {generations}")
        if budget_s is not None and not budget_s > 0:
            raise ValueError(f"budget_s must be > 0, got {budget_s}")
        if not 0.0 <= migration_probability <= 1.0:
            raise ValueError(
                f"migration_probability must be in [0, 1], got {migration_probability}"
            )
        if pop_size is not None and pop_size < 2:
            raise ValueError(f"pop_size must be >= 2, got {pop_size}")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if surrogate is not None and not isinstance(surrogate, Surrogate):
            raise TypeError("surrogate must be a propulate_hpo.surrogate.Surrogate")
        self.loss_fn = loss_fn
        self.generations = generations
        self.max_evaluations = max_evaluations
        self.budget_s = budget_s
        self.migration_probability = migration_probability
        self.pollination = pollination
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.seed = int(seed)
        self.surrogate = surrogate
        self.log_every = log_every
        if comm is None:
            from shared_hpc import get_comm

            comm = get_comm()
        self.layout = make_layout(comm, ranks_per_worker, islands)
        layout = self.layout
        self.topology = check_topology(topology, layout.n_islands)
        island_size = layout.sizes[layout.island]
        self.pop_size = pop_size or max(8, 2 * island_size)
        if isinstance(propagator, Sequence) and not isinstance(propagator, str):
            if len(propagator) != layout.n_islands:
                raise ValueError(f"{len(propagator)} propagators for {layout.n_islands} islands")
            propagator = propagator[layout.island]
        self.propagator = propagator or default_propagator(self.pop_size, self.space)
        if not isinstance(self.propagator, Propagator):
            raise TypeError("propagator must be a propulate_hpo.propagators.Propagator")
        self.propagator.check(self.space)
        self._pass_comm = _wants_comm(loss_fn)
        from shared_hpc import get_logger

        self.log = get_logger("propulate_hpo", comm)

    # -- set-up ------------------------------------------------------------------------------
    def _load(self) -> CheckpointState:
        """Check ``meta.json`` on rank 0, then every worker root reads the logs (collective)."""
        layout = self.layout
        if self.checkpoint_dir is None:
            return CheckpointState()
        problem = None
        if layout.world.Get_rank() == 0:
            try:
                write_meta(self.checkpoint_dir, self.space, layout.n_islands)
            except Exception as error:  # shared with all ranks, raised everywhere below
                problem = error
        problem = layout.world.bcast(problem, root=0)
        if problem is not None:
            raise problem
        if not layout.is_root:
            return CheckpointState()
        problem, state = None, CheckpointState()
        try:
            state = read_checkpoint(self.checkpoint_dir, self.space)
        except Exception as error:
            problem = error
        # also the guarantee that every root has read the logs before anyone appends to them
        problems = layout.workers.allgather(problem)
        for problem in problems:
            if problem is not None:
                raise problem
        return state

    def _responsible(self, worker: int) -> int:
        """Island-local index of the worker responsible for a row bred by ``worker``."""
        layout = self.layout
        first = layout.first_worker(layout.island)
        size = layout.sizes[layout.island]
        return worker - first if first <= worker < first + size else worker % size

    def _setup_root(self, state: CheckpointState) -> None:
        layout = self.layout
        self.population: Population = state.population(
            self.space,
            layout.island,
            layout.worker,
            self._responsible,
            layout.sizes[layout.island],
        )
        self.queue = state.in_flight(layout.worker, layout.n_workers)
        # evaluations bred on this island (for max_evaluations): finished, and peers' in flight
        self.island_done = sum(ev.island == layout.island for ev in state.finished)
        self.peers_in_flight: set[bytes] = set()
        self.island_budget = math.inf
        if self.max_evaluations is not None:  # split among the islands by their workers
            share = layout.sizes[layout.island] / layout.n_workers
            self.island_budget = max(1, round(self.max_evaluations * share))
        self.generation = state.next_generation(layout.worker)
        self.rng = np.random.default_rng([self.seed, layout.worker, self.generation])
        if self.surrogate is not None:
            for curve in state.curves():
                self.surrogate.add_curve(curve)
        self.comm = layout.workers
        self.own: list[Evaluation] = []
        self.sent_to = np.zeros(layout.n_workers, dtype=np.int64)
        self.received = 0
        self.heard = 0  # results received from the island's other workers
        self.requests: deque[tuple[Any, np.ndarray]] = deque()
        self.emigrants = self.immigrants = self.replaced = 0
        self._slow = True  # did the last evaluation take over _IN_FLIGHT_ABOVE_S?
        self.writer: WorkerLog | None = None
        self._mpi = None
        if layout.n_workers > 1:
            from mpi4py import MPI

            self._mpi = MPI
            self._status = MPI.Status()

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> Result:
        """Optimise; returns the :class:`~propulate_hpo.results.Result` on every rank."""
        layout = self.layout
        state = self._load()
        if layout.is_root:
            self._setup_root(state)
        t_begin = layout.world.bcast(time.time(), root=0)
        if not layout.is_root:
            self._follow()
            return layout.worker_comm.bcast(None, root=0)
        if self.checkpoint_dir is not None:
            self.writer = WorkerLog(self.checkpoint_dir, layout.worker)
        deadline = math.inf if self.budget_s is None else t_begin + self.budget_s
        started = time.perf_counter()
        try:
            self._loop(deadline)
        except Exception:
            if layout.world.Get_size() > 1:
                # its peers would wait for this worker until the job's time limit
                self.log.exception(
                    "worker %d failed; aborting all ranks (the checkpoint keeps every finished "
                    "evaluation)",
                    layout.worker,
                )
                if self.writer is not None:
                    self.writer.close()
                layout.world.Abort(1)
            raise
        finally:
            if layout.ranks_per_worker > 1:
                self._announce(None)
        self._final_sync()
        wall = time.perf_counter() - started
        if self.writer is not None:
            self.writer.close()
        return self._result(state, t_begin, wall)

    def _loop(self, deadline: float) -> None:
        done = 0
        while time.time() < deadline:
            self._drain()  # breed from the freshest population
            if self.queue:
                pending = self.queue.pop(0)
                key, genes, logged = pending.key, pending.genes, True
            elif (self.generations is None or self.generation < self.generations) and (
                self.island_done + len(self.peers_in_flight) < self.island_budget
            ):
                genes = self._breed()
                if genes is None:
                    self.log.warning(
                        "worker %d: search space exhausted, no new candidates", self.layout.worker
                    )
                    break
                key = (self.layout.worker, self.generation)
                self.generation += 1
                # a candidate in flight costs a log record and a message per peer: worth it
                # when evaluations take long enough for a crash or a peer's breeding to meet
                # it in flight; the result record of a quick one carries the candidate instead
                logged = self._slow and self.writer is not None
                if logged:
                    self.writer.start(key[0], key[1], self.layout.island, genes, time.time())
                if self._slow and self.layout.peers:
                    for peer in self.layout.peers:
                        self._send(peer, messages.TAG_IN_FLIGHT, genes)
            else:
                break
            self._evaluate(key, genes, logged)
            self._slow = self.own[-1].duration > _IN_FLIGHT_ABOVE_S
            self._maybe_emigrate()
            self._test_sends()
            done += 1
            # Ranks sharing cores (a laptop, an oversubscribed node) run in scheduler slices: a
            # rank far ahead of its peers breeds from little but its own results, and on cheap
            # functions the best loss suffers. Yielding lets the peers catch up; with a core
            # per rank it is one cheap system call.
            peers = len(self.layout.peers)
            if peers and done * peers > self.heard + _AHEAD * peers:
                os.sched_yield()
            if self.log_every and done % self.log_every == 0:
                best = self.population.best(1)
                self.log.info(
                    "worker %d: %d evaluations, best loss %.6g",
                    self.layout.worker,
                    done,
                    self.population.loss[best[0]] if len(best) else math.nan,
                )

    def _breed(self) -> np.ndarray | None:
        """A candidate nobody on the island has evaluated yet (upstream may breed duplicates)."""
        population = self.population
        for attempt in range(_BREED_TRIES + _RANDOM_TRIES):
            if attempt < _BREED_TRIES:
                pool = self.propagator(population.everything(), self.rng)
                genes = self.space.repair(np.array(pool.genes[0], dtype=float))
            else:
                genes = self.space.sample(self.rng)
            if not population.is_duplicate(genes):
                return genes
        return None

    # -- evaluation ---------------------------------------------------------------------------
    def _call(self, params: dict[str, Any]) -> Any:
        if self._pass_comm:
            return self.loss_fn(params, self.layout.worker_comm)
        return self.loss_fn(params)

    def _announce(self, genes: np.ndarray | None) -> None:
        """Tell the worker's helper ranks the next candidate (or to stop: ``None``)."""
        buffer = np.zeros(self.space.dim + 1)
        if genes is not None:
            buffer[0], buffer[1:] = 1.0, genes
        self.layout.worker_comm.Bcast(buffer, root=0)

    def _decide(self, flag: float) -> float:
        """Share the root's continue/stop decision for a generator step with the helpers."""
        if self.layout.ranks_per_worker == 1:
            return flag
        buffer = np.array([flag])
        self.layout.worker_comm.Bcast(buffer, root=0)
        return float(buffer[0])

    def _evaluate(self, key: tuple[int, int], genes: np.ndarray, logged: bool) -> None:
        """Evaluate, log and share one candidate (``logged``: its start record is written)."""
        layout = self.layout
        if layout.ranks_per_worker > 1:
            self._announce(genes)
        ev = Evaluation(key[0], key[1], layout.island, genes, time.time())
        try:
            value = self._call(self.space.decode(genes))
            if isinstance(value, Iterator):
                self._run_generator(value, ev)
            else:
                ev.loss, ev.metrics = _split(value)
                ev.status = OK
        except Exception as error:
            ev.status, ev.error = FAILED, f"{type(error).__name__}: {error}"[:2000]
        if ev.status != FAILED and not math.isfinite(ev.loss):
            ev.status, ev.error = FAILED, f"loss is {ev.loss}"
        if layout.ranks_per_worker > 1:
            helpers_failed = layout.worker_comm.allreduce(0)
            if helpers_failed and ev.status != FAILED:
                ev.status, ev.error = FAILED, f"{helpers_failed} helper rank(s) raised"
        if ev.status == FAILED:
            ev.loss = math.inf
        ev.duration = time.time() - ev.t_start
        ev.done = True
        if self.writer is not None:
            self.writer.done(ev, with_candidate=not logged)
        self.own.append(ev)
        self.island_done += 1
        row = ev.row(0, layout.local)
        self.population.add(row)
        curve = None
        if self.surrogate is not None and ev.curve:
            curve = np.array(ev.curve)
            self.surrogate.add_curve(curve)
        if layout.peers:
            # every result goes out at once, so that the peers breed from the freshest population
            data = messages.encode_row(row, curve)
            for peer in layout.peers:
                self._send(peer, messages.TAG_RESULT, data)

    def _run_generator(self, gen: Iterator[Any], ev: Evaluation) -> None:
        """Step a generator loss, letting the surrogate cancel it after each yield."""
        if self.surrogate is not None:
            self.surrogate.start()
        ev.status = OK
        step = 0
        while True:
            try:
                item = next(gen)
                value, extra = _split(item)
            except StopIteration as stop:
                self._decide(_STOP)
                if isinstance(stop.value, Mapping):
                    ev.metrics.update(_split({"loss": 0.0, **stop.value})[1])
                break
            except BaseException:
                self._decide(_STOP)
                raise
            ev.metrics.update(extra)
            ev.curve.append(value)
            ev.loss = value
            if not math.isfinite(value):
                self._decide(_STOP)
                gen.close()
                ev.status, ev.error = FAILED, f"intermediate loss {value} at step {step}"
                return
            cancel = self.surrogate is not None and self.surrogate.cancel(step, value)
            if self._decide(_STOP if cancel else _GO) == _STOP:
                gen.close()
                ev.status = CANCELLED
                return
            self._drain()
            step += 1
        if not ev.curve:
            raise ValueError("the loss generator yielded no loss")

    def _follow(self) -> None:
        """Helper ranks of a multi-rank worker: evaluate whatever the root announces."""
        comm = self.layout.worker_comm
        buffer = np.zeros(self.space.dim + 1)
        while True:
            comm.Bcast(buffer, root=0)
            if buffer[0] == 0.0:
                return
            failed = 0
            try:
                value = self._call(self.space.decode(buffer[1:].copy()))
            except Exception:
                value, failed = None, 1
            if isinstance(value, Iterator):
                alive = True
                while True:
                    if alive:
                        try:
                            next(value)
                        except StopIteration:
                            alive = False
                        except Exception:
                            alive, failed = False, 1
                    if self._decide(0.0) == _STOP:
                        break
                if alive:
                    value.close()
            comm.allreduce(failed)

    # -- messages -----------------------------------------------------------------------------
    def _send(self, worker: int, tag: int, data: np.ndarray) -> None:
        request = self.comm.Isend([data, self._mpi.DOUBLE], dest=worker, tag=tag)
        self.requests.append((request, data))  # the buffer must live until the send completes
        self.sent_to[worker] += 1

    def _test_sends(self) -> None:
        """Forget completed sends, oldest first (they complete roughly in order)."""
        requests = self.requests
        while requests and requests[0][0].Test():
            requests.popleft()

    def _drain(self, block_until: int | None = None) -> None:
        """Receive every message that has arrived (or, blocking, until ``block_until``).

        One unsuccessful probe does not mean that nothing is there: some MPI libraries (MPICH
        with UCX, for one) advance one message per progress call, so a single miss left
        messages waiting for ~100 ms. Only a few misses in a row end the drain.
        """
        if self._mpi is None:
            return
        comm, status, mpi = self.comm, self._status, self._mpi
        waiting_since = time.monotonic()
        misses = 0
        while True:
            message = comm.Improbe(source=mpi.ANY_SOURCE, tag=mpi.ANY_TAG, status=status)
            if message is None:
                misses += 1
                if misses < _PROBE_MISSES:
                    continue
                if block_until is None or self.received >= block_until:
                    return
                _idle(waiting_since)
                continue
            misses = 0
            data = np.empty(status.Get_count(mpi.DOUBLE))
            message.Recv([data, mpi.DOUBLE])  # the probed message itself: no second matching
            self.received += 1
            self._handle(status.Get_tag(), data)

    def _handle(self, tag: int, data: np.ndarray) -> None:
        population = self.population
        if tag == messages.TAG_RESULT:
            row, curve = messages.decode_row(data, self.space.dim)
            self.heard += 1
            self.island_done += 1
            if self.peers_in_flight:
                self.peers_in_flight.discard(row.genes.tobytes())
            if row.key not in population.rows_by_key:
                population.add(row)
                if self.surrogate is not None and len(curve):
                    self.surrogate.add_curve(curve)
        elif tag == messages.TAG_IN_FLIGHT:
            population.seen.add(data.tobytes())
            self.peers_in_flight.add(data.tobytes())
        elif tag == messages.TAG_DEACTIVATE:
            for worker, generation, version in messages.decode_keys(data):
                population.deactivate((worker, generation), version)
        elif tag == messages.TAG_MIGRANTS:
            self._immigrate(messages.decode_rows(data, self.space.dim))

    # -- islands ------------------------------------------------------------------------------
    def _maybe_emigrate(self) -> None:
        layout = self.layout
        if layout.n_islands == 1 or self.migration_probability == 0.0:
            return
        if self.rng.random() >= self.migration_probability / layout.sizes[layout.island]:
            return
        if self.pollination:
            self._pollinate()
        else:
            self._migrate()

    def _departing(self, rows: np.ndarray, target: int) -> list[Row]:
        out = []
        for i in rows:
            row = self.population.row(int(i))
            row.version += 1
            row.current = int(self.rng.integers(self.layout.sizes[target]))
            out.append(row)
        return out

    def _migrate(self) -> None:
        """Real migration: the best individuals this worker is responsible for leave."""
        layout, population = self.layout, self.population
        counts = self.topology[layout.island]
        active = population.active_rows()
        eligible = active[population.current[active] == layout.local]
        total = int(counts.sum())
        if total == 0 or len(eligible) < total:
            return
        chosen = eligible[np.argsort(population.loss[eligible], kind="stable")[:total]]
        self.rng.shuffle(chosen)
        deactivate = []
        offset = 0
        for target, count in enumerate(counts):
            if count == 0:
                continue
            rows = chosen[offset : offset + count]
            offset += count
            departing = self._departing(rows, target)
            data = messages.encode_rows(departing)
            for worker in layout.island_workers(target):
                self._send(worker, messages.TAG_MIGRANTS, data)
            for i, row in zip(rows, departing, strict=True):
                key, version = row.key, int(population.version[i])
                population.deactivate(key, version)
                deactivate.append((key[0], key[1], version))
                if self.writer is not None:
                    self.writer.event(
                        "mig", key, version, to=target, cur=row.current, **{"from": layout.island}
                    )
            self.emigrants += len(rows)
        if layout.peers and deactivate:
            data = messages.encode_keys(deactivate)
            for peer in layout.peers:
                self._send(peer, messages.TAG_DEACTIVATE, data)

    def _pollinate(self) -> None:
        """Pollination: copies of the island's best go out; nothing is deactivated here."""
        layout, population = self.layout, self.population
        for target, count in enumerate(self.topology[layout.island]):
            if count == 0 or population.n_active < count:
                continue
            rows = population.best(int(count))
            departing = self._departing(rows, target)
            data = messages.encode_rows(departing)
            for worker in layout.island_workers(target):
                self._send(worker, messages.TAG_MIGRANTS, data)
            if self.writer is not None:
                for row in departing:
                    self.writer.event(
                        "pol",
                        row.key,
                        row.version - 1,
                        to=target,
                        cur=row.current,
                        **{"from": layout.island},
                    )
            self.emigrants += len(rows)

    def _immigrate(self, rows: list[Row]) -> None:
        layout, population = self.layout, self.population
        mine = 0
        new_keys = set()
        for row in rows:
            if population.immigrate(row):
                new_keys.add(row.key)
                if row.current == layout.local:  # counted once per island, by its worker
                    self.immigrants += 1
                    mine += self.pollination
        if not mine:
            return
        # pollination: the responsible worker replaces as many of its worst individuals
        active = population.active_rows()
        eligible = [
            i
            for i in active
            if population.current[i] == layout.local
            and (int(population.worker[i]), int(population.generation[i])) not in new_keys
        ]
        if not eligible:
            return
        victims = population.worst(mine, np.array(eligible))
        keys = []
        for i in victims:
            key = (int(population.worker[i]), int(population.generation[i]))
            version = int(population.version[i])
            population.deactivate(key, version)
            keys.append((key[0], key[1], version))
            if self.writer is not None:
                self.writer.event("deact", key, version, i=layout.island)
        self.replaced += len(keys)
        if layout.peers:
            data = messages.encode_keys(keys)
            for peer in layout.peers:
                self._send(peer, messages.TAG_DEACTIVATE, data)

    # -- the end ------------------------------------------------------------------------------
    def _final_sync(self) -> None:
        """Receive every message sent to this worker, then complete every send."""
        if self._mpi is None:
            return
        mpi, comm = self._mpi, self.comm
        while True:
            sent = self.sent_to.copy()
            incoming = np.zeros_like(sent)
            request = comm.Ialltoall([sent, mpi.INT64_T], [incoming, mpi.INT64_T])
            waiting_since = time.monotonic()
            while not request.Test():
                self._drain()
                self._test_sends()
                _idle(waiting_since)  # leave the CPU to workers still evaluating
            self._drain(block_until=int(incoming.sum()))
            # replacements triggered by late immigrants send more messages: count again (one
            # island has no immigrants, and its workers need not agree on that)
            if self.layout.n_islands == 1:
                break
            if comm.allreduce(int(self.sent_to.sum() != sent.sum())) == 0:
                break
        mpi.Request.Waitall([r for r, _ in self.requests])
        self.requests.clear()

    def _result(self, state: CheckpointState, t_begin: float, wall: float) -> Result:
        layout, population = self.layout, self.population
        members = None
        if layout.local == 0:
            n = population.n
            members = (
                layout.island,
                population.worker[:n].copy(),
                population.generation[:n].copy(),
                population.active[:n].copy(),
                population.version[:n].copy(),
            )
        dim = self.space.dim
        payload = {
            "table": Table.from_evaluations(self.own, dim),
            "members": members,
            "stats": (layout.island, self.emigrants, self.immigrants, self.replaced),
            "wall": wall,
        }
        # one collective: every worker root assembles the result itself (a gather to rank 0
        # and a broadcast back cost two rounds of waiting for ranks that share cores)
        gathered = self.comm.allgather(payload) if layout.n_workers > 1 else [payload]
        earlier = Table.from_evaluations(state.finished, dim)
        result = Result(
            space=self.space,
            table=Table.concat([earlier] + [p["table"] for p in gathered], dim),
            members=[p["members"] for p in gathered if p["members"] is not None],
            stats=[p["stats"] for p in gathered],
            wall_time_s=max(p["wall"] for p in gathered),
            t_begin=t_begin,
            n_workers=layout.n_workers,
            n_islands=layout.n_islands,
            ranks_per_worker=layout.ranks_per_worker,
        )
        if layout.ranks_per_worker > 1:
            layout.worker_comm.bcast(result, root=0)  # the worker's helper ranks
        return result


def propulate(
    loss_fn: LossFunction, space: SearchSpace | Mapping[str, Any], **options: Any
) -> Result:
    """Build a :class:`Propulator` with ``options`` and run it (call on every rank)."""
    return Propulator(loss_fn, space, **options).run()
