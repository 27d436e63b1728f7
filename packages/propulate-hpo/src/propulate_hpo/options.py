"""How a search runs, in one dataclass owned by the library: every default is defined here.

``Propulator`` takes a ``SearchOptions``; the keyword arguments of ``propulate(loss, space,
**options)`` and of ``Propulator`` map onto it (``search_options``), and the command line's
``RunConfig`` extends it, so a library user and a command-line user get the same defaults and
every option is also a flag (``--islands``, ``--migration-probability``, ...).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from propulate_hpo.objectives import Objectives
from propulate_hpo.propagators.named import MULTI_OBJECTIVE, PROPAGATORS, PropagatorName
from propulate_hpo.surrogate import BestAtStep
from shared_hpc.errors import UserError

DEFAULT_GENERATIONS = 100  # candidates per worker when no limit is given


def _int_at_least(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise UserError(f"{name} must be >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class SearchOptions:
    """How a search runs: its limits, breeding, islands, checkpoint and seed.

    Attributes:
        generations: Candidates per worker; 100 when none of generations, max_evaluations and
            budget_s is given.
        max_evaluations: Candidates of all workers together (fast workers do more; split among
            the islands by their number of workers).
        budget_s: Wall-clock budget of the whole run in seconds.
        propagator: Breeding method: ga (the paper's GA plus 15 % elite samples), ga-paper (the
            GA alone), a PSO variant, cma, cma-active, nelder-mead, or nsga2 for several
            objectives; none: ga for one loss, nsga2 for several objectives.
        objectives: Objectives of a multi-objective search, each name or name:max, e.g.
            val_accuracy:max,energy_j (time_s and energy_j are measured when the loss does not
            return them); none: one loss.
        pop_size: Breeding pool size; none: 2 x the island's workers, at least 8.
        islands: Number of islands; the workers are shared out evenly.
        island_sizes: Workers per island, e.g. 2,6 (instead of islands).
        migration_probability: Probability per island and generation that a worker sends
            migrants to the other islands.
        migrants: Migrants per island pair and migration event (fully connected islands).
        pollination: Send copies of the best (pollination) instead of migrants.
        ranks_per_worker: Ranks that evaluate one candidate together (the loss function gets
            their communicator).
        early_stopping: Margin of the early-stopping surrogate: a generator loss worse than the
            best loss seen at the same step by this fraction is cancelled.
        checkpoint: Checkpoint directory; a run resumes from what it holds.
        force_resume: Resume a checkpoint made with another loss function (its candidates'
            losses then mix with this run's).
        seed: Seed of the breeding (each worker draws from its own stream).
        log_every: Log each worker's best loss every this many evaluations (0: never).
    """

    generations: int | None = None
    max_evaluations: int | None = None
    budget_s: float | None = None
    propagator: PropagatorName | None = None
    objectives: tuple[str, ...] | None = None
    pop_size: int | None = None
    islands: int = 1
    island_sizes: tuple[int, ...] | None = None
    migration_probability: float = 0.0
    migrants: int = 1
    pollination: bool = False
    ranks_per_worker: int = 1
    early_stopping: float | None = None
    checkpoint: Path | None = None
    force_resume: bool = False
    seed: int = 0
    log_every: int = 0

    @property
    def breeding(self) -> str:
        """The name of the breeding method in force (``propagator`` or its default)."""
        if self.propagator is not None:
            return self.propagator
        return MULTI_OBJECTIVE[0] if self.objectives else "ga"

    def __post_init__(self) -> None:
        if self.generations is None and self.max_evaluations is None and self.budget_s is None:
            object.__setattr__(self, "generations", DEFAULT_GENERATIONS)
        if self.generations is not None:
            _int_at_least("generations", self.generations, 1)
        if self.max_evaluations is not None:
            _int_at_least("max_evaluations", self.max_evaluations, 1)
        if self.budget_s is not None and not self.budget_s > 0:
            raise UserError(f"budget_s must be > 0, got {self.budget_s}")
        if self.propagator is not None and self.propagator not in PROPAGATORS:
            raise UserError(
                f"unknown propagator {self.propagator!r}; choose from {list(PROPAGATORS)}"
            )
        if self.objectives is not None:
            object.__setattr__(self, "objectives", tuple(Objectives(self.objectives).to_list()))
            if self.early_stopping is not None:
                raise UserError("early stopping compares one loss; not with several objectives")
        if self.objectives is not None and self.propagator not in (None, *MULTI_OBJECTIVE):
            raise UserError(
                f"propagator {self.propagator} breeds for one loss; with several objectives use "
                f"{', '.join(MULTI_OBJECTIVE)} (the default) or a DeapToolbox"
            )
        if self.objectives is None and self.propagator in MULTI_OBJECTIVE:
            raise UserError(f"propagator {self.propagator} needs objectives (--objectives)")
        if self.pop_size is not None:
            _int_at_least("pop_size", self.pop_size, 2)
        _int_at_least("islands", self.islands, 1)
        if self.island_sizes is not None:
            sizes = tuple(self.island_sizes)
            if not sizes or min(sizes) < 1:
                raise UserError(f"island sizes must be >= 1, got {list(sizes)}")
            if self.islands not in (1, len(sizes)):
                raise UserError(
                    f"islands = {self.islands} but {len(sizes)} island sizes {list(sizes)}"
                )
            object.__setattr__(self, "island_sizes", sizes)
            object.__setattr__(self, "islands", len(sizes))
        if not 0.0 <= self.migration_probability <= 1.0:
            raise UserError(
                f"migration_probability must be in [0, 1], got {self.migration_probability}"
            )
        _int_at_least("migrants", self.migrants, 0)
        _int_at_least("ranks_per_worker", self.ranks_per_worker, 1)
        if self.early_stopping is not None:
            BestAtStep(self.early_stopping)  # refuses a margin it cannot work with
        if self.checkpoint is not None:
            object.__setattr__(self, "checkpoint", Path(self.checkpoint))
        _int_at_least("seed", self.seed, 0)
        _int_at_least("log_every", self.log_every, 0)


def search_options(options: SearchOptions | None = None, /, **settings: Any) -> SearchOptions:
    """``options`` (default: every default) with the keyword ``settings`` of the Python API.

    Besides the field names of ``SearchOptions``, ``checkpoint_dir`` stands for ``checkpoint``
    and a sequence given as ``islands`` for ``island_sizes``.

    Args:
        options: The options to start from.
        **settings: Fields to set.

    Returns:
        New options, checked.

    Raises:
        TypeError: A keyword that names no option.
        UserError: A value the options refuse.
    """
    if "checkpoint_dir" in settings:
        if "checkpoint" in settings:
            raise TypeError("give checkpoint or checkpoint_dir, not both")
        settings["checkpoint"] = settings.pop("checkpoint_dir")
    islands = settings.get("islands")
    if isinstance(islands, Sequence) and not isinstance(islands, str):
        settings["island_sizes"] = tuple(settings.pop("islands"))
    names = {f.name for f in dataclasses.fields(SearchOptions)}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise TypeError(
            f"unexpected option {unknown[0]!r}; the options are {', '.join(sorted(names))}"
        )
    if options is None:
        return SearchOptions(**settings)
    return dataclasses.replace(options, **settings) if settings else options
