"""The propagators a search can name in its settings (``propagator = "cma"``, ``--propagator``).

A name stands for a propagator built for the search space and the breeding pool size, so the
settings stay plain values that a TOML file or a flag can hold; a ``Propagator`` object passed
to ``Propulator`` serves every other case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

from propulate_hpo.propagators.base import Propagator
from propulate_hpo.propagators.cmaes import CMAES
from propulate_hpo.propagators.ga import default_propagator
from propulate_hpo.propagators.nelder_mead import ParallelNelderMead
from propulate_hpo.propagators.nsga2 import nsga2_propagator
from propulate_hpo.propagators.pso import (
    BasicPSO,
    CanonicalPSO,
    ConstrictionPSO,
    VelocityClampingPSO,
)
from propulate_hpo.space import SearchSpace
from shared_hpc.errors import UserError

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
    "nsga2",
]
PROPAGATORS: tuple[str, ...] = get_args(PropagatorName)
MULTI_OBJECTIVE = ("nsga2",)  # the named propagators that breed for several objectives

_MAKERS: dict[str, Callable[[SearchSpace, int], Propagator]] = {
    "ga": lambda space, pop_size: default_propagator(pop_size, space),
    "ga-paper": lambda space, pop_size: default_propagator(pop_size, space, elite_probability=0.0),
    "pso": lambda space, pop_size: BasicPSO(),
    "pso-clamping": lambda space, pop_size: VelocityClampingPSO(),
    "pso-constriction": lambda space, pop_size: ConstrictionPSO(),
    "pso-canonical": lambda space, pop_size: CanonicalPSO(),
    "cma": lambda space, pop_size: CMAES(active=False),
    "cma-active": lambda space, pop_size: CMAES(active=True),
    "nelder-mead": lambda space, pop_size: ParallelNelderMead(),
    "nsga2": lambda space, pop_size: nsga2_propagator(pop_size),
}


def make_propagator(name: str, space: SearchSpace, pop_size: int) -> Propagator:
    """The propagator called ``name``, checked against ``space``.

    Args:
        name: One of ``PROPAGATORS``: ``ga`` (the paper's GA plus elite samples, the default),
            ``ga-paper`` (the GA alone), ``pso``, ``pso-clamping``, ``pso-constriction``,
            ``pso-canonical``, ``cma``, ``cma-active``, ``nelder-mead`` or ``nsga2`` (several
            objectives).
        space: The search space it breeds in.
        pop_size: The breeding pool size (used by the two GAs).

    Returns:
        A new propagator.

    Raises:
        UserError: An unknown name, or a propagator that cannot work on ``space``.
    """
    if name not in _MAKERS:
        raise UserError(f"unknown propagator {name!r}; choose from {list(_MAKERS)}")
    propagator = _MAKERS[name](space, pop_size)
    propagator.check(space)
    return propagator
