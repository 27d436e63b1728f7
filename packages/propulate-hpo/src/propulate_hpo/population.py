"""What one rank knows about its island's population, stored as columns of numpy arrays.

Upstream Propulate keeps a list of ``Individual`` objects and filters and sorts it on every
breed, so breeding slows down as the run grows. Here rows are appended to preallocated columns,
the active rows and the best active rows are kept up to date incrementally, and a breed costs
the same at evaluation 10 as at evaluation 100 000.

An individual is identified by ``(worker, generation)``: the worker that bred it and that
worker's evaluation counter. ``version`` counts its migrations, so that a deactivation sent for
one visit to an island cannot hit a later visit.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from propulate_hpo.space import SearchSpace

OK, FAILED, CANCELLED = 0, 1, 2
STATUS_NAMES = {OK: "ok", FAILED: "failed", CANCELLED: "cancelled"}

_INT_COLUMNS = ("worker", "generation", "island", "status", "version", "current")
_FLOAT_COLUMNS = ("loss", "t_start", "duration")


@dataclass
class Row:
    """One individual as it travels between ranks (genes plus bookkeeping).

    Attributes:
        worker: The worker that bred it.
        generation: That worker's counter.
        island: Its birth island.
        loss: Its loss.
        status: ``OK``, ``FAILED`` or ``CANCELLED``.
        t_start: When its evaluation began (``time.time()``).
        duration: How long the evaluation took in seconds.
        version: Its number of migrations so far.
        current: Island-local index of the worker responsible for it (migration).
        genes: Its genes.
        objectives: Its objectives as minimised, in a multi-objective search (``loss`` is then
            the first of them).
    """

    worker: int
    generation: int
    island: int
    loss: float
    status: int
    t_start: float
    duration: float
    version: int
    current: int
    genes: np.ndarray
    objectives: np.ndarray | None = None

    @property
    def key(self) -> tuple[int, int]:
        """Its identity, ``(worker, generation)``."""
        return (self.worker, self.generation)


class Population:
    """Columnar store of every individual this rank has seen on its island.

    Args:
        space: The search space.
        owner: Global index of the worker holding this copy.
        capacity: Rows to allocate at first (the columns double when full).
        n_objectives: Objectives per individual of a multi-objective search (0: one loss).
    """

    def __init__(
        self, space: SearchSpace, owner: int = 0, capacity: int = 256, n_objectives: int = 0
    ) -> None:
        self.space = space
        self.owner = owner  # global index of the worker holding this copy
        self.n = 0
        self.genes = np.empty((capacity, space.dim))
        self.active = np.zeros(capacity, dtype=bool)
        for name in _INT_COLUMNS:
            setattr(self, name, np.zeros(capacity, dtype=np.int64))
        for name in _FLOAT_COLUMNS:
            setattr(self, name, np.zeros(capacity))
        # objectives as minimised, one row each, in a multi-objective search
        self.objectives = np.zeros((capacity, n_objectives)) if n_objectives else None
        self.activations: list[int] = []  # rows in the order they became active (NSGA-II)
        self.rows_by_key: dict[tuple[int, int], int] = {}
        self.seen: set[bytes] = set()  # gene bytes of every individual: no duplicate children
        self.lineage: dict[int, list[int]] = {}  # worker -> its rows in breeding order
        self._pending: dict[tuple[int, int], int] = {}  # deactivations that arrived early
        self._active_rows: list[int] = []
        self._active_array: np.ndarray | None = None
        self._elite: list[tuple[float, int]] = []  # (loss, row) of the best active rows
        self._elite_cap = 0
        self._elite_valid = True
        self._elite_rows: np.ndarray | None = None  # rows of _elite, as an array
        self.n_active = 0

    def __len__(self) -> int:
        return self.n

    # -- growth and insertion -------------------------------------------------------------
    def _grow(self) -> None:
        capacity = 2 * len(self.loss)
        self.genes = np.resize(self.genes, (capacity, self.space.dim))
        self.active = np.resize(self.active, capacity)
        for name in _INT_COLUMNS + _FLOAT_COLUMNS:
            setattr(self, name, np.resize(getattr(self, name), capacity))
        if self.objectives is not None:
            self.objectives = np.resize(self.objectives, (capacity, self.objectives.shape[1]))

    def add(self, row: Row, active: bool = True) -> int:
        """Append ``row``; failed individuals are kept but never bred from.

        Args:
            row: The individual.
            active: Whether it may be bred from (unless its deactivation arrived first).

        Returns:
            Its row index.
        """
        if self.n == len(self.loss):
            self._grow()
        i = self.n
        self.n += 1
        self.genes[i] = row.genes
        self.worker[i], self.generation[i], self.island[i] = row.worker, row.generation, row.island
        self.status[i], self.version[i], self.current[i] = row.status, row.version, row.current
        self.loss[i], self.t_start[i], self.duration[i] = row.loss, row.t_start, row.duration
        if self.objectives is not None:
            self.objectives[i] = row.objectives if row.objectives is not None else np.inf
        self.rows_by_key[row.key] = i
        self.seen.add(row.genes.tobytes())
        self.lineage.setdefault(row.worker, []).append(i)
        pending = self._pending.pop(row.key, None)
        if pending is not None and pending == row.version:
            active = False
        self.active[i] = False
        if active and row.status != FAILED:
            self._activate(i)
        return i

    def _activate(self, i: int) -> None:
        self.active[i] = True
        self.n_active += 1
        self._active_rows.append(i)
        self._active_array = None
        if self.objectives is not None:
            self.activations.append(i)
        if self._elite_valid and self._elite_cap > 0:
            entry = (float(self.loss[i]), i)
            if len(self._elite) < self._elite_cap or entry < self._elite[-1]:
                bisect.insort(self._elite, entry)
                if len(self._elite) > self._elite_cap:
                    self._elite.pop()
                self._elite_rows = None

    def deactivate(self, key: tuple[int, int], version: int) -> bool:
        """Deactivate the visit ``version`` of ``key``; remembered if it has not arrived yet.

        Args:
            key: The individual, ``(worker, generation)``.
            version: Its visit to this island (its number of migrations).

        Returns:
            Whether an active row was deactivated now.
        """
        i = self.rows_by_key.get(key)
        if i is None or self.version[i] < version:
            self._pending[key] = version
            return False
        if self.version[i] != version or not self.active[i]:
            return False
        self._deactivate_row(i)
        return True

    def _deactivate_row(self, i: int) -> None:
        self.active[i] = False
        self.n_active -= 1
        self._active_rows.remove(i)
        self._active_array = None
        if any(row == i for _, row in self._elite):
            self._elite_valid = False

    def immigrate(self, row: Row) -> bool:
        """Take in a migrant; an individual coming back to an island is reactivated.

        Args:
            row: The migrant.

        Returns:
            Whether it is new here (not a copy of a visit already known).
        """
        i = self.rows_by_key.get(row.key)
        if i is None:
            self.add(row)
            return True
        if self.version[i] >= row.version:
            return False  # a copy of a visit we already know
        self.version[i] = row.version
        self.current[i] = row.current
        if self._pending.get(row.key) == row.version:  # its departure is already known
            del self._pending[row.key]
            if self.active[i]:
                self._deactivate_row(i)
            return True
        if not self.active[i] and self.status[i] != FAILED:
            self._activate(i)
        return True

    # -- queries ------------------------------------------------------------------------
    def active_rows(self) -> np.ndarray:
        """Row indices of the active individuals."""
        if self._active_array is None:
            self._active_array = np.fromiter(self._active_rows, np.int64, len(self._active_rows))
        return self._active_array

    def best(self, k: int) -> np.ndarray:
        """Rows of the ``k`` best active individuals, best first (kept incrementally).

        Args:
            k: How many.
        """
        if k > self._elite_cap or not self._elite_valid:
            self._elite_cap = max(k, self._elite_cap)
            rows = self.active_rows()
            if len(rows) > self._elite_cap:
                part = np.argpartition(self.loss[rows], self._elite_cap - 1)[: self._elite_cap]
                rows = rows[part]
            self._elite = sorted(zip(self.loss[rows].tolist(), rows.tolist(), strict=True))
            self._elite_valid = True
            self._elite_rows = None
        if self._elite_rows is None:
            self._elite_rows = np.fromiter(
                (row for _, row in self._elite), np.int64, len(self._elite)
            )
        return self._elite_rows[:k]

    def worst(self, k: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Rows of the ``k`` worst individuals among ``rows``, worst first.

        Args:
            k: How many.
            rows: Where to look (default: the active rows).
        """
        rows = self.active_rows() if rows is None else rows
        order = np.argsort(-self.loss[rows], kind="stable")[:k]
        return rows[order]

    def row(self, i: int) -> Row:
        """The individual in a row, as a ``Row`` that can travel.

        Args:
            i: The row index.
        """
        return Row(
            int(self.worker[i]),
            int(self.generation[i]),
            int(self.island[i]),
            float(self.loss[i]),
            int(self.status[i]),
            float(self.t_start[i]),
            float(self.duration[i]),
            int(self.version[i]),
            int(self.current[i]),
            self.genes[i].copy(),
            None if self.objectives is None else self.objectives[i].copy(),
        )

    def is_duplicate(self, genes: np.ndarray) -> bool:
        """Whether an individual with exactly these genes is known here.

        Args:
            genes: A repaired gene vector.
        """
        return genes.tobytes() in self.seen

    def everything(self) -> Pool:
        """All active individuals, as the input of a propagator chain."""
        return Pool(self, rows=None)


