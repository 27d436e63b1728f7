"""Training: latitude-weighted MSE, AdamW with warm-up and cosine decay, bf16 autocast on GPU,
rollout fine-tuning, sharded checkpoints with resume, energy measured.

The same function runs as a plain process, under ``mpiexec``/``srun`` with pure data
parallelism (grid 1×1) or with a Jigsaw grid; every rank reads only its own part of the data.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared_hpc import EnergyMeter, RunRecord, config_to_dict, get_comm
from weathermixer import checkpoint
from weathermixer.__about__ import __version__
from weathermixer.config import RunConfig
from weathermixer.data import Era5Store, ForecastSamples, NormStats, compute_stats
from weathermixer.engine import Engine
from weathermixer.grid import ProcessGrid, check_grid
from weathermixer.model import ModelConfig, flops_per_sample


@contextlib.contextmanager
def distributed(comm: Any) -> Iterator[Any]:
    """``torch.distributed`` for more than one rank; nothing for a plain process."""
    if comm.Get_size() == 1:
        yield None
        return
    from shared_hpc import torch_distributed

    with torch_distributed(comm) as info:
        yield info


def set_threads(threads: int | None, comm: Any) -> int:
    """Torch CPU threads per rank: ``threads`` or this rank's share of the node's cores.

    Oversubscribed OpenMP threads spin against each other (10× slower on a busy 2-core
    machine), so ranks that share a node split its cores.
    """
    if threads is None:
        from shared_hpc import rank_info

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        per_node = max(1, comm.Get_size() // max(1, rank_info(comm).num_nodes))
        threads = max(1, (cores or 1) // per_node)
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    return threads


def pick_device(info: Any) -> torch.device:
    if info is not None:
        return info.device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on GPU by default ('auto'), on request ('bf16') anywhere."""
    use = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if not use:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def batch_indices(step: int, n: int, batch: int, replicas: int, replica: int, seed: int) -> list:
    """The sample indices replica ``replica`` uses at ``step``: a fresh permutation per epoch,
    the same on every rank, so resuming at a step needs no sampler state."""
    per_epoch = n // (batch * replicas)
    if per_epoch == 0:
        raise ValueError(
            f"{n} training samples are fewer than one global batch ({batch} × {replicas} replicas)"
        )
    epoch, pos = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    start = (pos * replicas + replica) * batch
    return order[start : start + batch].tolist()


def prepare(cfg: RunConfig, comm: Any) -> tuple[Era5Store, ModelConfig, int]:
    """Open and check the data, the model shape and the grid: fails before any heavy work."""
    cfg.train.check()
    if not cfg.data.path:
        raise ValueError("no data: set data.path (or --data)")
    store = Era5Store(cfg.data.path, cfg.data.variables, cfg.data.static_path or None)
    model_cfg = cfg.model.model_config(cfg.data.variables, store.shape)
    check_grid(cfg.grid_spec, comm.Get_size(), model_cfg)
    lead = cfg.data.lead_steps(store.interval_s)
    for which in ("train", "valid"):
        cfg.data.period(which, store.times)
    return store, model_cfg, lead


def load_or_compute_stats(
    cfg: RunConfig, store: Era5Store, lead: int, engine: Engine, comm: Any, path: Path
) -> NormStats:
    """Statistics over (a sample of) the training period, computed once and stored."""
    if path.exists():
        stats = NormStats.read(path)
        if stats.matches(store.variables, cfg.data.lead_time_h):
            return stats
    train = cfg.data.period("train", store.times)
    train = train[train + lead < store.times.size]
    # A random subset, not an evenly spaced one: even spacing can alias with the day (e.g.
    # every 58th 6-hourly step sees only 00 and 12 UTC).
    rng = np.random.default_rng(cfg.train.seed)
    pick = np.sort(rng.choice(train, min(cfg.data.stats_samples, train.size), replace=False))
    mine = pick[engine.grid.r :: engine.grid.replicas]
    stats = compute_stats(store, mine, lead, engine.shard, comm)
    if comm.Get_rank() == 0:
        stats.write(path)
    comm.barrier()
    return stats


class Prefetcher:
    """Reads the next batch in one background thread while the current step computes.

    All reads of a run go through this one thread, so HDF5 is never entered concurrently.
    """

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.pool.submit(fn, *args)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _optimizer(engine: Engine, cfg: RunConfig) -> torch.optim.Optimizer:
    decay, plain = [], []
    for name, param in engine.named_shards():
        (plain if name.endswith(".bias") or "norm." in name else decay).append(param)
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.train.weight_decay},
            {"params": plain, "weight_decay": 0.0},
        ],
        lr=cfg.train.lr,
        betas=(0.9, 0.95),
    )


