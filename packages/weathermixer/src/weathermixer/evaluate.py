"""Evaluation with WeatherBench 2 conventions: latitude-weighted RMSE and ACC per variable and
lead time, for the model, persistence, damped persistence and climatology.

Scores the run's test period, or any other data in the reader's formats (``EvaluateConfig.data``)
normalised with the run's statistics. The climatology is fitted to the run's training period or
to a separate multi-year record (``EvaluateConfig.climatology``; see ``weathermixer.metrics``),
the damped persistence to the run's training period (``weathermixer.baselines``). Runs on any
process grid (the checkpoint is resharded): every rank forecasts its band and channels for its
replica's share of the initial times, and partial sums are added over all ranks. ``evaluate``
returns a ``Skill``; ``weathermixer.report`` writes it as JSON and plots.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from shared_hpc import Comm, Headline, UserError, get_comm, load_config, torch_distributed
from shared_hpc.files import jsonable
from weathermixer import checkpoint
from weathermixer.baselines import DampedPersistence
from weathermixer.checkpoint import CheckpointError
from weathermixer.collectives import Group
from weathermixer.config import EvaluateConfig, RunConfig, period_indices
from weathermixer.data import (
    Era5Store,
    ForecastSamples,
    NormStats,
    Shard,
    Variables,
    latitude_weights,
)
from weathermixer.engine import Engine, autocast
from weathermixer.grid import GridSpec, ProcessGrid, check_grid
from weathermixer.metrics import Climatology, SkillSums
from weathermixer.model import ModelConfig
from weathermixer.together import raise_together

SHOWN_CHANNELS = ("z500", "t850", "t2m", "u10", "msl")
KINDS = ("model", "persistence", "damped_persistence", "climatology")
ACC_KINDS = KINDS[:3]  # the climatology's anomaly is zero: no ACC


@dataclass(frozen=True)
class TrainedRun:
    """The newest checkpoint of a training run, with the run's settings and statistics.

    Use ``TrainedRun.open``.

    Attributes:
        folder: The run folder.
        checkpoint: Its newest complete checkpoint.
        config: The settings the run was trained with.
        model: The model the checkpoint holds.
        stats: The normalisation statistics of the run.
    """

    folder: Path
    checkpoint: Path
    config: RunConfig
    model: ModelConfig
    stats: NormStats

    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> TrainedRun:
        """Read what a run folder of ``train`` holds (no weights yet).

        Args:
            folder: The run folder (``RunConfig.output``).

        Raises:
            UserError: No complete checkpoint, or an unreadable one or statistics file.
        """
        folder = Path(folder)
        newest = checkpoint.latest(folder / "checkpoints")
        if newest is None:
            raise CheckpointError(f"no checkpoint under {folder / 'checkpoints'}")
        meta = checkpoint.read_meta(newest)
        if "config" not in meta:
            raise CheckpointError(f"{newest} holds no run config: not written by train")
        config = load_config(RunConfig, meta["config"])
        model = checkpoint.model_config(meta)
        return cls(folder, newest, config, model, NormStats.read(folder / "stats.nc"))


@dataclass(frozen=True)
class Scores:
    """The scores of one forecast (model, persistence, climatology) for one channel.

    Attributes:
        rmse: Latitude-weighted RMSE per lead time, in the channel's units.
        acc: Anomaly correlation coefficient per lead time (``None`` for the climatology).

    """

    rmse: list[float]
    acc: list[float | None]


@dataclass(frozen=True)
class ForecastMap:
    """The first forecast of the test period at the longest lead, on the whole grid.

    Attributes:
        forecast: The forecast, ``[channels, latitude, longitude]``.
        truth: The data at the same time.
        initial_time: When the forecast started.
        latitude: Latitudes of the rows (north to south).
        longitude: Longitudes of the columns.
    """

    forecast: np.ndarray
    truth: np.ndarray
    initial_time: str
    latitude: np.ndarray
    longitude: np.ndarray


@dataclass(frozen=True)
class Skill:
    """Scores of a trained model beside persistence, damped persistence and climatology.

    Attributes:
        leads_h: Lead times in hours.
        channels: The state channels, in the model's order.
        n_forecasts: Initial times scored.
        test_period: First and last initial time.
        data: The data scored (the run's own, or ``EvaluateConfig.data``).
        climatology_source: What the climatology was fitted to.
        climatology_terms: The harmonics of the climatology fit.
        grid: Process grid of the evaluation.
        checkpoint: The checkpoint evaluated.
        seconds: Wall time of the evaluation.
        model: Scores of the model per channel.
        persistence: Scores of persistence (the initial state) per channel.
        damped_persistence: Scores of damped persistence per channel.
        climatology: Scores of the climatology per channel.
        example: The first forecast on the whole grid, on rank 0 (``None`` on the others).
    """

    leads_h: list[float]
    channels: list[str]
    n_forecasts: int
    test_period: tuple[str, str]
    data: str
    climatology_source: str
    climatology_terms: list[str]
    grid: str
    checkpoint: str
    seconds: float
    model: dict[str, Scores]
    persistence: dict[str, Scores]
    damped_persistence: dict[str, Scores]
    climatology: dict[str, Scores]
    example: ForecastMap | None = dataclasses.field(default=None, repr=False)

    @property
    def shown_channels(self) -> list[str]:
        """The channels a summary shows: Z500, T850, T2M, U10, MSL where present."""
        return shown_channels(self.channels)

    def scores(self, kind: str) -> dict[str, Scores]:
        """The scores of one forecast per channel.

        Args:
            kind: One of ``KINDS``.
        """
        if kind not in KINDS:
            raise KeyError(kind)
        return getattr(self, kind)

    def rmse_skill(self, channel: str) -> float:
        """RMSE skill against persistence at the longest lead: 1 − RMSE_model / RMSE_pers.

        Args:
            channel: The channel, e.g. ``"z500"``.
        """
        return 1.0 - self.model[channel].rmse[-1] / self.persistence[channel].rmse[-1]

    def headline(self) -> Headline:
        """The RMSE skill against persistence of the first shown channel (Z500)."""
        channel = self.shown_channels[0]
        return Headline(
            f"{channel.upper()} RMSE skill vs persistence at +{self.leads_h[-1]:g} h "
            "(1 - model/persistence)",
            self.rmse_skill(channel),
        )

    def metrics(self) -> dict[str, Any]:
        """The figures of a run record: skill, RMSE and ACC of the shown channels."""
        shown = self.shown_channels
        return {
            f"{shown[0]}_rmse_skill_vs_persistence": self.rmse_skill(shown[0]),
            "leads_h": self.leads_h,
            "rmse": {k: {c: self.scores(k)[c].rmse for c in shown} for k in KINDS},
            "acc": {k: {c: self.scores(k)[c].acc for c in shown} for k in ACC_KINDS},
            "climatology_source": self.climatology_source,
            "climatology_terms": self.climatology_terms,
            "n_forecasts": self.n_forecasts,
        }

    def to_dict(self) -> dict[str, Any]:
        """Every score as plain JSON values (the content of ``skill.json``)."""
        fields = dataclasses.fields(self)
        return jsonable({f.name: getattr(self, f.name) for f in fields if f.name != "example"})

    def summary(self) -> str:
        """RMSE and ACC of every channel and forecast, a line per channel and score."""
        lines = [f"lead times [h]: {self.leads_h}  ({self.n_forecasts} forecasts)"]
        for name in self.channels:
            for score, kinds in (("rmse", KINDS), ("acc", ACC_KINDS)):
                values = [getattr(self.scores(kind)[name], score) for kind in kinds]
                cells = [
                    f"{kind} {' '.join(f'{x:.3g}' for x in row)}"
                    for kind, row in zip(kinds, values, strict=True)
                ]
                lines.append(f"{name:>6} {score.upper():<4} " + " | ".join(cells))
        return "\n".join(lines)


def shown_channels(channels: list[str]) -> list[str]:
    """The channels a summary shows: Z500, T850, T2M, U10, MSL where present, else the first
    four.

    Args:
        channels: The state channels, in the model's order.
    """
    return [c for c in SHOWN_CHANNELS if c in channels] or channels[:4]


def evaluate(run: TrainedRun, cfg: EvaluateConfig | None = None, comm: Comm | None = None) -> Skill:
    """Score the newest checkpoint of ``run`` (collective over ``comm``).

    Args:
        run: The trained run (``TrainedRun.open``).
        cfg: Data, period, climatology, lead times, initial times, process grid and batch
            size (default: ``EvaluateConfig()``: the run's test period).
        comm: Communicator of all ranks (default: ``get_comm()``).

    Returns:
        The scores, on every rank (the example forecast on rank 0 only).

    Raises:
        UserError: The data is gone or changed, lacks a channel of the model or has another
            grid, a lead time is not a multiple of the run's, or the process grid does not
            fit.
    """
    cfg = cfg or EvaluateConfig()
    comm = get_comm() if comm is None else comm
    data = run.config.data
    spec = GridSpec.parse(cfg.grid)
    check_grid(spec, comm.Get_size(), run.model)
    sources = _Sources.open(run, cfg)
    store = sources.scored
    lead = data.lead_steps(store.interval_s)
    leads_h = cfg.leads_h or [data.lead_time_h * k for k in (1, 4, 12, 20)]
    steps = [h / data.lead_time_h for h in leads_h]
    if any(s < 1 or not float(s).is_integer() for s in steps):
        raise UserError(f"lead times {leads_h} must be multiples of {data.lead_time_h} h")
    k_max = int(max(steps))
    stride = max(1, round(cfg.stride_h * 3600 / store.interval_s))
    if cfg.period:
        test = period_indices("period", cfg.period, store.times)[::stride]
    elif cfg.data:
        test = np.arange(store.times.size)[::stride]
    else:
        test = data.period("test", store.times)[::stride]
    started = time.perf_counter()
    with torch_distributed(comm) as info:
        device = info.device
        pgrid = ProcessGrid.create(spec, run.model)
        engine = Engine(run.model, pgrid, device)
        checkpoint.restore(run.checkpoint, engine, None)
        if data.preload:  # NaNs in one rank's band stop every rank
            raise_together(comm, lambda: store.preload(engine.shard.rows, engine.shard.state))
        stats = run.stats
        engine.set_residual_scale(stats.diff_std / stats.std[: stats.diff_std.size])
        shard = engine.shard
        clim_times = sources.climatology_times
        if clim_times.size > cfg.max_climatology_samples:  # random, so no hour is left out
            rng = np.random.default_rng(0)
            clim_times = np.sort(rng.choice(clim_times, cfg.max_climatology_samples, replace=False))
        clim = Climatology.fit(
            sources.climatology,
            clim_times,
            shard,
            (pgrid.r, pgrid.replicas),
            _sum_over(pgrid.replica),
        )
        # the damped persistence needs consecutive times: the last ones of the training period
        train_times = data.period("train", sources.training.times)[-cfg.max_climatology_samples :]
        damped = DampedPersistence.fit(sources.training, train_times, clim, lead, k_max, shard)
        samples = ForecastSamples(store, stats, lead, test, shard, k_max, run.model.history)
        n = len(samples) if cfg.max_forecasts is None else min(len(samples), cfg.max_forecasts)
        names = store.variables.state_channels
        rows = latitude_weights(store.latitude)[shard.rows]
        n_points = store.shape[0] * store.shape[1]
        sums = {
            kind: SkillSums(n, k_max, len(names), shard.state, rows, n_points) for kind in KINDS
        }
        mine = list(range(pgrid.r, n, pgrid.replicas))
        example = None
        with torch.no_grad():
            for start in range(0, len(mine), cfg.batch_size):
                idx = mine[start : start + cfg.batch_size]
                batch = samples.batch(idx)
                with autocast(device, run.config.train.precision):
                    pred = engine.rollout(batch["state"].to(device), batch["extras"].to(device))
                pred = pred.float().cpu().numpy()
                for j, i in enumerate(idx):
                    t0 = int(samples.times[i])
                    valid = store.times[t0 + lead * np.arange(0, k_max + 1)]
                    c_all = clim.at(valid)
                    c = c_all[1:]
                    truth = samples.denormalise_state(batch["targets"][j].numpy())
                    fc = samples.denormalise_state(pred[j])
                    init = samples.denormalise_state(batch["state"][j, -1].numpy())
                    sums["model"].add(i, fc, truth, c)
                    sums["persistence"].add(i, np.broadcast_to(init, truth.shape), truth, c)
                    sums["damped_persistence"].add(i, damped.forecast(init, c_all[0], c), truth, c)
                    sums["climatology"].add(i, c, truth, c)
                    if i == 0:
                        example = (fc[-1], truth[-1], str(store.times[t0]))
        reduce = _sum_over_world(comm)
        scores = {kind: s.scores(reduce) for kind, s in sums.items()}
        example_map = _gather_example(example, shard, comm, store)
    ks = [int(s) - 1 for s in steps]
    by_kind = {
        kind: {
            name: Scores(
                rmse=[float(r[k, c]) for k in ks],
                acc=[None if kind == "climatology" else float(a[k, c]) for k in ks],
            )
            for c, name in enumerate(names)
        }
        for kind, (r, a) in scores.items()
    }
    return Skill(
        leads_h=list(leads_h),
        channels=names,
        n_forecasts=n,
        test_period=(str(store.times[test[0]]), str(store.times[test[-1]])),
        data=sources.scored_label,
        climatology_source=sources.climatology_label,
        climatology_terms=clim.terms,
        grid=cfg.grid,
        checkpoint=str(run.checkpoint),
        seconds=time.perf_counter() - started,
        example=example_map,
        **by_kind,
    )


@dataclass(frozen=True)
class _Sources:
    """The stores of an evaluation: the run's training data, the data scored (the same or
    ``EvaluateConfig.data``) and the climatology's record, each checked against the model."""

    training: Era5Store
    scored: Era5Store
    scored_label: str
    climatology: Era5Store
    climatology_times: np.ndarray
    climatology_label: str

    @classmethod
    def open(cls, run: TrainedRun, cfg: EvaluateConfig) -> _Sources:
        data = run.config.data
        variables = data.variables
        training = Era5Store(data.path, variables, data.static_path or None)
        scored, scored_label = training, f"the run's data ({data.path})"
        if cfg.data:
            scored = Era5Store(cfg.data, variables, cfg.static_path or None)
            scored_label = cfg.data
        for store, what in ((training, data.path), (scored, cfg.data)):
            if store.shape != tuple(run.model.grid):
                raise UserError(
                    f"{what} has a {store.shape[0]} x {store.shape[1]} grid, the model "
                    f"{run.model.grid[0]} x {run.model.grid[1]}"
                )
        train = data.period("train", training.times)
        if not cfg.climatology:
            first, last = (str(training.times[i])[:10] for i in (train[0], train[-1]))
            label = f"the run's training period ({first} to {last})"
            return cls(training, scored, scored_label, training, train, label)
        record = Era5Store(
            cfg.climatology, Variables(variables.pressure, variables.levels, variables.surface, ())
        )
        if record.shape != scored.shape:
            raise UserError(
                f"climatology record {cfg.climatology} has a {record.shape[0]} x "
                f"{record.shape[1]} grid, the data {scored.shape[0]} x {scored.shape[1]}"
            )
        years = (record.times[-1] - record.times[0]).astype(np.int64) / (365.25 * 86400)
        first, last = str(record.times[0])[:10], str(record.times[-1])[:10]
        label = f"a separate record, {cfg.climatology} ({first} to {last}, {years:.1f} years)"
        return cls(training, scored, scored_label, record, np.arange(record.times.size), label)


def _sum_over_world(comm: Comm) -> Callable[[np.ndarray], np.ndarray]:
    def reduce(a: np.ndarray) -> np.ndarray:
        if comm.Get_size() == 1:
            return a
        from mpi4py import MPI

        out = np.empty_like(a)
        comm.Allreduce(np.ascontiguousarray(a), out, op=MPI.SUM)
        return out

    return reduce


def _sum_over(group: Group) -> Callable[[np.ndarray], np.ndarray]:
    def reduce(a: np.ndarray) -> np.ndarray:
        if group.size == 1:
            return a
        t = torch.from_numpy(np.ascontiguousarray(a))
        dist.all_reduce(t, group=group.pg)
        return t.numpy()

    return reduce


def _gather_example(
    example: tuple[np.ndarray, np.ndarray, str] | None, shard: Shard, comm: Comm, store: Era5Store
) -> ForecastMap | None:
    """The first forecast's full fields on rank 0 (each rank holds a band and channels)."""
    parts = comm.gather((example, shard), root=0)
    if comm.Get_rank() != 0:
        return None
    parts = [p for p in parts if p[0] is not None]
    if not parts:
        return None
    n_state = max(max(s.state) for _, s in parts) + 1
    rows = max(s.rows.stop for _, s in parts)
    width = parts[0][0][0].shape[-1]
    fc, truth = np.zeros((n_state, rows, width)), np.zeros((n_state, rows, width))
    for (f, t, _), s in parts:
        fc[list(s.state), s.rows] = f
        truth[list(s.state), s.rows] = t
    return ForecastMap(fc, truth, parts[0][0][2], store.latitude, store.longitude)
