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
from propulate_hpo.options import SearchOptions
from propulate_hpo.surrogate import BestAtStep
from shared_hpc.errors import UserError

BenchmarkName = Literal[tuple(BENCHMARKS)]  # type: ignore[valid-type]
EARLY_STOPPING_FROM_EPOCH = 2  # the demo judges candidates from their third epoch on


@dataclass(frozen=True)
class RunConfig(SearchOptions):
    """One ``propulate-hpo run``: a benchmark function or your loss, and the search options.

    Attributes:
        function: A benchmark function of the paper to minimise.
        dim: The benchmark function's dimension; none: the paper's.
        loss: Your loss function instead: package.module:function or path/to/file.py:function.
        space: TOML search space of your loss function.
    """

    function: BenchmarkName | None = None
    dim: int | None = None
    loss: str | None = None
    space: Path | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.function is None) == (self.loss is None):
            raise UserError("give either a benchmark function or a loss 'module:function'")
        if self.loss is not None and self.space is None:
            raise UserError("a loss function needs a search space file (--space)")
        if self.loss is not None and ":" not in self.loss:
            raise UserError(f"loss must look like 'package.module:function', got {self.loss!r}")
        if self.function is not None and self.function not in BENCHMARKS:
            raise UserError(
                f"unknown benchmark function {self.function!r}; choose from {sorted(BENCHMARKS)}"
            )


@dataclass(frozen=True)
class DemoConfig:
    """The digits demo: an MLP tuned on scikit-learn's handwritten digits.

    Attributes:
        generations: Candidates per worker.
        budget_s: Wall-clock budget of the search in seconds.
        ranks_per_worker: Ranks that train one candidate together (data parallel).
        early_stopping: Cancel a candidate whose validation loss is worse than the best at the
            same epoch by this fraction (from its third epoch on).
        seed: Seed of the search.
    """

    generations: int = 64
    budget_s: float = 40.0
    ranks_per_worker: int = SearchOptions.ranks_per_worker
    early_stopping: float = 0.5
    seed: int = SearchOptions.seed

    def __post_init__(self) -> None:
        self.options()  # checks every value as the search will
        self.surrogate()

    def options(self, checkpoint: Path | None = None) -> SearchOptions:
        """The search options of the demo.

        Args:
            checkpoint: The checkpoint directory of the search.
        """
        return SearchOptions(
            generations=self.generations,
            budget_s=self.budget_s,
            ranks_per_worker=self.ranks_per_worker,
            seed=self.seed,
            checkpoint=checkpoint,
        )

    def surrogate(self) -> BestAtStep:
        """The early stopping of the demo's candidates."""
        return BestAtStep(margin=self.early_stopping, min_step=EARLY_STOPPING_FROM_EPOCH)
