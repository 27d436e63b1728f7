"""Who does what: ranks grouped into workers, workers into islands, islands connected.

``ranks_per_worker`` consecutive ranks form one worker; the first of them (the worker's root)
breeds and talks to other workers, the others only help evaluate (the loss function gets the
worker's communicator, e.g. for data-parallel training of one candidate). Workers are split
into islands of consecutive workers; the migration topology says how many individuals each
island sends to each other one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared_hpc.errors import UserError
from shared_hpc.mpi import Comm, split_by_color


def island_sizes(n_workers: int, islands: int | Sequence[int]) -> list[int]:
    """Balanced sizes for ``islands`` islands, or the given sizes after checking them.

    Args:
        n_workers: Workers of the run.
        islands: The number of islands, or the workers of each island.

    Returns:
        Workers per island.

    Raises:
        UserError: More islands than workers, or sizes that do not add up to ``n_workers``.
    """
    if isinstance(islands, (int, np.integer)):
        if islands < 1:
            raise UserError(f"the number of islands must be >= 1, got {islands}")
        if islands > n_workers:
            raise UserError(
                f"{islands} islands need at least {islands} workers, there are {n_workers}"
            )
        base, extra = divmod(n_workers, int(islands))
        return [base + (i < extra) for i in range(int(islands))]
    sizes = [int(s) for s in islands]
    if not sizes or min(sizes) < 1:
        raise UserError(f"island sizes must be >= 1, got {sizes}")
    if sum(sizes) != n_workers:
        raise UserError(
            f"island sizes {sizes} add up to {sum(sizes)} workers, there are {n_workers}"
        )
    return sizes


def fully_connected(n_islands: int, migrants: int) -> np.ndarray:
    """The default migration topology: every island sends ``migrants`` to every other one.

    Args:
        n_islands: Number of islands.
        migrants: Individuals per island pair and migration event.

    Returns:
        An ``n_islands`` x ``n_islands`` matrix of ints with a zero diagonal.
    """
    matrix = np.full((n_islands, n_islands), migrants, dtype=np.int64)
    np.fill_diagonal(matrix, 0)
    return matrix


def check_topology(topology: Any, n_islands: int) -> np.ndarray:
    """A migration topology, checked: entry (i, j) = migrants sent from island i to island j.

    Args:
        topology: A square matrix (anything ``numpy.asarray`` takes).
        n_islands: Number of islands.

    Returns:
        The matrix as int64.

    Raises:
        UserError: Wrong shape, negative or fractional entries, or a non-zero diagonal.
    """
    matrix = np.asarray(topology)
    if matrix.shape != (n_islands, n_islands):
        raise UserError(
            f"the migration topology must be {n_islands} x {n_islands}, got shape {matrix.shape}"
        )
    if not np.all(np.isfinite(matrix)) or np.any(matrix < 0) or np.any(matrix != np.rint(matrix)):
        raise UserError("the migration topology must hold non-negative integers")
    if np.any(np.diag(matrix) != 0):
        raise UserError("the migration topology's diagonal must be 0 (no self-migration)")
    return matrix.astype(np.int64)


@dataclass
class Layout:
    """This rank's place in a run: its worker, its island and the communicators it uses.

    Attributes:
        world: Communicator of all ranks of the run.
        ranks_per_worker: Ranks of each worker.
        worker: Global index of this rank's worker.
        n_workers: Workers of the run.
        worker_comm: The ranks of this worker; handed to the loss function.
        workers: The workers' roots (``None`` on helper ranks).
        sizes: Workers per island.
        island: This worker's island.
        local: Index of this worker within its island.
    """

    world: Comm
    ranks_per_worker: int
    worker: int
    n_workers: int
    worker_comm: Comm
    workers: Comm | None
    sizes: list[int]
    island: int
    local: int
    _peers: list[int] | None = None

    @property
    def is_root(self) -> bool:
        """Whether this rank is its worker's root (it breeds and talks to other workers)."""
        return self.workers is not None

    @property
    def n_islands(self) -> int:
        """Number of islands."""
        return len(self.sizes)

    def first_worker(self, island: int) -> int:
        """Global index of the first worker of ``island``.

        Args:
            island: The island.
        """
        return sum(self.sizes[:island])

    def island_of(self, worker: int) -> int:
        """The island of a worker.

        Args:
            worker: Global index of the worker.
        """
        return int(np.searchsorted(np.cumsum(self.sizes), worker, side="right"))

    def island_workers(self, island: int) -> list[int]:
        """Global indices of the workers of ``island``.

        Args:
            island: The island.
        """
        start = self.first_worker(island)
        return list(range(start, start + self.sizes[island]))

    @property
    def peers(self) -> list[int]:
        """The other workers of this worker's island (computed once)."""
        if self._peers is None:
            self._peers = [w for w in self.island_workers(self.island) if w != self.worker]
        return self._peers


def make_layout(world: Comm, ranks_per_worker: int, islands: int | Sequence[int]) -> Layout:
    """Split ``world`` into workers and islands (collective on ``world``).

    Args:
        world: Communicator of all ranks of the run.
        ranks_per_worker: Consecutive ranks that form one worker.
        islands: The number of islands, or the workers of each island.

    Returns:
        This rank's layout.

    Raises:
        UserError: The ranks cannot be split that way.
    """
    size, rank = world.Get_size(), world.Get_rank()
    if ranks_per_worker < 1:
        raise UserError(f"ranks_per_worker must be >= 1, got {ranks_per_worker}")
    if size % ranks_per_worker:
        raise UserError(f"{size} ranks cannot be split into workers of {ranks_per_worker} ranks")
    n_workers = size // ranks_per_worker
    sizes = island_sizes(n_workers, islands)
    worker = rank // ranks_per_worker
    is_root = rank % ranks_per_worker == 0
    if size == 1:
        worker_comm, workers = world, world
    else:
        from mpi4py import MPI

        if ranks_per_worker == 1:
            worker_comm = MPI.COMM_SELF
            workers = world.Dup()  # keeps our messages apart from the user's
        else:
            worker_comm = split_by_color(world, worker)
            workers = split_by_color(world, 0 if is_root else None)  # the workers' roots
    layout = Layout(
        world,
        ranks_per_worker,
        worker,
        n_workers,
        worker_comm,
        workers if is_root else None,
        sizes,
        0,
        0,
    )
    layout.island = layout.island_of(worker)
    layout.local = worker - layout.first_worker(layout.island)
    return layout
