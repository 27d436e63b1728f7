"""The asynchronous propagation loop: breed, evaluate, tell the island, drain — never wait.

Every worker loops on its own (Propulate, arXiv:2301.08713): it breeds one candidate from the
whole population it currently knows, evaluates it, sends the result to the other workers of its
island, and takes in whatever has arrived meanwhile. There is no barrier per generation; a slow
evaluation delays nobody else. The messages travel through ``transport``, the exchange between
islands is ``islands``, the checkpoint ``checkpoint`` and the final result ``assembly``; this
module is the loop that drives them, and the evaluation of one candidate (also on the helper
ranks of a worker of several ranks).
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from propulate_hpo import messages
from propulate_hpo.assembly import assemble_result, receive_result
from propulate_hpo.checkpoint import CheckpointState, Evaluation, WorkerLog, load_state
from propulate_hpo.functions import Benchmark
from propulate_hpo.islands import Islands
from propulate_hpo.layout import check_topology, fully_connected, make_layout
from propulate_hpo.objectives import Objectives
from propulate_hpo.options import SearchOptions, search_options
from propulate_hpo.population import CANCELLED, FAILED, OK, Population
from propulate_hpo.propagators import Propagator
from propulate_hpo.propagators.named import make_propagator
from propulate_hpo.results import Result
from propulate_hpo.space import SearchSpace
from propulate_hpo.surrogate import BestAtStep, Surrogate
from propulate_hpo.transport import NoTransport, Transport
from shared_hpc.errors import UserError
from shared_hpc.files import lock_folder
from shared_hpc.hardware import require_memory
from shared_hpc.mpi import Comm

_GO, _STOP = 1.0, 0.0
_BREED_TRIES = 64  # breeds before falling back to random candidates to avoid a duplicate
_RANDOM_TRIES = 1000
_IN_FLIGHT_ABOVE_S = 1e-3  # after an evaluation this long, the next one is logged and announced
_AHEAD = 2  # evaluations a worker may run ahead of its peers' average before yielding its core
# memory of a run, measured with sphere in 20000 and 100000 dimensions: ~400 B per parameter of
# the search space, ~42 B per gene of every evaluation (population, messages, result, history)
_BYTES_PER_PARAMETER = 512
_BYTES_PER_GENE = 64
_FIRST_ROWS = 256  # evaluations assumed for a run limited by its wall-clock budget alone

LossFunction = Callable[..., Any]


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


def loss_name(loss_fn: LossFunction) -> dict[str, Any]:
    """What identifies a Python loss function in a checkpoint: a benchmark's name, else the
    function's ``module:qualified.name``, so that a resume with another function is noticed.

    Args:
        loss_fn: The loss function.
    """
    while isinstance(loss_fn, functools.partial):
        loss_fn = loss_fn.func
    owner = getattr(loss_fn, "__self__", None)
    if isinstance(owner, Benchmark):
        return {"name": owner.name}
    module = getattr(loss_fn, "__module__", None) or type(loss_fn).__module__
    qualname = getattr(loss_fn, "__qualname__", None) or type(loss_fn).__qualname__
    return {"name": f"{module}:{qualname}"}


def require_run_memory(dim: int, options: SearchOptions, n_workers: int) -> None:
    """Refuse a search that cannot fit in this process's memory, before anything is allocated.

    Each rank ends with the whole result, so the estimate counts the search space and the
    genes of every evaluation the options allow (a guess for a budget in seconds alone).

    Args:
        dim: Parameters of the search space.
        options: The search's settings.
        n_workers: Workers of the run.

    Raises:
        UserError: The estimate exceeds the memory available here.
    """
    if options.max_evaluations is not None:
        evaluations = options.max_evaluations
    elif options.generations is not None:
        evaluations = options.generations * n_workers
    else:
        evaluations = _FIRST_ROWS
    require_memory(
        dim * (_BYTES_PER_PARAMETER + _BYTES_PER_GENE * evaluations),
        f"a search of {evaluations} evaluations in {dim} dimensions",
    )


class Propulator:
    """Asynchronous evolutionary optimisation of ``loss_fn`` over ``space`` on all ranks.

    Construct and ``run`` it on every rank (``mpiexec -n N python script.py``); a plain
    ``python`` process runs it with one worker. The settings are a ``SearchOptions`` (or its
    fields as keyword arguments: ``Propulator(loss, space, generations=100, islands=2)``);
    limits: ``generations`` candidates per worker; ``max_evaluations`` candidates of all
    workers together (fast workers do more; split among islands by their size; exceeded by at
    most the candidates started at the same moment on different workers or, for evaluations
    under a millisecond, those whose results are still on their way); ``budget_s`` seconds of
    wall-clock time. Without any, 100 per worker.

    The loss function takes the parameter dict (and, if it accepts a second argument, the
    worker's communicator) and returns a float, a dict with ``"loss"`` and extra metrics, or is
    a generator yielding intermediate losses (for early stopping with ``surrogate``). With
    ``objectives`` (a multi-objective search) it returns a dict holding every objective's
    name, or a tuple of them in order; ``time_s`` and ``energy_j`` are measured when it does not
    give them (a generator's last yield and its return value together give the objectives). A
    dict without an objective, or a tuple of the wrong length, marks the candidate failed, with
    the reason.
    Exceptions and NaN/inf losses mark the candidate failed; the run goes on. ``SystemExit``
    and ``KeyboardInterrupt`` end the run: they leave ``run`` without waiting for other ranks
    (``shared_hpc.run_main`` or, in a script, the hook of ``get_comm`` then ends the MPI job).

    Args:
        loss_fn: The function to minimise.
        space: The search space, or a mapping of parameter names to their specs.
        options: How the search runs (default: ``SearchOptions()``).
        propagator: A propagator (or one per island) instead of ``options.propagator``; a
            string is taken as the name of ``options.propagator``.
        surrogate: Early stopping of generator losses (default: ``BestAtStep`` with the margin
            ``options.early_stopping`` if that is set, else none).
        topology: Migrants sent from island i to island j per event, a square matrix (default:
            ``options.migrants`` between every pair of islands).
        comm: The ranks of the run (default: ``shared_hpc.get_comm()``).
        loss_fingerprint: What identifies the loss function in the checkpoint, compared on
            resume (default: ``loss_name(loss_fn)``; the command line gives a loss file's
            ``shared_hpc.file_fingerprint``).
        **settings: Fields of ``SearchOptions`` that replace those of ``options``;
            ``checkpoint_dir`` stands for ``checkpoint``, a list of sizes as ``islands`` for
            ``island_sizes``.

    Attributes:
        options: The settings in force.
        space: The search space.
        layout: This rank's worker and island.
        topology: The migration topology.
        pop_size: The breeding pool size of this rank's island.
        propagator: This rank's propagator.
        surrogate: The early-stopping surrogate, ``None`` without one.
        objectives: The objectives of a multi-objective search, ``None`` for one loss.
        population: What this worker knows of its island (after ``run``, on worker roots).

    Raises:
        UserError: A setting, search space, propagator or topology that cannot work, or a run
            too large for the memory left, before any rank starts work.
        TypeError: ``loss_fn`` is not callable, or an argument of the wrong kind.
    """

    def __init__(
        self,
        loss_fn: LossFunction,
        space: SearchSpace | Mapping[str, Any],
        options: SearchOptions | None = None,
        *,
        propagator: Propagator | Sequence[Propagator] | str | None = None,
        surrogate: Surrogate | None = None,
        topology: Any = None,
        comm: Comm | None = None,
        loss_fingerprint: Mapping[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        self.space = space if isinstance(space, SearchSpace) else SearchSpace(space)
        if isinstance(propagator, str):
            settings["propagator"], propagator = propagator, None
        self.options = options = search_options(options, **settings)
        if surrogate is not None and not isinstance(surrogate, Surrogate):
            raise TypeError("surrogate must be a propulate_hpo.surrogate.Surrogate")
        self.objectives = None if options.objectives is None else Objectives(options.objectives)
        clash = set(self.objectives.names if self.objectives else ()) & set(self.space.names)
        if clash:
            raise UserError(f"objective(s) named like parameters: {', '.join(sorted(clash))}")
        if surrogate is not None and self.objectives is not None:
            raise UserError("early stopping compares one loss; not with several objectives")
        if surrogate is not None and options.early_stopping is not None:
            raise UserError("give either a surrogate or an early_stopping margin, not both")
        if surrogate is None and options.early_stopping is not None:
            surrogate = BestAtStep(options.early_stopping)
        self.surrogate = surrogate
        self.loss_fn = loss_fn
        self.loss_fingerprint = dict(loss_fingerprint or loss_name(loss_fn))
        if comm is None:
            from shared_hpc.mpi import get_comm

            comm = get_comm()
        islands = options.islands if options.island_sizes is None else options.island_sizes
        self.layout = layout = make_layout(comm, options.ranks_per_worker, islands)
        if topology is None:
            topology = fully_connected(layout.n_islands, options.migrants)
        self.topology = check_topology(topology, layout.n_islands)
        require_run_memory(self.space.dim, options, layout.n_workers)
        island_workers = layout.sizes[layout.island]
        self.pop_size = max(8, 2 * island_workers) if options.pop_size is None else options.pop_size
        if isinstance(propagator, Sequence):
            if len(propagator) != layout.n_islands:
                raise UserError(f"{len(propagator)} propagators for {layout.n_islands} islands")
            propagator = propagator[layout.island]
        if propagator is None:
            propagator = make_propagator(options.breeding, self.space, self.pop_size)
        elif isinstance(propagator, Propagator):
            propagator.check(self.space)
        else:
            raise TypeError("propagator must be a propulate_hpo.propagators.Propagator")
        propagator.check_objectives(self.objectives)
        self._n_objectives = 0 if self.objectives is None else len(self.objectives)
        self.propagator = propagator
        self._pass_comm = _wants_comm(loss_fn)
        from shared_hpc.mpi import get_logger

        self.log = get_logger("propulate_hpo", comm)
        silent = layout.n_islands > 1 and options.migration_probability == 0.0
        if silent and layout.world.Get_rank() == 0:
            self.log.warning(
                "%d islands with migration probability 0 never exchange candidates (set "
                "migration_probability, --migration-probability on the command line)",
                layout.n_islands,
            )

    # -- set-up ------------------------------------------------------------------------------
    def _responsible(self, worker: int) -> int:
        """Island-local index of the worker responsible for a row bred by ``worker``."""
        layout = self.layout
        first = layout.first_worker(layout.island)
        size = layout.sizes[layout.island]
        return worker - first if first <= worker < first + size else worker % size

    def _setup_root(self, state: CheckpointState) -> None:
        layout, options = self.layout, self.options
        self.population: Population = state.population(
            self.space,
            layout.island,
            layout.worker,
            self._responsible,
            layout.sizes[layout.island],
            self._n_objectives,
        )
        self.queue = state.in_flight(layout.worker, layout.n_workers)
        # evaluations bred on this island (for max_evaluations): finished, and peers' in flight
        self.island_done = sum(ev.island == layout.island for ev in state.finished)
        self.peers_in_flight: set[bytes] = set()
        self.island_budget = math.inf
        if options.max_evaluations is not None:  # split among the islands by their workers
            share = layout.sizes[layout.island] / layout.n_workers
            self.island_budget = max(1, round(options.max_evaluations * share))
        self.generation = state.next_generation(layout.worker)
        self.rng = np.random.default_rng([int(options.seed), layout.worker, self.generation])
        if self.surrogate is not None:
            for curve in state.curves():
                self.surrogate.add_curve(curve)
        self.own: list[Evaluation] = []
        self.heard = 0  # results received from the island's other workers
        self._slow = True  # did the last evaluation take over _IN_FLIGHT_ABOVE_S?
        self.writer: WorkerLog | None = None
        if layout.n_workers > 1:
            assert layout.workers is not None
            self.transport: Transport | NoTransport = Transport(layout.workers, self._handle)
        else:
            self.transport = NoTransport()
        self._send = self.transport.send

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> Result:
        """Optimise (collective: call on every rank).

        Returns:
            Every evaluation of the run (and of the runs it resumed), on every rank.

        Raises:
            CheckpointError: The checkpoint is of another search space, number of islands or
                loss function (unless ``force_resume``), or corrupt.
            UserError: Another run uses the checkpoint directory.
        """
        if self.options.checkpoint is None:
            return self._search()
        # a second run appending to the same logs would lose results without a word
        with lock_folder(self.options.checkpoint, self.layout.world):
            return self._search()

    def _search(self) -> Result:
        layout, options = self.layout, self.options
        state = load_state(
            options.checkpoint,
            self.space,
            layout,
            self.loss_fingerprint,
            objectives=None if self.objectives is None else self.objectives.to_list(),
            force=options.force_resume,
        )
        if layout.is_root:
            self._setup_root(state)
            self._energy_share = 0  # workers sharing this node's energy, if it is an objective
            if self.objectives is not None and "energy_j" in self.objectives.measured:
                from shared_hpc.mpi import split_by_node

                assert layout.workers is not None
                self._energy_share = split_by_node(layout.workers).Get_size()
        t_begin = layout.world.bcast(time.time(), root=0)
        if not layout.is_root:
            self._follow()
            return receive_result(layout)
        if options.checkpoint is not None:
            self.writer = WorkerLog(options.checkpoint, layout.worker)
        self.islands = Islands(
            layout,
            self.population,
            self.topology,
            options.migration_probability,
            options.pollination,
            self.rng,
            self._send,
            self.writer,
        )
        deadline = math.inf if options.budget_s is None else t_begin + options.budget_s
        started = time.perf_counter()
        # A failure (a bug, a full disk, SystemExit or Ctrl-C in the loss) leaves at once:
        # nothing on the way out waits for other ranks, so it reaches run_main (or the
        # excepthook of get_comm), which ends the whole job instead of leaving it hanging.
        try:
            self._loop(deadline)
            if layout.ranks_per_worker > 1:
                self._announce(None)
            self.transport.final_sync(replies_possible=layout.n_islands > 1)
        finally:
            if self.writer is not None:
                self.writer.close()  # every finished evaluation is on disk
        wall = time.perf_counter() - started
        return assemble_result(
            layout,
            self.space,
            population=self.population,
            own=self.own,
            earlier=state.finished,
            stats=self.islands.stats(),
            t_begin=t_begin,
            wall_s=wall,
            objectives=self.objectives,
        )

    def _loop(self, deadline: float) -> None:
        # the hot loop: everything it calls per evaluation is bound to a local once
        layout, writer, queue = self.layout, self.writer, self.queue
        drain, test_sends, send = self.transport.drain, self.transport.test_sends, self._send
        emigrate = self.islands.maybe_emigrate if self.islands.exchange else None
        generations, log_every = self.options.generations, self.options.log_every
        peers = layout.peers
        n_peers = len(peers)
        in_flight_above_s = _IN_FLIGHT_ABOVE_S
        done = 0
        while time.time() < deadline:
            drain()  # breed from the freshest population
            if queue:
                pending = queue.pop(0)
                key, genes, logged = pending.key, pending.genes, True
            elif (generations is None or self.generation < generations) and (
                self.island_done + len(self.peers_in_flight) < self.island_budget
            ):
                genes = self._breed()
                if genes is None:
                    self.log.warning(
                        "worker %d: search space exhausted, no new candidates", layout.worker
                    )
                    break
                key = (layout.worker, self.generation)
                self.generation += 1
                # a candidate in flight costs a log record and a message per peer: worth it
                # when evaluations take long enough for a crash or a peer's breeding to meet
                # it in flight; the result record of a quick one carries the candidate instead
                logged = self._slow and writer is not None
                if logged:
                    writer.start(key[0], key[1], layout.island, genes, time.time())
                if self._slow and n_peers:
                    for peer in peers:
                        send(peer, messages.TAG_IN_FLIGHT, genes)
            else:
                break
            self._slow = self._evaluate(key, genes, logged) > in_flight_above_s
            if emigrate is not None:
                emigrate()
            test_sends()
            done += 1
            # Ranks sharing cores (a laptop, an oversubscribed node) run in scheduler slices: a
            # rank far ahead of its peers breeds from little but its own results, and on cheap
            # functions the best loss suffers. Yielding lets the peers catch up; with a core
            # per rank it is one cheap system call.
            if n_peers and done * n_peers > self.heard + _AHEAD * n_peers:
                os.sched_yield()
            if log_every and done % log_every == 0:
                best = self.population.best(1)
                self.log.info(
                    "worker %d: %d evaluations, best loss %.6g",
                    layout.worker,
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

    def _handle(self, tag: int, data: np.ndarray) -> None:
        """Take in one message from another worker."""
        population = self.population
        if tag == messages.TAG_RESULT:
            row, curve = messages.decode_row(data, self.space.dim, self._n_objectives)
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
            self.islands.immigrate(messages.decode_rows(data, self.space.dim, self._n_objectives))

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

    def _evaluate(self, key: tuple[int, int], genes: np.ndarray, logged: bool) -> float:
        """Evaluate, log and share one candidate (``logged``: its start record is written).

        Returns:
            How long the evaluation took, in seconds.
        """
        layout = self.layout
        if layout.ranks_per_worker > 1:
            self._announce(genes)
        ev = Evaluation(key[0], key[1], layout.island, genes, time.time())
        meter = self._start_meter()
        try:
            value = self._call(self.space.decode(genes))
            if isinstance(value, Iterator):
                self._run_generator(value, ev)
                value = {"loss": ev.loss, **ev.metrics}
            elif self.objectives is None:
                ev.loss, ev.metrics = _split(value)
                ev.status = OK
            else:
                ev.status = OK
            if self.objectives is not None and ev.status == OK:
                self._score(ev, value, meter)
                meter = None
        except Exception as error:
            ev.status, ev.error = FAILED, f"{type(error).__name__}: {error}"[:2000]
        finally:
            if meter is not None:
                meter.abandon()
        if ev.status != FAILED and not math.isfinite(ev.loss):
            ev.status, ev.error = FAILED, f"loss is {ev.loss}"
        if layout.ranks_per_worker > 1:
            helpers_failed = layout.worker_comm.allreduce(0)
            if helpers_failed and ev.status != FAILED:
                ev.status, ev.error = FAILED, f"{helpers_failed} helper rank(s) raised"
        if ev.status == FAILED:
            ev.loss, ev.objectives = math.inf, None
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
        return ev.duration

    def _start_meter(self) -> Any:
        """An ``EnergyMeter`` of this rank's node if energy is a measured objective, else
        ``None``."""
        if not self._energy_share:
            return None
        from shared_hpc import EnergyMeter
        from shared_hpc.mpi import SerialComm

        meter = EnergyMeter(SerialComm(), node_comm=SerialComm())
        meter.start()
        return meter

    def _score(self, ev: Evaluation, value: Any, meter: Any) -> None:
        """Set the objectives of a finished evaluation from what the loss function gave.

        ``energy_j``, when the loss does not give it, is the energy of the worker's node during
        the evaluation divided among the workers on that node (a share, not a measurement of
        this candidate alone); ``energy_measured`` says whether it came from hardware counters.
        """
        assert self.objectives is not None
        measured = {"time_s": time.time() - ev.t_start}
        if meter is not None:
            report = meter.stop()
            measured["energy_j"] = report.total_joules / self._energy_share
            ev.metrics["energy_measured"] = float(report.measured)
        values = self.objectives.values(value, measured)
        if isinstance(value, Mapping):  # every number it returned is kept, as for one loss
            ev.metrics.update({str(k): float(v) for k, v in value.items()})
        ev.metrics.update(values)
        ev.objectives = self.objectives.minimised(values)
        ev.loss = float(ev.objectives[0])

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
            except Exception:  # the candidate failed; SystemExit and Ctrl-C end the run
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
            self.transport.drain()
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


def propulate(
    loss_fn: LossFunction,
    space: SearchSpace | Mapping[str, Any],
    options: SearchOptions | None = None,
    **settings: Any,
) -> Result:
    """Build a ``Propulator`` and run it (call on every rank).

    Args:
        loss_fn: The function to minimise.
        space: The search space, or a mapping of parameter names to their specs.
        options: How the search runs (default: ``SearchOptions()``).
        **settings: Fields of ``SearchOptions`` and the keyword arguments of ``Propulator``
            (``propagator``, ``surrogate``, ``topology``, ``comm``, ``loss_fingerprint``).

    Returns:
        Every evaluation of the run, on every rank.
    """
    return Propulator(loss_fn, space, options, **settings).run()
