"""Many series of the same cycle: one model trained across all of them, beside one per series.

Each series keeps its own scalers (fitted on its own training span) and its own residual
reference; the global network sees the windows of every series in its batches. Both ways are
scored on each series' test span; MASE, being scale-free, compares them across series.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from recycle_ts.config import ForecastConfig
from recycle_ts.data import EMBEDDED, CycleSeries, read_csv, to_cycles
from recycle_ts.forecaster import Forecaster
from recycle_ts.model import Window, build_network
from recycle_ts.training import fit, score_model, set_up, train_network
from shared_hpc import Comm, EnergyMeter, Headline, SerialComm, UserError, file_fingerprint


def split_by_series(frame: pd.DataFrame, column: str) -> dict[str, pd.DataFrame]:
    """One table per value of the series-id ``column``.

    Raises:
        UserError: The column is missing, holds fewer than two series, or an id that cannot
            name a folder (each series' model is saved under its id).
    """
    if column not in frame.columns:
        raise UserError(f"the data have no series column {column!r}")
    groups = {str(key): part.drop(columns=column) for key, part in frame.groupby(column)}
    unsafe = [k for k in groups if not re.fullmatch(r"[A-Za-z0-9_.-]+", k) or set(k) == {"."}]
    if unsafe:
        raise UserError(f"series id {unsafe[0]!r} cannot name a folder; use letters, digits, _.-")
    if len(groups) < 2:
        raise UserError(f"column {column!r} holds {len(groups)} series; many need at least 2")
    return groups


def load_collection(
    csv: Path | None, dataset: str | None, config: ForecastConfig
) -> tuple[dict[str, CycleSeries], dict[str, Any]]:
    """Every series of a CSV file (or an embedded data set) with a series-id column, and the
    data's fingerprint.

    Raises:
        UserError: Neither or both sources, bad data in any series (the message names it), or
            cycles that differ.
    """
    if (csv is None) == (dataset is None):
        raise UserError("give exactly one of --csv FILE and --dataset NAME")
    if csv is not None:
        frame, fingerprint = read_csv(csv, config.date_column), file_fingerprint(csv)
    else:
        frame = EMBEDDED[dataset][0]()
        fingerprint = {"name": dataset, "rows": len(frame)}
    collection = {}
    for key, part in split_by_series(frame, config.series_column).items():
        try:
            collection[key] = to_cycles(part, config.date_column, config.target,
                                        config.covariates, config.cycle_length,
                                        config.timezone)  # fmt: skip
        except UserError as err:
            raise UserError(f"series {key}: {err}") from None
    cycles = {s.cycle for s in collection.values()}
    if len(cycles) > 1:
        raise UserError(f"the series have different cycles {sorted(cycles)}; pass --cycle")
    return collection, fingerprint


@dataclass
class ManyResult:
    """One model across many series, and one model per series.

    Attributes:
        forecasters: Per series, the global model with that series' scalers and reference.
        test: Per series: ``{"global": scores, "local": scores}``.
        train_seconds: ``{"global": s, "local": s}`` (local: all series together).
        train_joules: ``{"global": J, "local": J}``.
        energy_method: How the energy was obtained.
    """

    forecasters: dict[str, Forecaster]
    test: dict[str, dict[str, dict[str, float]]]
    train_seconds: dict[str, float]
    train_joules: dict[str, float]
    energy_method: str

    def mean(self, way: str, metric: str) -> float:
        return statistics.mean(scores[way][metric] for scores in self.test.values())

    def metrics(self) -> dict[str, Any]:
        return {
            "series": len(self.test),
            "test": self.test,
            "mean_test_mase": {way: self.mean(way, "mase") for way in ("global", "local")},
            "mean_test_mae": {way: self.mean(way, "mae") for way in ("global", "local")},
            "train_seconds": self.train_seconds,
            "train_joules": self.train_joules,
            "energy_method": self.energy_method,
        }

    def headline(self) -> Headline:
        model = next(iter(self.forecasters.values())).config.model
        return Headline(
            f"mean test MASE of one {model} across {len(self.test)} series "
            f"(one per series: {self.mean('local', 'mase'):.4g})",
            self.mean("global", "mase"),
            higher_is_better=False,
        )


def _concat(parts: list[Window]) -> Window:
    return Window(**{k: torch.cat([getattr(p, k) for p in parts]) for k in vars(parts[0])})


def fit_many(
    collection: dict[str, CycleSeries],
    config: ForecastConfig,
    data: dict[str, Any] | None = None,
    comm: Comm | None = None,
) -> ManyResult:
    """Train one ``config.model`` across ``collection`` and one per series; score both.

    Raises:
        UserError: Fewer than two series, cycles or time steps that differ, or a series too
            short for the split.
    """
    if len(collection) < 2:
        raise UserError("many series need at least 2")
    if len({(s.cycle, s.step) for s in collection.values()}) > 1:
        raise UserError("the series differ in cycle length or time step")
    comm = SerialComm() if comm is None else comm
    setups = {key: set_up(series, config, data) for key, series in collection.items()}
    first_key = next(iter(collection))
    torch.manual_seed(config.seed)
    network = build_network(setups[first_key].forecaster.shape(collection[first_key]), config)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)
    train = _concat([s.train for s in setups.values()])
    validation = _concat([s.validation for s in setups.values()])
    with EnergyMeter(comm) as meter:
        history, _ = train_network(network, train, validation, config, optimizer=optimizer)
    forecasters, test = {}, {}
    local_seconds = local_joules = 0.0
    for key, series in collection.items():
        forecasters[key] = replace(setups[key].forecaster, network=network)
        _, scores = score_model(forecasters[key], series, setups[key].split)
        alone = fit(series, config, data, references=False, comm=comm)
        local_seconds += alone.train_seconds
        local_joules += alone.train_joules
        test[key] = {"global": scores, "local": alone.test[config.model]}
    return ManyResult(
        forecasters,
        test,
        {"global": history[-1].seconds, "local": local_seconds},
        {"global": meter.report.total_joules, "local": local_joules},
        meter.report.method,
    )
