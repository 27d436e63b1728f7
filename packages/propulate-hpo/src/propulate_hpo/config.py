"""Settings of the commands: what a ``propulate-hpo run`` optimises and how, and the demo's.

``RunConfig`` extends the library's ``SearchOptions`` with the function to minimise, so every
option of a search is a flat flag of ``propulate-hpo run`` (``--islands``, ``--generations``)
and a key of its ``--config`` TOML file, with the same defaults as in the Python API.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from propulate_hpo.functions import BENCHMARKS
from propulate_hpo.mo_functions import MO_BENCHMARKS
from propulate_hpo.options import SearchOptions
from shared_hpc.errors import UserError

BenchmarkName = Literal[(*BENCHMARKS, *MO_BENCHMARKS)]  # type: ignore[valid-type]
DEMO_OBJECTIVES = ("val_accuracy:max", "energy_j")  # what the demo trades off


@dataclass(frozen=True)
class RunConfig(SearchOptions):
    """One ``propulate-hpo run``: a benchmark function or your loss, and the search options.

    Attributes:
        function: A benchmark function of the paper to minimise, or a multi-objective test
            problem (zdt1, zdt2, zdt3, dtlz2; objectives f1, f2, ...).
        dim: The benchmark function's dimension; none: the paper's.
        loss: Your loss function instead: package.module:function or path/to/file.py:function.
        space: TOML search space of your loss function.
    """

    function: BenchmarkName | None = None
    dim: int | None = None
    loss: str | None = None
    space: Path | None = None

    def __post_init__(self) -> None:
        problem = MO_BENCHMARKS.get(self.function or "")
        if problem is not None and self.objectives is None:
            object.__setattr__(self, "objectives", problem.objectives)
        super().__post_init__()
        if problem is not None and len(self.objectives or ()) != problem.n_objectives:
            raise UserError(
                f"{self.function} has the objectives {', '.join(problem.objectives)}, "
                f"not {', '.join(self.objectives or ())}"
            )
        if self.function in BENCHMARKS and self.objectives is not None:
            raise UserError(f"{self.function} has one objective; objectives are for zdt1, ...")
        if (self.function is None) == (self.loss is None):
            raise UserError("give either a benchmark function or a loss 'module:function'")
        if self.loss is not None and self.space is None:
            raise UserError("a loss function needs a search space file (--space)")
        if self.loss is not None and ":" not in self.loss:
            raise UserError(f"loss must look like 'package.module:function', got {self.loss!r}")
        known = sorted([*BENCHMARKS, *MO_BENCHMARKS])
        if self.function is not None and self.function not in known:
            raise UserError(f"unknown benchmark function {self.function!r}; choose from {known}")


@dataclass(frozen=True)
class DemoConfig:
    """The digits demo: an MLP tuned on scikit-learn's handwritten digits for validation
    accuracy and energy at once.

    Attributes:
        generations: Candidates per worker.
        budget_s: Wall-clock budget of the search in seconds.
        ranks_per_worker: Ranks that train one candidate together (data parallel).
        islands: Islands (at most one per worker).
        migration_probability: Probability per island and candidate of sending a migrant.
        launch_ranks: Ranks the demo starts under mpiexec when it runs as one process and an
            MPI launcher is found (0: run in this process).
        seed: Seed of the search.
    """

    generations: int = 64
    budget_s: float = 30.0
    ranks_per_worker: int = SearchOptions.ranks_per_worker
    islands: int = 2
    migration_probability: float = 0.3
    launch_ranks: int = 4
    seed: int = SearchOptions.seed

    def __post_init__(self) -> None:
        self.options(workers=self.islands)  # checks every value as the search will
        if self.launch_ranks < 0:
            raise UserError(f"launch_ranks must be >= 0, got {self.launch_ranks}")

    def options(self, checkpoint: Path | None = None, workers: int = 1) -> SearchOptions:
        """The search options of the demo.

        Args:
            checkpoint: The checkpoint directory of the search.
            workers: Workers of the run (islands are at most one per worker).
        """
        return SearchOptions(
            generations=self.generations,
            budget_s=self.budget_s,
            ranks_per_worker=self.ranks_per_worker,
            islands=max(1, min(self.islands, workers)),
            migration_probability=self.migration_probability,
            objectives=DEMO_OBJECTIVES,
            seed=self.seed,
            checkpoint=checkpoint,
        )
