"""Hyperparameter search over MPI ranks with propulate-hpo (the ``[hpo]`` extra).

Every rank is a worker that trains candidates on its own (asynchronous evolution, no barrier
per generation). A candidate's loss is its best validation loss (scaled L1 or pinball), never
a test figure; the best candidate is then retrained and scored on the test span beside every
profile and Holt-Winters.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from recycle_ts.config import BASELINES, ForecastConfig
from recycle_ts.data import CycleSeries
from recycle_ts.training import FitResult, fit
from shared_hpc import Comm, Headline, UserError, get_comm


def search_space() -> dict[str, Any]:
    """The network's size, dropout, learning rate and residual reference."""
    try:
        from propulate_hpo import Categorical, Float, Int
    except ImportError:
        raise UserError(
            "the hpo command needs propulate-hpo: pip install recycle-ts[hpo]"
        ) from None
    return {
        "width": Categorical((16, 32, 64, 128)),
        "layers": Int(1, 2),
        "dropout": Float(0.0, 0.3),
        "lr": Float(1e-4, 3e-3, log=True),
        "baseline": Categorical(BASELINES),
    }


@dataclass
class SearchResult:
    """A finished search and the retrained best candidate.

    Attributes:
        candidates: Every evaluation: loss (best validation loss), params, worker.
        best_params: The winning settings.
        best: The best candidate retrained, with its test scores beside the references.
    """

    candidates: list[dict[str, Any]]
    best_params: dict[str, Any]
    best: FitResult

    def metrics(self) -> dict[str, Any]:
        return {
            "evaluations": len(self.candidates),
            "candidates": self.candidates,
            "best_params": self.best_params,
            "best_validation_loss": self.best.metrics()["validation_loss"],
            **{f"best_{k}": v for k, v in self.best.metrics().items()},
        }

    def headline(self) -> Headline:
        fit_headline = self.best.headline()
        return Headline(f"tuned {fit_headline.name}", fit_headline.value, higher_is_better=False)


def search(
    series: CycleSeries,
    config: ForecastConfig,
    generations: int,
    comm: Comm | None = None,
    seed: int = 0,
) -> SearchResult:
    """Tune ``config.model`` on ``series`` with ``generations`` candidates per worker rank.

    Args:
        series: The data.
        config: Settings outside the search space.
        generations: Candidates each rank evaluates.
        comm: The ranks; each one is a worker (default: ``get_comm()``).
        seed: Seed of the breeding.

    Raises:
        UserError: propulate-hpo is missing, or ``generations`` < 1.
    """
    if generations < 1:
        raise UserError(f"generations must be >= 1, got {generations}")
    space = search_space()
    from propulate_hpo import propulate

    comm = get_comm() if comm is None else comm

    def loss(params: dict[str, Any]) -> float:
        result = fit(series, replace(config, **params), references=False)
        return min(r.validation_loss for r in result.history)

    outcome = propulate(loss, space, generations=generations, seed=seed, comm=comm)
    candidates = [{"loss": float(r["loss"]), "params": r["params"], "worker": r["worker"]}
                  for r in outcome.best(outcome.n_evaluations)]  # fmt: skip
    best_params = outcome.best_params
    if best_params is None:
        raise UserError("no candidate finished; see the errors above")
    best = fit(series, replace(config, **best_params))
    return SearchResult(candidates, best_params, best)
