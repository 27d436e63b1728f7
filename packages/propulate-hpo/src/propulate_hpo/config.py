"""Settings of a ``propulate-hpo run``, as a dataclass that also loads from TOML."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from propulate_hpo.propagators import (
    CMAES,
    CanonicalPSO,
    ConstrictionPSO,
    ParallelNelderMead,
    Propagator,
    VelocityClampingPSO,
    default_propagator,
)
from propulate_hpo.propagators.pso import BasicPSO
from propulate_hpo.space import SearchSpace

PropagatorName = Literal[
    "ga",
    "ga-paper",
    "pso",
    "pso-clamping",
    "pso-constriction",
    "pso-canonical",
    "cma",
    "cma-active",
    "nelder-mead",
]
PROPAGATORS: tuple[str, ...] = get_args(PropagatorName)


@dataclass
class RunConfig:
    """One optimisation run; every field is also a ``propulate-hpo run`` option."""

    function: str | None = None  # a benchmark function name ...
    dim: int | None = None  # ... in this many dimensions (default: the paper's)
    loss: str | None = None  # ... or "package.module:function"
    space: Path | None = None  # TOML search space (needed with ``loss``)
    generations: int | None = None  # evaluations per worker (100 if no other limit is given)
    budget_s: float | None = None  # wall-clock budget of the whole run
    max_evaluations: int | None = None  # evaluations of all workers together
    propagator: PropagatorName = "ga"
    pop_size: int | None = None
    islands: int = 1
    island_sizes: list[int] | None = None
    migration_probability: float = 0.0
    migrants: int = 1  # per island pair and migration event (fully connected topology)
    pollination: bool = False
    ranks_per_worker: int = 1
    early_stopping: float | None = None  # margin of the early-stopping surrogate (generators)
    checkpoint: Path | None = None
    seed: int = 0
    output: Path = Path("propulate-hpo-run")

    def __post_init__(self) -> None:
        if self.generations is None and self.max_evaluations is None and self.budget_s is None:
            self.generations = 100
        if (self.function is None) == (self.loss is None):
            raise ValueError("give either a benchmark function or a loss 'module:function'")
        if self.loss is not None and self.space is None:
            raise ValueError("a loss function needs a search space file (--space)")
        if self.loss is not None and ":" not in self.loss:
            raise ValueError(f"loss must look like 'package.module:function', got {self.loss!r}")
        if self.migrants < 0:
            raise ValueError(f"migrants must be >= 0, got {self.migrants}")
        if self.early_stopping is not None and self.early_stopping < 0:
            raise ValueError(f"early_stopping margin must be >= 0, got {self.early_stopping}")


def make_propagator(name: str, space: SearchSpace, pop_size: int) -> Propagator:
    """The propagator called ``name`` (see :data:`PROPAGATORS`)."""
    makers = {
        "ga": lambda: default_propagator(pop_size, space),
        "ga-paper": lambda: default_propagator(pop_size, space, elite_probability=0.0),
        "pso": BasicPSO,
        "pso-clamping": VelocityClampingPSO,
        "pso-constriction": ConstrictionPSO,
        "pso-canonical": CanonicalPSO,
        "cma": lambda: CMAES(active=False),
        "cma-active": lambda: CMAES(active=True),
        "nelder-mead": ParallelNelderMead,
    }
    if name not in makers:
        raise ValueError(f"unknown propagator {name!r}; choose from {list(makers)}")
    propagator = makers[name]()
    propagator.check(space)
    return propagator
