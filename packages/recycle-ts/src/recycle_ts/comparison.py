"""Several models on one series, side by side: accuracy, training time and energy per run.

Every model is trained by the same loop on the same split; the profiles and Holt-Winters are
scored on the same test windows, once. Each training loop is measured by its own
``EnergyMeter`` (inside a command's ``Recorder`` it shares the recorder's sensors). Each
network may first be tuned on the validation windows (``tune``), as Holt-Winters' form and
the residual reference are, so that no model is compared at a weak default.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from recycle_ts.config import ForecastConfig
from recycle_ts.data import CycleSeries
from recycle_ts.model import WIDTHLESS
from recycle_ts.training import FitResult, fit, score_references
from shared_hpc import Comm, Headline, SerialComm


@dataclass(frozen=True)
class Run:
    """One model trained with one seed.

    Attributes:
        model: The model's name.
        seed: The seed.
        result: The fit and its test scores.
        joules: Energy of the training run.
        energy_method: How the energy was obtained (``rapl``, ``estimated``, ...).
    """

    model: str
    seed: int
    result: FitResult
    joules: float
    energy_method: str


@dataclass(frozen=True)
class Comparison:
    """Every model's runs on one series.

    Attributes:
        runs: All runs, model by model.
        references: Test scores of every profile and Holt-Winters.
    """

    runs: list[Run]
    references: dict[str, dict[str, float]]

    def models(self) -> list[str]:
        return list(dict.fromkeys(r.model for r in self.runs))

    def rows(self) -> list[dict[str, Any]]:
        """Per model and per reference: median test MAE and MASE over the seeds, median
        training seconds and joules (references: fitted, not trained, so none)."""
        rows = []
        for model in self.models():
            runs = [r for r in self.runs if r.model == model]
            rows.append({
                "name": model,
                "kind": "network",
                "seeds": len(runs),
                "mae": statistics.median(r.result.test[model]["mae"] for r in runs),
                "mase": statistics.median(r.result.test[model]["mase"] for r in runs),
                "train_seconds": statistics.median(r.result.train_seconds for r in runs),
                "joules": statistics.median(r.joules for r in runs),
                "energy_method": runs[0].energy_method,
                "parameters": runs[0].result.parameters,
            })  # fmt: skip
        for name, scores in self.references.items():
            rows.append({"name": name, "kind": "reference", "seeds": 1, "mae": scores["mae"],
                             "mase": scores["mase"], "train_seconds": None, "joules": None,
                             "energy_method": "", "parameters": 0})  # fmt: skip
        return rows

    def metrics(self) -> dict[str, Any]:
        """``test_mae.<name>``, ``test_mase.<name>``, ``train_seconds.<model>``,
        ``joules.<model>`` for a script to compare."""
        rows = self.rows()
        out: dict[str, Any] = {"test_mae": {r["name"]: r["mae"] for r in rows},
                               "test_mase": {r["name"]: r["mase"] for r in rows}}  # fmt: skip
        networks = [r for r in rows if r["kind"] == "network"]
        out["train_seconds"] = {r["name"]: r["train_seconds"] for r in networks}
        out["joules"] = {r["name"]: r["joules"] for r in networks}
        out["energy_method"] = networks[0]["energy_method"]
        return out

    def headline(self) -> Headline:
        """The first model's median test MAE, naming the best reference's."""
        rows = self.rows()
        model = rows[0]
        references = [r for r in rows if r["kind"] == "reference"]
        best = min(references, key=lambda r: r["mae"])
        return Headline(
            f"test MAE of {model['name']} (best baseline {best['name']}: {best['mae']:.4g})",
            model["mae"],
            higher_is_better=False,
        )


GRID: dict[str, tuple[Any, ...]] = {"width": (32, 64), "lr": (1e-3, 3e-3)}
"""The settings ``tune`` tries for every network: its size and learning rate."""


@dataclass(frozen=True)
class Tuning:
    """Settings of one network chosen on the validation windows.

    Attributes:
        model: The network.
        chosen: The settings with the lowest best validation loss.
        trials: Every setting tried and its best validation loss.
    """

    model: str
    chosen: dict[str, Any]
    trials: list[tuple[dict[str, Any], float]]


def tune(
    series: CycleSeries,
    config: ForecastConfig,
    model: str,
    grid: Mapping[str, Sequence[Any]] = GRID,
    comm: Comm | None = None,
) -> Tuning:
    """Try every combination of ``grid`` for ``model`` (seed ``config.seed``) and keep the one
    with the lowest validation loss; the test span is never looked at."""
    if model in WIDTHLESS:
        grid = {k: v for k, v in grid.items() if k != "width"}
    trials = []
    for values in itertools.product(*grid.values()):
        settings = dict(zip(grid, values, strict=True))
        result = fit(series, replace(config, model=model, **settings), references=False,
                     comm=comm)  # fmt: skip
        trials.append((settings, min(r.validation_loss for r in result.history)))
    return Tuning(model, min(trials, key=lambda t: t[1])[0], trials)


def compare(
    series: CycleSeries,
    config: ForecastConfig,
    models: Sequence[str],
    seeds: Sequence[int],
    data: dict[str, Any] | None = None,
    comm: Comm | None = None,
    progress: Callable[[Run], None] | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> Comparison:
    """Train each of ``models`` with each of ``seeds`` on ``series``, measuring each run.

    Args:
        series: The data.
        config: Settings shared by all models (``model`` and ``seed`` are replaced).
        models: Model names, the first one is the headline's.
        seeds: Seeds.
        data: Fingerprint of the data.
        comm: Ranks measured together (default: this process alone).
        progress: Called after each run.
        settings: Per model, settings that replace ``config``'s (e.g. ``Tuning.chosen``).
    """
    comm = SerialComm() if comm is None else comm
    settings = settings or {}
    runs = []
    for seed in seeds:  # seeds outermost: models alternate, so load drifts hit all alike
        for model in models:
            own = replace(config, model=model, seed=seed, **settings.get(model, {}))
            result = fit(series, own, data, references=False, comm=comm)
            run = Run(model, seed, result, result.train_joules, result.energy_method)
            runs.append(run)
            if progress is not None:
                progress(run)
    runs.sort(key=lambda r: list(models).index(r.model))
    references, _ = score_references(series, config)  # they do not depend on the network
    return Comparison(runs, references)
