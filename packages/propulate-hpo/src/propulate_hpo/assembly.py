"""The end of a run: every worker's evaluations and island state assembled into one ``Result``.

Each worker root contributes its own evaluations, its island's membership (from the island's
first worker) and its migration counts; one ``allgather`` gives every root all of them, and
each assembles the result itself (a gather to rank 0 and a broadcast back would cost two rounds
of waiting for ranks that share cores). The helper ranks of a worker get it from their root.
"""

from __future__ import annotations

from collections.abc import Sequence

from propulate_hpo.checkpoint import Evaluation
from propulate_hpo.layout import Layout
from propulate_hpo.objectives import Objectives
from propulate_hpo.population import Population
from propulate_hpo.results import Result, Table
from propulate_hpo.space import SearchSpace


def assemble_result(
    layout: Layout,
    space: SearchSpace,
    *,
    population: Population,
    own: Sequence[Evaluation],
    earlier: Sequence[Evaluation],
    stats: tuple[int, int, int, int],
    t_begin: float,
    wall_s: float,
    objectives: Objectives | None = None,
) -> Result:
    """The result of the run, on every rank of this worker (collective over the roots).

    Args:
        layout: This worker's place in the run.
        space: The search space.
        population: What this worker knows of its island at the end.
        own: The evaluations this worker made in this run.
        earlier: The finished evaluations of resumed earlier runs.
        stats: ``(island, emigrants, immigrants, replaced)`` of this worker.
        t_begin: When the run began (``time.time()`` of rank 0).
        wall_s: How long this worker searched.
        objectives: The objectives of a multi-objective search.

    Returns:
        The result, the same on every rank.
    """
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
    payload = {
        "table": Table.from_evaluations(own, space.dim),
        "members": members,
        "stats": stats,
        "wall": wall_s,
    }
    assert layout.workers is not None, "only a worker's root assembles the result"
    gathered = layout.workers.allgather(payload) if layout.n_workers > 1 else [payload]
    result = Result(
        space=space,
        table=Table.concat(
            [Table.from_evaluations(earlier, space.dim)] + [p["table"] for p in gathered],
            space.dim,
        ),
        members=[p["members"] for p in gathered if p["members"] is not None],
        stats=[p["stats"] for p in gathered],
        wall_time_s=max(p["wall"] for p in gathered),
        t_begin=t_begin,
        n_workers=layout.n_workers,
        n_islands=layout.n_islands,
        ranks_per_worker=layout.ranks_per_worker,
        objectives=objectives,
    )
    if layout.ranks_per_worker > 1:
        layout.worker_comm.bcast(result, root=0)  # the worker's helper ranks
    return result


def receive_result(layout: Layout) -> Result:
    """On a helper rank of a worker: the result its root assembled (collective).

    Args:
        layout: This rank's place in the run.

    Returns:
        The result of the run.
    """
    return layout.worker_comm.bcast(None, root=0)