def train(
    cfg: RunConfig, comm: Any = None, progress: Callable[[str], None] | None = print
) -> RunRecord | None:
    """Train (or resume) a run; returns the run record on rank 0 (None elsewhere)."""
    comm = comm or get_comm()
    cfg = replace(cfg, data=cfg.data.absolute())
    store, model_cfg, lead = prepare(cfg, comm)
    out = Path(cfg.output)
    rank0 = comm.Get_rank() == 0
    say = progress if (rank0 and progress) else (lambda _msg: None)
    if rank0:
        out.mkdir(parents=True, exist_ok=True)
    comm.barrier()
    started = time.perf_counter()
    with distributed(comm) as info:
        device = pick_device(info)
        grid = ProcessGrid.create(cfg.grid_spec, model_cfg)
        engine = Engine(model_cfg, grid, device)
        if cfg.data.preload:
            store.preload(engine.shard.rows, engine.shard.state)
        stats_path = Path(cfg.data.stats_path) if cfg.data.stats_path else out / "stats.nc"
        stats = load_or_compute_stats(cfg, store, lead, engine, comm, stats_path)
        engine.set_residual_scale(stats.diff_std / stats.std[: stats.diff_std.size])
        optimizer = _optimizer(engine, cfg)
        ckpt_dir = out / "checkpoints"
        start_step = 0
        last = checkpoint.latest(ckpt_dir)
        if last is not None:
            start_step = checkpoint.restore(last, engine, optimizer)
            say(f"resumed from {last} at step {start_step} (grid {cfg.grid})")
        meta = {"config": config_to_dict(cfg), "stats": str(stats_path.resolve())}
        record = _loop(cfg, engine, optimizer, store, stats, lead, start_step, comm, say, meta)
    if not rank0:
        return None
    wall = time.perf_counter() - started
    record["wall_time_s"] = wall
    run = RunRecord.create(
        "weathermixer",
        __version__,
        config=config_to_dict(cfg),
        metrics=record["metrics"],
        headline=record["headline"],
        energy=record["energy"],
        wall_time_s=wall,
        artifacts=["train_log.jsonl", "stats.nc", "checkpoints/"],
        comm=comm,
    )
    run.write(out / "results.json")
    return run


