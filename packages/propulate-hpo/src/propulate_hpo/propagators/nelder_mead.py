"""Parallel Nelder–Mead: the workers run the simplex moves on different vertices.

The simplex is the n + 1 best individuals the worker knows that span a proper simplex, so a
good point found by any worker enters every simplex. As in the parallel Nelder–Mead of Lee &
Wiswall (2007), the workers do not all reflect the worst vertex: worker ``k`` reflects the
``(k mod ⌈n/2⌉) + 1``-th worst through the centroid of the others (reflecting near-best
vertices as well, as with ``k mod n``, converged less reliably in our tests). Each worker then
follows the classic sequence with its own candidate's outcome: reflect → expand / accept /
contract (outside or inside) → shrink the simplex towards the best, one vertex per breed.
Acceptance is implicit: an improving point is in the population and hence in the next
simplex. Works in unit coordinates. In parallel it needs more evaluations than serial
Nelder–Mead for the same accuracy (the simplex changes under each worker's feet); its use is
cheap local refinement, not global search.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from propulate_hpo.population import Pool, Population
from propulate_hpo.propagators.base import Propagator
from propulate_hpo.space import SearchSpace
from shared_hpc.errors import UserError


@dataclass
class _Proposal:
    step: str
    genes: bytes  # repaired genes of the proposed candidate, to recognise its outcome
    centroid: np.ndarray
    reflected: np.ndarray
    vertex: np.ndarray
    best: np.ndarray
    f_best: float
    f_next: float  # the loss the reflected point must beat to be accepted
    f_vertex: float
    f_reference: float = np.inf


class ParallelNelderMead(Propagator):
    """Asynchronous parallel Nelder–Mead with the standard coefficients by default.

    Args:
        alpha: Reflection coefficient (> 0).
        gamma: Expansion coefficient (> 1).
        rho: Contraction coefficient (in (0, 1)).
        shrink: Shrink factor (in (0, 1)).
        start: A parameter dict to build the first simplex around (default: random points).
        scale: Size of the first simplex, as a share of each parameter's range.
    """

    parents, offspring = -1, 1

    def __init__(
        self,
        alpha: float = 1.0,
        gamma: float = 2.0,
        rho: float = 0.5,
        shrink: float = 0.5,
        start: dict | None = None,
        scale: float = 0.1,
    ) -> None:
        super().__init__()
        if alpha <= 0 or gamma <= 1 or not 0 < rho < 1 or not 0 < shrink < 1:
            raise UserError("ParallelNelderMead: need alpha > 0, gamma > 1, 0 < rho, shrink < 1")
        self.alpha, self.gamma, self.rho, self.shrink_factor = alpha, gamma, rho, shrink
        self.start = start
        self.scale = scale
        self._pending: _Proposal | None = None
        self._shrinks: list[tuple[_Proposal, np.ndarray]] = []

    def check(self, space: SearchSpace) -> None:
        if space.has_categorical:
            raise UserError("ParallelNelderMead needs a numeric search space (no categoricals)")
        if self.start is not None:
            space.encode(self.start)

    def _outcome(self, population: Population) -> float | None:
        own = population.lineage.get(population.owner, [])
        if self._pending is None or not own:
            return None
        last = own[-1]
        if population.genes[last].tobytes() != self._pending.genes:
            return None
        return float(population.loss[last])

    def _simplex(self, pool: Pool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The best n + 1 known points that span a proper simplex (unit coordinates).

        Taking just the n + 1 best points would let a point and its own shrunk or expanded
        copy (collinear with the centroid) sit in one simplex, which collapses it. Points are
        taken best first, each only if it adds a new direction. Returns the vertices, their
        losses and an orthonormal basis of the spanned directions.
        """
        population, space = pool.population, pool.space
        n = space.dim
        rows = population.best(min(population.n_active, 8 * (n + 1)))
        x = space.to_unit(population.genes[rows])
        chosen, basis = [0], []
        for i in range(1, len(rows)):
            d = x[i] - x[0]
            norm = np.linalg.norm(d)
            if norm < 1e-15:
                continue
            r = d - sum((d @ b) * b for b in basis) if basis else d
            if np.linalg.norm(r) > 1e-2 * norm:
                basis.append(r / np.linalg.norm(r))
                chosen.append(i)
                if len(chosen) == n + 1:
                    break
        return x[chosen], population.loss[rows[chosen]], np.array(basis).reshape(-1, n)

    def _widen(
        self, pool: Pool, x: np.ndarray, basis: np.ndarray, rng: np.random.Generator
    ) -> Pool:
        """Too few independent points: probe a new direction around the best one."""
        d = rng.normal(size=pool.space.dim)
        d -= basis.T @ (basis @ d)
        scale = max(float(np.ptp(x, axis=0).max()), 1e-3)
        self._pending = None
        unit = np.clip(x[0] + scale * d / np.linalg.norm(d), 0.0, 1.0)
        return pool.offspring(pool.space.from_unit(unit))

    def _propose(
        self, pool: Pool, p: _Proposal, moves: list[tuple[str, np.ndarray]]
    ) -> Pool | None:
        """The first of ``moves`` that nobody has evaluated yet (unit coordinates)."""
        space, population = pool.space, pool.population
        for step, unit in moves:
            genes = space.repair(space.from_unit(np.clip(unit, 0.0, 1.0)))
            if not population.is_duplicate(genes):
                p.step, p.genes = step, genes.tobytes()
                self._pending = p
                return pool.offspring(genes)
        return None

    def apply(self, pool: Pool, rng: np.random.Generator) -> Pool:
        population = pool.population
        space = population.space
        n = space.dim
        if population.n_active < n + 1:
            self._pending, self._shrinks = None, []
            if self.start is None:
                return pool.offspring(space.sample(rng))
            centre = space.to_unit(space.encode(self.start))
            unit = centre + rng.normal(0.0, self.scale, n) * (population.n_active > 0)
            return pool.offspring(space.from_unit(np.clip(unit, 0.0, 1.0)))
        x, f, basis = self._simplex(pool)
        if len(x) < n + 1:
            return self._widen(pool, x, basis, rng)
        outcome = self._outcome(population)
        p = self._pending
        child = None
        if p is not None and outcome is not None:
            child = self._follow_up(pool, p, outcome, x)
        while child is None and self._shrinks:
            child = self._propose(pool, self._shrinks[0][0], [("shrink", self._shrinks.pop(0)[1])])
        if child is None:
            child = self._reflect(pool, x, f)
        if child is None:  # every move lands on known points: probe a new direction
            child = self._widen(pool, x[:1], np.zeros((0, n)), rng)
        return child

    def _follow_up(self, pool: Pool, p: _Proposal, outcome: float, x: np.ndarray) -> Pool | None:
        """The next move of the classic sequence, given the outcome of this worker's last one."""
        c = p.centroid
        if p.step == "reflect":
            if outcome < p.f_best:
                return self._propose(pool, p, [("expand", c + self.gamma * (p.reflected - c))])
            if outcome >= p.f_next:
                p.f_reference = min(outcome, p.f_vertex)
                outside = c + self.rho * (p.reflected - c)
                inside = c + self.rho * (p.vertex - c)
                first = outside if outcome < p.f_vertex else inside
                return self._propose(pool, p, [("contract", first), ("contract", inside)])
        elif p.step == "contract" and outcome >= p.f_reference:
            self._queue_shrink(p, x)
        return None  # accepted, or a shrink is queued: the caller goes on

    def _queue_shrink(self, p: _Proposal, x: np.ndarray) -> None:
        """Classic shrink: every vertex but the best moves halfway towards it, one per breed."""
        self._shrinks = [(p, x[0] + self.shrink_factor * (v - x[0])) for v in x[1:]]

    def _reflect(self, pool: Pool, x: np.ndarray, f: np.ndarray) -> Pool | None:
        """Reflect this worker's vertex (the k-th worst) through the centroid of the others."""
        population = pool.population
        n = pool.space.dim
        k = n - (population.owner % max(1, (n + 1) // 2))  # the worse half of the vertices
        vertex = x[k]
        centroid = (x.sum(axis=0) - vertex) / n
        reflected = centroid + self.alpha * (centroid - vertex)
        p = _Proposal(
            "reflect",
            b"",
            centroid,
            reflected,
            vertex,
            x[0],
            float(f[0]),
            float(f[k - 1]),
            float(f[k]),
        )
        inside = centroid + self.rho * (vertex - centroid)
        p.f_reference = float(f[k])
        child = self._propose(pool, p, [("reflect", reflected), ("contract", inside)])
        if child is None:  # the simplex is stuck on known points: shrink it
            self._queue_shrink(p, x)
            while child is None and self._shrinks:
                q, unit = self._shrinks.pop(0)
                child = self._propose(pool, q, [("shrink", unit)])
        return child
