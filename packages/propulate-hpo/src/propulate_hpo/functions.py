"""Benchmark functions of the Propulate paper, with their domains, dimensions and optima.

``BENCHMARKS[name]`` describes one function; ``benchmark(name)`` returns the loss function
(taking a parameter dict, as every loss function does) and its search space. Dimensions and
domains are those of the paper; functions defined in any dimension accept ``dim``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from propulate_hpo.space import SearchSpace
from shared_hpc.errors import UserError

_noise = np.random.default_rng(0)


def sphere(x: np.ndarray) -> float:
    """The sphere: the sum of squares, optimum 0 at the origin.

    Args:
        x: The point.
    """
    return float(np.sum(x**2))


def rosenbrock(x: np.ndarray) -> float:
    """Rosenbrock's curved valley, optimum 0 at x = 1.

    Args:
        x: The point.
    """
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def step(x: np.ndarray) -> float:
    """De Jong's step function as in the paper: sum of the integer parts (truncated).

    Args:
        x: The point.
    """
    return float(np.sum(np.trunc(x)))


def quartic(x: np.ndarray, rng: np.random.Generator | None = None) -> float:
    """De Jong's quartic with Gaussian noise (a new draw on every call).

    Args:
        x: The point.
        rng: The source of the noise (default: one seeded generator for the process).
    """
    rng = _noise if rng is None else rng
    i = np.arange(1, len(x) + 1)
    return float(abs(np.sum(i * x**4 + rng.normal(size=len(x)))))


def rastrigin(x: np.ndarray) -> float:
    """Rastrigin's function: a sphere with a regular grid of local minima, optimum 0 at 0.

    Args:
        x: The point.
    """
    return float(10.0 * len(x) + np.sum(x**2 - 10.0 * np.cos(2.0 * np.pi * x)))


def griewank(x: np.ndarray) -> float:
    """Griewank's function: many regularly spaced local minima, optimum 0 at 0.

    Args:
        x: The point.
    """
    i = np.arange(1, len(x) + 1)
    return float(1.0 + np.sum(x**2) / 4000.0 - np.prod(np.cos(x / np.sqrt(i))))


def schwefel(x: np.ndarray) -> float:
    """Schwefel's function: the best local minima far apart, optimum 0 at x = 420.97.

    Args:
        x: The point.
    """
    return float(418.9828872724339 * len(x) - np.sum(x * np.sin(np.sqrt(np.abs(x)))))


def _lunacek(x: np.ndarray) -> float:
    n = len(x)
    s = 1.0 - 1.0 / (2.0 * math.sqrt(n + 20.0) - 8.2)
    mu1, d = 2.5, 1.0
    mu2 = -math.sqrt((mu1**2 - d) / s)
    return min(float(np.sum((x - mu1) ** 2)), d * n + s * float(np.sum((x - mu2) ** 2)))


def bisphere(x: np.ndarray) -> float:
    """Lunacek's bi-sphere (double-funnel sphere), optimum 0 at x = 2.5.

    Args:
        x: The point.
    """
    return _lunacek(x)


def birastrigin(x: np.ndarray) -> float:
    """Lunacek's bi-Rastrigin, optimum 0 at x = 2.5.

    Args:
        x: The point.
    """
    return _lunacek(x) + 10.0 * float(np.sum(1.0 - np.cos(2.0 * np.pi * (x - 2.5))))


def bukin_n6(x: np.ndarray) -> float:
    """Bukin's function N.6: a narrow curved ridge, optimum 0 at (-10, 1).

    Args:
        x: The point.
    """
    return float(100.0 * math.sqrt(abs(x[1] - 0.01 * x[0] ** 2)) + 0.01 * abs(x[0] + 10.0))


def eggcrate(x: np.ndarray) -> float:
    """The egg crate: a sphere with sine ripples, optimum 0 at the origin.

    Args:
        x: The point.
    """
    return float(x[0] ** 2 + x[1] ** 2 + 25.0 * (math.sin(x[0]) ** 2 + math.sin(x[1]) ** 2))


def himmelblau(x: np.ndarray) -> float:
    """Himmelblau's function: four global minima of 0, one at (3, 2).

    Args:
        x: The point.
    """
    return float((x[0] ** 2 + x[1] - 11.0) ** 2 + (x[0] + x[1] ** 2 - 7.0) ** 2)


def keane(x: np.ndarray) -> float:
    """Keane's function, as in Propulate: −sin²(x−y)·sin²(x+y)/√(x²+y²); 0 where x = y = 0.

    Args:
        x: The point.
    """
    r = math.hypot(x[0], x[1])
    if r == 0.0:
        return 0.0
    return float(-(math.sin(x[0] - x[1]) ** 2) * math.sin(x[0] + x[1]) ** 2 / r)


def leon(x: np.ndarray) -> float:
    """Leon's function: a curved valley, optimum 0 at (1, 1).

    Args:
        x: The point.
    """
    return float(100.0 * (x[1] - x[0] ** 3) ** 2 + (1.0 - x[0]) ** 2)


@dataclass(frozen=True)
class Benchmark:
    """A test function with the dimension and domain of the paper and its known optimum.

    Attributes:
        name: Its name, the key in ``BENCHMARKS``.
        function: The function of a point.
        dim: The paper's dimension.
        bounds: One (low, high) per dimension, or one for all.
        optimum: The lowest value.
        argmin: One optimum location (its first coordinate repeats in other dimensions).
        variable_dim: Whether it is defined in any dimension.
        noisy: Whether it draws noise on every call.
    """

    name: str
    function: Callable[[np.ndarray], float]
    dim: int
    bounds: tuple[tuple[float, float], ...]
    optimum: float
    argmin: tuple[float, ...] | None
    variable_dim: bool = True
    noisy: bool = False

    def domain(self, dim: int | None = None) -> list[tuple[float, float]]:
        """The (low, high) of every dimension.

        Args:
            dim: The dimension (default: the paper's).

        Raises:
            UserError: A dimension the function is not defined in.
        """
        dim = self.dim if dim is None else dim
        if not self.variable_dim and dim != self.dim:
            raise UserError(f"{self.name} is defined in {self.dim} dimensions, not {dim}")
        if dim < 1 or (self.name == "rosenbrock" and dim < 2):
            raise UserError(f"{self.name}: invalid dimension {dim}")
        if len(self.bounds) == 1:
            return [self.bounds[0]] * dim
        return list(self.bounds)

    def space(self, dim: int | None = None) -> SearchSpace:
        """The search space ``x0``, ``x1``, ... over the domain.

        Args:
            dim: The dimension (default: the paper's).
        """
        return SearchSpace({f"x{i}": tuple(map(float, b)) for i, b in enumerate(self.domain(dim))})

    def optimum_location(self, dim: int | None = None) -> np.ndarray | None:
        """Where the optimum lies (``None`` if unknown).

        Args:
            dim: The dimension (default: the paper's).
        """
        if self.argmin is None:
            return None
        dim = self.dim if dim is None else dim
        return np.array(self.argmin if len(self.argmin) == dim else self.argmin[:1] * dim)

    def loss(self, params: Mapping[str, float]) -> float:
        """The function as a loss function of a parameter dict (``x0``, ``x1``, ... in order).

        Args:
            params: The parameter values.
        """
        return self.function(np.fromiter(params.values(), float, len(params)))


_S = (-5.12, 5.12)
BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in [
        Benchmark("sphere", sphere, 2, (_S,), 0.0, (0.0,)),
        Benchmark("rosenbrock", rosenbrock, 2, ((-2.048, 2.048),), 0.0, (1.0,)),
        Benchmark("step", step, 5, (_S,), -25.0, (-5.12,)),
        Benchmark("quartic", quartic, 30, ((-1.28, 1.28),), 0.0, (0.0,), noisy=True),
        Benchmark("rastrigin", rastrigin, 20, (_S,), 0.0, (0.0,)),
        Benchmark("griewank", griewank, 10, ((-600.0, 600.0),), 0.0, (0.0,)),
        Benchmark("schwefel", schwefel, 10, ((-500.0, 500.0),), 0.0, (420.9687463,)),
        Benchmark("bisphere", bisphere, 30, (_S,), 0.0, (2.5,)),
        Benchmark("birastrigin", birastrigin, 30, (_S,), 0.0, (2.5,)),
        Benchmark("bukin", bukin_n6, 2, ((-15.0, -5.0), (-3.0, 3.0)), 0.0, (-10.0, 1.0), False),
        Benchmark("eggcrate", eggcrate, 2, ((-5.0, 5.0),), 0.0, (0.0, 0.0), False),
        Benchmark("himmelblau", himmelblau, 2, ((-6.0, 6.0),), 0.0, (3.0, 2.0), False),
        Benchmark(
            "keane", keane, 2, ((0.0, 10.0),), -0.6736675211468548, (1.3932490753, 0.0), False
        ),
        Benchmark("leon", leon, 2, ((0.0, 10.0),), 0.0, (1.0, 1.0), False),
    ]
}


def benchmark(
    name: str, dim: int | None = None
) -> tuple[Callable[[Mapping[str, float]], float], SearchSpace]:
    """Loss function and search space of the benchmark ``name``.

    Args:
        name: A key of ``BENCHMARKS``.
        dim: The dimension (default: the paper's).

    Raises:
        UserError: An unknown name, or a dimension the function is not defined in.
    """
    if name not in BENCHMARKS:
        raise UserError(f"unknown benchmark function {name!r}; choose from {sorted(BENCHMARKS)}")
    b = BENCHMARKS[name]
    return b.loss, b.space(dim)
