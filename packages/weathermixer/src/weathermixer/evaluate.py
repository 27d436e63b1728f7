"""Evaluation with WeatherBench 2 conventions: latitude-weighted RMSE and ACC per variable and
lead time over the test period, for the model, persistence and climatology.

Runs on any process grid (the checkpoint is resharded): every rank forecasts its band and
channels for its replica's share of the initial times, and partial sums are added over all
ranks. The climatology is fitted to the training period (see
:class:`weathermixer.metrics.Climatology`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from shared_hpc import get_comm, load_config, write_json_atomic
from weathermixer import checkpoint
from weathermixer.config import RunConfig
from weathermixer.data import Era5Store, ForecastSamples, NormStats, latitude_weights
from weathermixer.engine import Engine
from weathermixer.grid import GridSpec, ProcessGrid, check_grid
from weathermixer.metrics import Climatology, SkillSums
from weathermixer.train import autocast, distributed, pick_device

HEADLINE_CHANNELS = ("z500", "t850", "t2m", "u10", "msl")


def _sum_over_world(comm: Any) -> Any:
    def reduce(a: np.ndarray) -> np.ndarray:
        if comm.Get_size() == 1:
            return a
        from mpi4py import MPI

        out = np.empty_like(a)
        comm.Allreduce(np.ascontiguousarray(a), out, op=MPI.SUM)
        return out

    return reduce


def _sum_over(group: Any) -> Any:
    def reduce(a: np.ndarray) -> np.ndarray:
        if group.size == 1:
            return a
        t = torch.from_numpy(np.ascontiguousarray(a))
        dist.all_reduce(t, group=group.pg)
        return t.numpy()

    return reduce


def evaluate(
    run_dir: str | Path,
    output: str | Path | None = None,
    leads_h: list[float] | None = None,
    stride_h: float = 24.0,
    grid: str = "1x1",
    batch_size: int = 4,
    max_forecasts: int | None = None,
    comm: Any = None,
    plots: bool = True,
    max_climatology_samples: int = 8000,
) -> dict[str, Any] | None:
    """Score the latest checkpoint of ``run_dir`` on the test period; rank 0 returns the table.

    Writes ``skill.json`` (and PNG plots) to ``output`` (default: the run directory). The
    climatology is fitted to at most ``max_climatology_samples`` training times.
    """
    comm = comm or get_comm()
    run_dir = Path(run_dir)
    ckpt = checkpoint.latest(run_dir / "checkpoints")
    if ckpt is None:
        raise FileNotFoundError(f"no checkpoint under {run_dir / 'checkpoints'}")
    meta = checkpoint.read_meta(ckpt)
    cfg = load_config(RunConfig, meta["config"])
    model_cfg = checkpoint.model_config(meta)
    spec = GridSpec.parse(grid)
    check_grid(spec, comm.Get_size(), model_cfg)
    store = Era5Store(cfg.data.path, cfg.data.variables, cfg.data.static_path or None)
    stats = NormStats.read(run_dir / "stats.nc")
    lead = cfg.data.lead_steps(store.interval_s)
    leads_h = leads_h or [cfg.data.lead_time_h * k for k in (1, 4, 12, 20)]
    steps = [h / cfg.data.lead_time_h for h in leads_h]
    if any(s < 1 or not float(s).is_integer() for s in steps):
        raise ValueError(f"lead times {leads_h} must be multiples of {cfg.data.lead_time_h} h")
    k_max = int(max(steps))
    stride = max(1, round(stride_h * 3600 / store.interval_s))
    test = cfg.data.period("test", store.times)[::stride]
    output = Path(output) if output else run_dir
    started = time.perf_counter()
    with distributed(comm) as info:
        device = pick_device(info)
        pgrid = ProcessGrid.create(spec, model_cfg)
        engine = Engine(model_cfg, pgrid, device)
        checkpoint.restore(ckpt, engine, None)
        if cfg.data.preload:
            store.preload(engine.shard.rows, engine.shard.state)
        engine.set_residual_scale(stats.diff_std / stats.std[: stats.diff_std.size])
        shard = engine.shard
        train_times = cfg.data.period("train", store.times)
        if train_times.size > max_climatology_samples:  # random, so no hour is left out
            rng = np.random.default_rng(0)
            train_times = np.sort(rng.choice(train_times, max_climatology_samples, replace=False))
        clim = Climatology.fit(
            store, train_times, shard, (pgrid.r, pgrid.replicas), _sum_over(pgrid.replica)
        )
        samples = ForecastSamples(store, stats, lead, test, shard, k_max, model_cfg.history)
        n = len(samples) if max_forecasts is None else min(len(samples), max_forecasts)
        names = store.variables.state_channels
        rows = latitude_weights(store.latitude)[shard.rows]
        n_points = store.shape[0] * store.shape[1]
        sums = {
            kind: SkillSums(n, k_max, len(names), shard.state, rows, n_points)
            for kind in ("model", "persistence", "climatology")
        }
        mine = list(range(pgrid.r, n, pgrid.replicas))
        example = None
        with torch.no_grad():
            for start in range(0, len(mine), batch_size):
                idx = mine[start : start + batch_size]
                batch = samples.batch(idx)
                with autocast(device, cfg.train.precision):
                    pred = engine.rollout(batch["state"].to(device), batch["extras"].to(device))
                pred = pred.float().cpu().numpy()
                for j, i in enumerate(idx):
                    t0 = int(samples.times[i])
                    valid = store.times[t0 + lead * np.arange(1, k_max + 1)]
                    c = clim.at(valid)
                    truth = samples.denormalise_state(batch["targets"][j].numpy())
                    fc = samples.denormalise_state(pred[j])
                    init = samples.denormalise_state(batch["state"][j, -1].numpy())
                    sums["model"].add(i, fc, truth, c)
                    sums["persistence"].add(i, np.broadcast_to(init, truth.shape), truth, c)
                    sums["climatology"].add(i, c, truth, c)
                    if i == 0:
                        example = (fc[-1], truth[-1], str(store.times[t0]))
        reduce = _sum_over_world(comm)
        scores = {kind: s.scores(reduce) for kind, s in sums.items()}
        maps = _gather_example(example, shard, comm) if plots else None
    if comm.Get_rank() != 0:
        return None
    ks = [int(s) - 1 for s in steps]
    table: dict[str, Any] = {
        "leads_h": leads_h,
        "channels": names,
        "n_forecasts": n,
        "test_period": [str(store.times[test[0]]), str(store.times[test[-1]])],
        "climatology_terms": clim.terms,
        "grid": grid,
        "checkpoint": str(ckpt),
        "seconds": time.perf_counter() - started,
    }
    for kind, (r, a) in scores.items():
        table[kind] = {
            name: {
                "rmse": [float(r[k, c]) for k in ks],
                "acc": [None if kind == "climatology" else float(a[k, c]) for k in ks],
            }
            for c, name in enumerate(names)
        }
    output.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output / "skill.json", table)
    if plots:
        from weathermixer.plots import map_plot, skill_plot

        shown = [c for c in HEADLINE_CHANNELS if c in names] or names[:4]
        skill_plot(table, shown, output / "skill_vs_lead.png")
        if maps is not None:
            channel = shown[0]
            c = names.index(channel)
            fc, truth, when = maps
            map_plot(
                store.latitude,
                store.longitude,
                {"truth": truth[c], "forecast": fc[c], "error": fc[c] - truth[c]},
                f"{channel} at +{leads_h[-1]:g} h from {when}",
                output / f"map_{channel}.png",
            )
    return table


def _gather_example(example: Any, shard: Any, comm: Any) -> Any:
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
    return fc, truth, parts[0][0][2]


def headline_skill(table: dict[str, Any], channel: str = "z500") -> float:
    """RMSE skill vs persistence at the longest lead: 1 − RMSE_model / RMSE_persistence."""
    model = table["model"][channel]["rmse"][-1]
    pers = table["persistence"][channel]["rmse"][-1]
    return 1.0 - model / pers
