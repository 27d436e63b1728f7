"""Propagators: how a worker breeds its next candidate from the population it knows."""

from propulate_hpo.propagators.base import (
    Compose,
    Conditional,
    InitUniform,
    Mixture,
    Propagator,
    SelectBest,
    SelectTournament,
    SelectUniform,
    SelectWorst,
    Stochastic,
)
from propulate_hpo.propagators.cmaes import CMAES, ActiveCMA, BasicCMA
from propulate_hpo.propagators.deap_toolbox import DeapToolbox
from propulate_hpo.propagators.elite import EliteGaussian
from propulate_hpo.propagators.ga import (
    CrossoverBlend,
    CrossoverMultiPoint,
    CrossoverUniform,
    DefaultGenetic,
    IntervalMutationNormal,
    PointMutation,
    RandomPointMutation,
    default_chain,
    default_propagator,
)
from propulate_hpo.propagators.named import PROPAGATORS, PropagatorName, make_propagator
from propulate_hpo.propagators.nelder_mead import ParallelNelderMead
from propulate_hpo.propagators.nsga2 import (
    CrossoverSBX,
    PolynomialMutation,
    SelectCrowdedTournament,
    nsga2_propagator,
)
from propulate_hpo.propagators.pso import (
    BasicPSO,
    CanonicalPSO,
    ConstrictionPSO,
    VelocityClampingPSO,
)

__all__ = [
    "CMAES",
    "PROPAGATORS",
    "ActiveCMA",
    "BasicCMA",
    "BasicPSO",
    "CanonicalPSO",
    "Compose",
    "Conditional",
    "ConstrictionPSO",
    "CrossoverBlend",
    "CrossoverMultiPoint",
    "CrossoverSBX",
    "CrossoverUniform",
    "DeapToolbox",
    "DefaultGenetic",
    "EliteGaussian",
    "InitUniform",
    "IntervalMutationNormal",
    "Mixture",
    "ParallelNelderMead",
    "PointMutation",
    "PolynomialMutation",
    "Propagator",
    "PropagatorName",
    "RandomPointMutation",
    "SelectBest",
    "SelectCrowdedTournament",
    "SelectTournament",
    "SelectUniform",
    "SelectWorst",
    "Stochastic",
    "VelocityClampingPSO",
    "default_chain",
    "default_propagator",
    "make_propagator",
    "nsga2_propagator",
]
