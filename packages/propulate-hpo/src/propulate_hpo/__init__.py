"""Asynchronous, massively parallel evolutionary hyperparameter optimisation over MPI.

A reimplementation of Propulate (Taubert et al., arXiv:2301.08713): every MPI rank breeds,
evaluates and shares candidates on its own, without a barrier per generation. ``import
propulate_hpo`` stays light (numpy and shared-hpc); pandas, matplotlib, mpi4py and torch load
when used.
"""

from propulate_hpo.__about__ import __version__
from propulate_hpo.checkpoint import CheckpointError
from propulate_hpo.config import RunConfig
from propulate_hpo.functions import BENCHMARKS, benchmark
from propulate_hpo.layout import fully_connected
from propulate_hpo.options import SearchOptions
from propulate_hpo.propulator import Propulator, propulate
from propulate_hpo.results import Result
from propulate_hpo.search import load_loss, run_search
from propulate_hpo.space import Categorical, Float, Int, SearchSpace, SearchSpaceError
from propulate_hpo.summary import CheckpointSummary, summarize_checkpoint
from propulate_hpo.surrogate import BestAtStep, Surrogate

__all__ = [
    "BENCHMARKS",
    "BestAtStep",
    "Categorical",
    "CheckpointError",
    "CheckpointSummary",
    "Float",
    "Int",
    "Propulator",
    "Result",
    "RunConfig",
    "SearchOptions",
    "SearchSpace",
    "SearchSpaceError",
    "Surrogate",
    "__version__",
    "benchmark",
    "fully_connected",
    "load_loss",
    "propulate",
    "run_search",
    "summarize_checkpoint",
]