class Pool:
    """A few individuals flowing through a chain of propagators.

    The first pool of a breed is *everything* the rank knows (``rows=None``: selection
    propagators then use the population's incremental indexes); selections give pools of rows;
    crossover and mutation give pools of new gene vectors (``rows`` is ``None``, ``fresh``).

    Args:
        population: The population the individuals come from.
        rows: Their rows in it (``None`` with ``genes``, or for everything active).
        genes: New gene vectors instead of rows.
        losses: Their losses (default: infinite for new ones).
    """

    __slots__ = ("_genes", "_losses", "fresh", "population", "rows")

    def __init__(
        self,
        population: Population,
        rows: np.ndarray | None = None,
        genes: np.ndarray | None = None,
        losses: np.ndarray | None = None,
    ) -> None:
        self.population = population
        self.rows = rows
        self.fresh = genes is not None
        self._genes = genes
        self._losses = losses

    @property
    def is_everything(self) -> bool:
        """Whether this pool is every active individual (selections use the indexes)."""
        return self.rows is None and not self.fresh

    def _rows(self) -> np.ndarray:
        return self.population.active_rows() if self.rows is None else self.rows

    @property
    def genes(self) -> np.ndarray:
        """The individuals' genes, one row each."""
        if self._genes is None:
            self._genes = self.population.genes[self._rows()]
        return self._genes

    @property
    def losses(self) -> np.ndarray:
        """The individuals' losses."""
        if self._losses is None:
            if self.fresh:
                self._losses = np.full(len(self._genes), np.inf)
            else:
                self._losses = self.population.loss[self._rows()]
        return self._losses

    @property
    def space(self) -> SearchSpace:
        """The search space."""
        return self.population.space

    def __len__(self) -> int:
        if self._genes is not None:
            return len(self._genes)
        return self.population.n_active if self.rows is None else len(self.rows)

    def select(self, positions: np.ndarray) -> Pool:
        """Sub-pool of the given positions (of this pool).

        Args:
            positions: Indices into this pool.
        """
        if self.fresh:
            return Pool(self.population, genes=self.genes[positions], losses=self.losses[positions])
        return Pool(self.population, rows=self._rows()[positions])

    def offspring(self, genes: np.ndarray) -> Pool:
        """A pool of new individuals bred from this one.

        Args:
            genes: Their gene vectors (one, or one row each).
        """
        return Pool(self.population, genes=np.atleast_2d(genes))
