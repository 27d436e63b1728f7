"""What a checkpoint directory holds, read while its run goes on or after it ended.

``propulate-hpo summarize CHECKPOINT`` prints this; in Python, ``summarize_checkpoint`` gives
the finished candidates as a ``Result`` (best candidates, history, plots) and what is still in
flight.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from propulate_hpo.checkpoint import read_checkpoint, read_meta
from propulate_hpo.objectives import Objectives
from propulate_hpo.results import Result, Table
from propulate_hpo.space import SearchSpace


@dataclass(frozen=True)
class CheckpointSummary:
    """The content of a checkpoint directory.

    Attributes:
        directory: The checkpoint directory.
        result: Its finished candidates (without island membership: that is known at the end
            of a run only).
        in_flight: Candidates started and not finished (running now, or lost in a crash and
            evaluated again on resume).
        migration_events: Migrations, pollinations and replacements logged.
    """

    directory: Path
    result: Result
    in_flight: int
    migration_events: int

    def summary(self, top: int = 5) -> str:
        """A few lines: what the checkpoint holds and its ``top`` best candidates (with
        objectives: its Pareto front, ``top`` points of it).

        Args:
            top: How many of the best candidates (or front points) to list.
        """
        result = self.result
        counts = result.counts()
        lines = [
            f"{self.directory}: {result.n_evaluations} finished candidates, {self.in_flight} "
            f"in flight, {self.migration_events} migration events, {result.n_islands} island(s)",
            f"  {counts['ok']} ok, {counts['failed']} failed, {counts['cancelled']} cancelled",
        ]
        if result.objectives is not None:
            return "\n".join(lines + result.front_lines(top))
        for i, best in enumerate(result.best(top), start=1):
            lines.append(f"  #{i} loss {best['loss']:.6g}  {json.dumps(best['params'])}")
        return "\n".join(lines)


def summarize_checkpoint(directory: str | Path) -> CheckpointSummary:
    """Read the checkpoint ``directory`` (of a running or a finished run).

    Args:
        directory: The checkpoint directory.

    Returns:
        Its finished candidates and counts.

    Raises:
        CheckpointError: ``directory`` is not a propulate-hpo checkpoint, or a log is corrupt.
    """
    directory = Path(directory)
    meta = read_meta(directory)
    space = SearchSpace(meta["space"])
    state = read_checkpoint(directory, space)
    finished = state.finished
    result = Result(
        space=space,
        table=Table.from_evaluations(finished, space.dim),
        n_islands=int(meta["islands"]),
        n_workers=len({e.worker for e in finished}),
        objectives=Objectives(meta["objectives"]) if meta.get("objectives") else None,
    )
    return CheckpointSummary(
        directory=directory,
        result=result,
        in_flight=sum(not ev.done for ev in state.evaluations.values()),
        migration_events=len(state.events),
    )
