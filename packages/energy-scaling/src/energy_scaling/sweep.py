"""A sweep's points: the grid of rank counts and batch sizes, expanded and checked up front.

Every point is validated before the first one runs, so that a typo in the fifth batch size does
not surface hours into a sweep: a global batch that ``ranks × local_batch`` does not divide is
one line naming the point, and exit code 2.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from energy_scaling.config import SweepConfig
from shared_hpc import UserError

__all__ = ["Point", "expand", "find_point"]


@dataclass(frozen=True)
class Point:
    """One configuration of a sweep.

    Attributes:
        ranks: Data-parallel ranks (devices).
        global_batch: Samples per optimizer update over all ranks.
        local_batch: Samples per forward pass on one rank.
        lr: Peak learning rate, scaled from the base by the sweep's rule.
    """

    ranks: int
    global_batch: int
    local_batch: int
    lr: float

    @property
    def accumulation(self) -> int:
        """Forward/backward passes per rank per optimizer update."""
        return self.global_batch // (self.ranks * self.local_batch)

    @property
    def id(self) -> str:
        """Name of the point's folder and job, e.g. ``r2-g128-l32``."""
        return f"r{self.ranks}-g{self.global_batch}-l{self.local_batch}"


def expand(sweep: SweepConfig) -> list[Point]:
    """Every point of the sweep, in the order they run (fewest ranks, smallest batch first).

    Raises:
        UserError: A global batch is not divisible by ``ranks × local_batch`` (or by
            ``ranks`` when ``local_batch`` is empty), naming the first such point.
    """
    points = []
    for ranks, global_batch in itertools.product(sorted(sweep.ranks), sorted(sweep.global_batch)):
        locals_ = sorted(sweep.local_batch) or [global_batch // ranks]
        for local in locals_:
            if local < 1 or global_batch % (ranks * local):
                raise UserError(
                    f"global batch {global_batch} is not divisible by ranks x local batch = "
                    f"{ranks} x {max(local, 1)} = {ranks * max(local, 1)}; fix global_batch, "
                    "ranks or local_batch in the sweep"
                )
            lr = sweep.train.scaled_lr(global_batch)
            points.append(Point(ranks, global_batch, local, lr))
    return points


def find_point(sweep: SweepConfig, point_id: str) -> Point:
    """The point called ``point_id`` (e.g. ``r2-g128-l32``).

    Raises:
        UserError: The sweep has no such point.
    """
    points = expand(sweep)
    for point in points:
        if point.id == point_id:
            return point
    raise UserError(
        f"the sweep has no point {point_id!r}; it has {', '.join(p.id for p in points)}"
    )
