"""Multi-objective test problems with known Pareto fronts: ZDT1, ZDT2, ZDT3 and DTLZ2.

The standard problems of Zitzler, Deb and Thiele (2000) and Deb, Thiele, Laumanns and Zitzler
(2002) in their usual dimensions (30 and 12 variables in [0, 1]), each with the customary
hypervolume reference point and a sample of its true front, so that a search's hypervolume
can be compared with the best one possible.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np

from propulate_hpo.pareto import hypervolume, pareto_mask
from propulate_hpo.space import SearchSpace
from shared_hpc.errors import UserError


def zdt1(x: np.ndarray) -> tuple[float, float]:
    """ZDT1: a convex front, f2 = 1 - sqrt(f1).

    Args:
        x: The point, every coordinate in [0, 1].
    """
    g = 1.0 + 9.0 * float(np.mean(x[1:]))
    return float(x[0]), g * (1.0 - np.sqrt(x[0] / g))


def zdt2(x: np.ndarray) -> tuple[float, float]:
    """ZDT2: a concave front, f2 = 1 - f1².

    Args:
        x: The point, every coordinate in [0, 1].
    """
    g = 1.0 + 9.0 * float(np.mean(x[1:]))
    return float(x[0]), g * (1.0 - (x[0] / g) ** 2)


def zdt3(x: np.ndarray) -> tuple[float, float]:
    """ZDT3: a front of five disconnected pieces.

    Args:
        x: The point, every coordinate in [0, 1].
    """
    g = 1.0 + 9.0 * float(np.mean(x[1:]))
    ratio = x[0] / g
    return float(x[0]), g * (1.0 - np.sqrt(ratio) - ratio * np.sin(10.0 * np.pi * x[0]))


def dtlz2(x: np.ndarray, n_objectives: int = 3) -> tuple[float, ...]:
    """DTLZ2: the front is the positive part of the unit sphere.

    Args:
        x: The point, every coordinate in [0, 1].
        n_objectives: Number of objectives.
    """
    g = float(np.sum((x[n_objectives - 1 :] - 0.5) ** 2))
    angles = x[: n_objectives - 1] * np.pi / 2.0
    values = []
    for i in range(n_objectives):
        value = (1.0 + g) * np.prod(np.cos(angles[: n_objectives - 1 - i]))
        if i > 0:
            value *= np.sin(angles[n_objectives - 1 - i])
        values.append(float(value))
    return tuple(values)


def _zdt_front(shape: Callable[[np.ndarray], np.ndarray], n: int) -> np.ndarray:
    f1 = np.linspace(0.0, 1.0, n)
    front = np.column_stack([f1, shape(f1)])
    return front[pareto_mask(front)]


def _sphere_front(n: int) -> np.ndarray:
    side = max(2, round(np.sqrt(n)))
    a, b = np.meshgrid(np.linspace(0, np.pi / 2, side), np.linspace(0, np.pi / 2, side))
    a, b = a.ravel(), b.ravel()
    return np.column_stack([np.cos(a) * np.cos(b), np.cos(a) * np.sin(b), np.sin(a)])


@dataclass(frozen=True)
class MultiObjectiveBenchmark:
    """A test problem with its dimension, reference point and true front.

    Attributes:
        name: Its name, the key in ``MO_BENCHMARKS``.
        function: The objectives of a point, all minimised.
        dim: Its usual number of variables (each in [0, 1]).
        n_objectives: Number of objectives.
        reference: The customary hypervolume reference point.
        true_front: Points of the true front, ``n`` of them (about).
        exact_hypervolume: The true front's hypervolume at ``reference`` where a formula gives
            it (else a fine sample of the front is measured).
    """

    name: str
    function: Callable[[np.ndarray], tuple[float, ...]]
    dim: int
    n_objectives: int
    reference: tuple[float, ...]
    true_front: Callable[[int], np.ndarray]
    exact_hypervolume: float | None = None

    @property
    def objectives(self) -> tuple[str, ...]:
        """Its objective names: ``f1``, ``f2``, ..."""
        return tuple(f"f{i + 1}" for i in range(self.n_objectives))

    def space(self, dim: int | None = None) -> SearchSpace:
        """The search space ``x0``, ``x1``, ... in [0, 1].

        Args:
            dim: The number of variables (default: the usual).

        Raises:
            UserError: Fewer variables than the problem needs.
        """
        dim = self.dim if dim is None else dim
        if dim < self.n_objectives:
            raise UserError(f"{self.name} needs at least {self.n_objectives} variables")
        return SearchSpace({f"x{i}": (0.0, 1.0) for i in range(dim)})

    def loss(self, params: Mapping[str, float]) -> tuple[float, ...]:
        """The problem as a loss function of a parameter dict (``x0``, ``x1``, ... in order).

        Args:
            params: The parameter values.
        """
        return self.function(np.fromiter(params.values(), float, len(params)))

    def best_hypervolume(self, n: int = 2000) -> float:
        """The hypervolume of the true front at ``reference`` (exact, or of a fine sample).

        Args:
            n: Points sampled on the front.
        """
        if self.exact_hypervolume is not None:
            return self.exact_hypervolume
        return _best_hypervolume(self.name, n)


@cache
def _best_hypervolume(name: str, n: int) -> float:
    problem = MO_BENCHMARKS[name]
    return hypervolume(problem.true_front(n), np.array(problem.reference))


MO_BENCHMARKS: dict[str, MultiObjectiveBenchmark] = {
    b.name: b
    for b in [
        MultiObjectiveBenchmark(
            "zdt1", zdt1, 30, 2, (1.1, 1.1), lambda n: _zdt_front(lambda f: 1 - np.sqrt(f), n)
        ),
        MultiObjectiveBenchmark(
            "zdt2", zdt2, 30, 2, (1.1, 1.1), lambda n: _zdt_front(lambda f: 1 - f**2, n)
        ),
        MultiObjectiveBenchmark(
            "zdt3",
            zdt3,
            30,
            2,
            (1.1, 1.1),
            lambda n: _zdt_front(lambda f: 1 - np.sqrt(f) - f * np.sin(10 * np.pi * f), 50 * n),
        ),
        # the box of side 1.1 minus the unit sphere's positive octant (pi / 6)
        MultiObjectiveBenchmark(
            "dtlz2", dtlz2, 12, 3, (1.1, 1.1, 1.1), _sphere_front, 1.1**3 - np.pi / 6
        ),
    ]
}
