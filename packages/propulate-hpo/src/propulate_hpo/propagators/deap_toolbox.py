"""A DEAP toolbox as a propagator: a DEAP user's GA, run asynchronously across MPI islands.

DEAP's ``eaMuPlusLambda`` keeps ``mu`` individuals, breeds children from random parents with
the toolbox's ``mate`` and ``mutate``, and keeps the ``mu`` best of parents and children with
the toolbox's ``select``. This propagator does the same one child at a time: before each
breed it lets ``select`` choose ``mu`` survivors among its archive and the individuals that
became active on the island since the last breed, then mates two random survivors with
probability ``cxpb`` and mutates the child with probability ``mutpb`` (``varAnd``); the first
``mu`` candidates are drawn uniformly at random, as ``toolbox.population`` would. The
toolbox's operators act on lists of genes in propulate-hpo's internal coordinates (logarithms
for log-scale parameters, indices for categoricals; bounds in ``space.lower`` /
``space.upper``); the fitness values are the objectives as the loss function returned them,
so the individual class's weights give their directions (``(-1.0,)`` for one loss).

DEAP's operators draw from Python's ``random`` module; each breed seeds it from the worker's
own generator and restores the caller's state afterwards, so runs are reproducible and the
user's random state is left alone.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import numpy as np

from propulate_hpo.population import OK, Pool, Population
from propulate_hpo.propagators.base import Propagator
from shared_hpc.errors import UserError

if TYPE_CHECKING:
    from propulate_hpo.objectives import Objectives


class DeapToolbox(Propagator):
    """Breed with a DEAP toolbox's ``select``, ``mate`` and ``mutate``.

    Args:
        toolbox: A ``deap.base.Toolbox`` with ``select(individuals, k)``, ``mate(a, b)`` and
            ``mutate(a)`` registered (as for DEAP's ``eaMuPlusLambda``).
        individual_class: The individual type (``creator.Individual``: a list with a
            ``fitness`` whose ``weights`` have one entry per objective).
        mu: Survivors kept by ``select``; at least 2.
        cxpb: Probability of mating two survivors (else a copy of the first).
        mutpb: Probability of mutating the child.
    """

    parents, offspring = -1, 1

    def __init__(
        self,
        toolbox: Any,
        individual_class: type,
        mu: int,
        cxpb: float = 0.7,
        mutpb: float = 0.3,
    ) -> None:
        super().__init__()
        missing = [name for name in ("select", "mate", "mutate") if not hasattr(toolbox, name)]
        if missing:
            raise UserError(f"the DEAP toolbox has no {', '.join(missing)} registered")
        weights = getattr(getattr(individual_class, "fitness", None), "weights", None)
        if not weights:
            raise UserError("individual_class needs a fitness with weights (creator.create)")
        if mu < 2:
            raise UserError(f"DeapToolbox: mu must be >= 2, got {mu}")
        for name, value in (("cxpb", cxpb), ("mutpb", mutpb)):
            if not 0.0 <= value <= 1.0:
                raise UserError(f"DeapToolbox: {name} must be in [0, 1], got {value}")
        self.toolbox = toolbox
        self.individual_class = individual_class
        self.weights = tuple(float(w) for w in weights)
        self.mu, self.cxpb, self.mutpb = mu, cxpb, mutpb
        self._survivors: list[Any] = []
        self._rows: dict[int, int] = {}  # id of a survivor -> its row
        self._population: Population | None = None
        self._seen_rows = 0

    def check_objectives(self, objectives: Objectives | None) -> None:
        wanted = np.array([1.0]) if objectives is None else objectives.signs
        if len(self.weights) != len(wanted):
            raise UserError(
                f"the DEAP fitness has {len(self.weights)} weight(s), the search has "
                f"{len(wanted)} objective(s)"
            )
        if not (np.sign(self.weights) == -wanted).all():
            directions = "loss:min" if objectives is None else ", ".join(objectives.to_list())
            raise UserError(
                f"the DEAP fitness weights {self.weights} do not match the search's objectives "
                f"({directions}): negative weights minimise, positive ones maximise"
            )

    def _individual(self, population: Population, row: int) -> Any:
        individual = self.individual_class(population.genes[row].tolist())
        if population.objectives is None:
            individual.fitness.values = (float(population.loss[row]),)
        else:  # the values as returned: DEAP's weights give the directions
            signs = np.sign(self.weights) * -1.0
            individual.fitness.values = tuple((population.objectives[row] * signs).tolist())
        return individual

    def _update(self, population: Population) -> None:
        """Let ``select`` choose the survivors among the archive and the new rows."""
        if population is not self._population:
            self._population, self._seen_rows = population, 0
            self._survivors, self._rows = [], {}
        new_rows = [
            i
            for i in range(self._seen_rows, population.n)
            if population.active[i] and population.status[i] == OK
        ]
        self._seen_rows = population.n
        kept = [s for s in self._survivors if population.active[self._rows[id(s)]]]
        if not new_rows and len(kept) == len(self._survivors):
            return
        fresh = [self._individual(population, i) for i in new_rows]
        rows = {id(s): self._rows[id(s)] for s in kept}
        rows.update({id(c): i for c, i in zip(fresh, new_rows, strict=True)})
        candidates = kept + fresh
        survivors = self.toolbox.select(candidates, min(self.mu, len(candidates)))
        self._survivors = list(survivors)
        self._rows = {id(s): rows[id(s)] for s in self._survivors}

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        population = pool.population
        if population.n_active < self.mu:  # the initial population: uniform at random
            return pool.offspring(population.space.sample(rng))
        state = random.getstate()
        random.seed(int(rng.integers(2**62)))
        try:
            self._update(population)
            if len(self._survivors) < 2:
                raise ValueError("DeapToolbox needs two active individuals to breed")
            first, second = random.sample(self._survivors, 2)
            child = self.individual_class(list(first))  # DEAP's operators work in place
            if random.random() < self.cxpb:
                child, _ = self.toolbox.mate(child, self.individual_class(list(second)))
            if random.random() < self.mutpb:
                (child,) = self.toolbox.mutate(child)
        finally:
            random.setstate(state)
        genes = np.array(list(child), dtype=float)
        if genes.shape != (population.space.dim,):
            raise ValueError(
                f"the DEAP operators made {genes.size} genes, the space has {population.space.dim}"
            )
        return pool.offspring(genes)

    def __repr__(self) -> str:
        return f"DeapToolbox(mu={self.mu}, cxpb={self.cxpb}, mutpb={self.mutpb})"