def _loop(
    cfg: RunConfig,
    engine: Engine,
    optimizer: torch.optim.Optimizer,
    store: Era5Store,
    stats: NormStats,
    lead: int,
    start_step: int,
    comm: Any,
    say: Callable[[str], None],
    meta: dict[str, Any],
) -> dict[str, Any]:
    tc, grid, device = cfg.train, engine.grid, engine.device
    out = Path(cfg.output)
    train_times = cfg.data.period("train", store.times)
    valid_times = cfg.data.period("valid", store.times)
    samples: dict[int, ForecastSamples] = {}

    def samples_for(k: int) -> ForecastSamples:
        if k not in samples:
            samples[k] = ForecastSamples(
                store, stats, lead, train_times, engine.shard, k, engine.cfg.history
            )
        return samples[k]

    valid = ForecastSamples(store, stats, lead, valid_times, engine.shard, 1, engine.cfg.history)
    weights = engine.loss_weights(store.latitude)
    global_batch = tc.batch_size * grid.replicas
    log_path = out / "train_log.jsonl"
    rank0 = comm.Get_rank() == 0
    log = log_path.open("a") if rank0 else None
    prefetch = Prefetcher()

    def plan(step: int) -> tuple[int, list[int]]:
        k = tc.rollout(step)
        idx = batch_indices(
            step, len(samples_for(k)), tc.batch_size, grid.replicas, grid.r, tc.seed
        )
        return k, idx

    def fetch(step: int) -> Any:
        k, idx = plan(step)
        return prefetch.submit(samples_for(k).batch, idx)

    step_times, losses, val_loss = [], [], float("nan")
    flops = flops_per_sample(engine.cfg)["train_step"]
    pending = fetch(start_step) if start_step < tc.total_steps else None
    meter = EnergyMeter(comm)
    meter.start()
    try:
        for step in range(start_step, tc.total_steps):
            t0 = time.perf_counter()
            batch = pending.result()
            pending = fetch(step + 1) if step + 1 < tc.total_steps else None
            lr = tc.learning_rate(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            state = batch["state"].to(device, non_blocking=True)
            extras = batch["extras"].to(device, non_blocking=True)
            targets = batch["targets"].to(device, non_blocking=True)
            if tc.roll_longitude:
                state, extras, targets = _roll(
                    state, extras, targets, engine.cfg, tc.seed, step, grid.r
                )
            with autocast(device, tc.precision):
                pred = engine.rollout(state, extras, tc.rollout_grad_steps)
            targets = targets[:, -pred.shape[1] :]
            local = engine.local_loss(pred, targets, weights, global_batch)
            optimizer.zero_grad(set_to_none=True)
            local.backward()
            norm = engine.sync_and_clip(tc.grad_clip)
            loss = engine.global_loss(local)
            if not np.isfinite(loss) or not np.isfinite(norm):
                raise FloatingPointError(
                    f"loss {loss} / gradient norm {norm} at step {step}: lower train.lr or use fp32"
                )
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            dt = time.perf_counter() - t0
            step_times.append(dt)
            losses.append(loss)
            done = step + 1
            if done % tc.log_every == 0 or done == tc.total_steps:
                k = extras.shape[1]
                graded = pred.shape[1]
                work = graded + (k - graded) / 3  # a step without gradients costs ~1/3
                entry = {
                    "step": done,
                    "loss": float(np.mean(losses[-tc.log_every :])),
                    "lr": lr,
                    "rollout": k,
                    "grad_norm": norm,
                    "step_time_s": float(np.median(step_times[-tc.log_every :])),
                }
                entry["samples_per_s"] = global_batch / entry["step_time_s"]
                entry["tflops"] = work * flops * global_batch / entry["step_time_s"] / 1e12
                say(
                    f"step {done}/{tc.total_steps} loss {entry['loss']:.4f} lr {lr:.2e} "
                    f"rollout {k} {entry['samples_per_s']:.1f} samples/s"
                )
                if log:
                    log.write(json.dumps(entry) + "\n")
                    log.flush()
            if done % tc.val_every == 0 or done == tc.total_steps:
                val_loss = _validate(engine, valid, weights, tc, prefetch)
                say(f"step {done} validation loss {val_loss:.4f}")
                if log:
                    log.write(json.dumps({"step": done, "val_loss": val_loss}) + "\n")
                    log.flush()
            if done % tc.checkpoint_every == 0 or done == tc.total_steps:
                checkpoint.save(
                    out / "checkpoints", done, engine, optimizer, meta, tc.keep_checkpoints
                )
    finally:
        if pending is not None:
            pending.cancel()
        prefetch.close()
        report = meter.stop()
        say(f"energy: {report}")
        if log:
            entry = {
                "energy_j": report.total_joules,
                "seconds": report.seconds,
                "steps": len(step_times),
                "method": report.method,
                "measured": report.measured,
            }
            log.write(json.dumps(entry) + "\n")
            log.close()
    if rank0 and cfg.data.stats_path and Path(cfg.data.stats_path) != out / "stats.nc":
        shutil.copy(cfg.data.stats_path, out / "stats.nc")
    step_s = float(np.median(step_times)) if step_times else float("nan")
    metrics = {
        "final_train_loss": float(np.mean(losses[-tc.log_every :])) if losses else None,
        "valid_loss": val_loss,
        "steps": tc.total_steps,
        "steps_this_run": len(step_times),
        "median_step_s": step_s,
        "samples_per_s": global_batch / step_s if step_times else None,
        "grid": str(grid.spec),
        "replicas": grid.replicas,
        "world_size": comm.Get_size(),
        "parameters": _total_parameters(engine.cfg),
        "parameters_this_rank": engine.local_parameters(),
        "energy_j_per_step": report.total_joules / max(1, len(step_times)) if step_times else None,
    }
    headline = {
        "name": "validation loss (lat-weighted MSE, normalised change units)",
        "value": val_loss,
        "unit": "",
        "paper": None,
        "higher_is_better": False,
    }
    return {"metrics": metrics, "headline": headline, "energy": report.to_dict()}


def _roll(
    state: torch.Tensor,
    extras: torch.Tensor,
    targets: torch.Tensor,
    cfg: ModelConfig,
    seed: int,
    step: int,
    replica: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rotate the globe in longitude by whole patches (data augmentation).

    The equations are invariant under a rotation about the axis when forcings and geography
    (insolation, orography, land) rotate along, as they do here, so this multiplies the
    training data without changing the physics. Local to every rank (longitude is never
    split); the same shift on all ranks of a model group.
    """
    shift = int(np.random.default_rng([seed, step, replica, 7]).integers(cfg.patch_cols))
    shift *= cfg.patch
    return (state.roll(shift, -1), extras.roll(shift, -1), targets.roll(shift, -1))


def _total_parameters(cfg: ModelConfig) -> int:
    from weathermixer.model import parameter_count

    return parameter_count(cfg)


def _validate(
    engine: Engine, valid: ForecastSamples, weights: torch.Tensor, tc: Any, prefetch: Prefetcher
) -> float:
    """Mean loss over the first ``val_batches`` batches of the validation period."""
    grid = engine.grid
    losses = []
    with torch.no_grad():
        for b in range(tc.val_batches):
            try:
                idx = batch_indices(b, len(valid), tc.batch_size, grid.replicas, grid.r, 12345)
            except ValueError:
                break
            batch = prefetch.submit(valid.batch, idx).result()
            with autocast(engine.device, tc.precision):
                pred = engine.rollout(
                    batch["state"].to(engine.device), batch["extras"].to(engine.device)
                )
            local = engine.local_loss(
                pred, batch["targets"].to(engine.device), weights, tc.batch_size * grid.replicas
            )
            losses.append(engine.global_loss(local))
    return float(np.mean(losses)) if losses else float("nan")
