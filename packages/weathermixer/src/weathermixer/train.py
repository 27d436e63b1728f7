"""Training: latitude-weighted MSE, AdamW with warm-up and cosine decay, bf16 autocast on GPU,
rollout fine-tuning, sharded checkpoints with resume, energy per step measured.

A ``Trainer`` runs the same way as a plain process, under ``mpiexec``/``srun`` with pure data
parallelism (grid 1×1) or with a Jigsaw grid; every rank reads only its own part of the data.
``train`` opens the data, joins the process group and runs a ``Trainer``. The result is a
``TrainResult``; the run record is the caller's (the command line writes it).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import torch

from shared_hpc import (
    Comm,
    EnergyMeter,
    EnergyReport,
    Headline,
    UserError,
    atomic_path,
    check_output_file,
    check_resume,
    config_to_dict,
    get_comm,
    lock_folder,
    prepare_output_dir,
    require_memory,
    torch_distributed,
)
from weathermixer import checkpoint
from weathermixer.config import RunConfig, TrainConfig
from weathermixer.data import Era5Store, ForecastSamples, NormStats, compute_stats
from weathermixer.engine import Engine, autocast
from weathermixer.grid import ProcessGrid, check_grid
from weathermixer.model import ModelConfig, flops_per_sample, parameter_count, training_bytes
from weathermixer.together import raise_together

Progress = Callable[[str], None]


class TrainingDiverged(UserError, FloatingPointError):
    """The loss or the gradient norm became NaN or infinite."""


def batch_indices(step: int, n: int, batch: int, replicas: int, replica: int, seed: int) -> list:
    """The sample indices a replica uses at a step: a fresh permutation per epoch, the same on
    every rank, so resuming at a step needs no sampler state.

    Args:
        step: The training step.
        n: Samples available.
        batch: Samples per replica and step.
        replicas: Data-parallel replicas.
        replica: This replica.
        seed: Seed of the permutations.

    Raises:
        UserError: ``n`` is less than one global batch.
    """
    per_epoch = n // (batch * replicas)
    if per_epoch == 0:
        raise UserError(
            f"{n} training samples are fewer than one global batch ({batch} × {replicas} replicas)"
        )
    epoch, pos = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    start = (pos * replicas + replica) * batch
    return order[start : start + batch].tolist()


@dataclass(frozen=True)
class TrainingData:
    """The data of a run, opened and checked against its settings before any heavy work.

    Use ``TrainingData.open``.

    Attributes:
        store: The reader of the data files.
        model: The run's model with the data's channel counts and grid.
        lead: The lead time in time steps of the data.
    """

    store: Era5Store
    model: ModelConfig
    lead: int

    @classmethod
    def open(cls, cfg: RunConfig, world_size: int) -> TrainingData:
        """Open ``cfg.data`` and check the model, the process grid, lead time and periods.

        Args:
            cfg: The run.
            world_size: Ranks that will train it.

        Raises:
            UserError: No data path, unreadable or unsuitable data, a model that contradicts
                the data, an impossible process grid, a lead time or period that does not fit.
        """
        if not cfg.data.path:
            raise UserError("no data: set data.path (--data.path)")
        variables = cfg.data.variables
        store = Era5Store(cfg.data.path, variables, cfg.data.static_path or None)
        model = cfg.model.for_data(
            len(variables.state_channels), len(variables.extra_channels), store.shape
        )
        check_grid(cfg.grid_spec, world_size, model)
        lead = cfg.data.lead_steps(store.interval_s)
        for which in ("train", "valid"):
            cfg.data.period(which, store.times)
        return cls(store, model, lead)


@dataclass(frozen=True)
class TrainResult:
    """What a training run reached (the same on every rank but ``parameters_this_rank``).

    Attributes:
        config: The run as trained: absolute data paths, the model's shape from the data.
        steps: Steps of the whole schedule (training and fine-tuning).
        steps_this_run: Steps this run took (fewer after a resume).
        final_train_loss: Mean training loss of the last ``log_every`` steps; ``None`` if no
            step ran.
        valid_loss: Validation loss at the end (latitude-weighted MSE in units of the typical
            change per lead); NaN if no validation ran.
        median_step_s: Median wall time of a step; NaN if no step ran.
        replicas: Data-parallel replicas.
        world_size: Ranks.
        parameters: Parameters of the whole model.
        parameters_this_rank: Parameters this rank stores.
        energy: Energy of the training steps on all nodes.
    """

    config: RunConfig
    steps: int
    steps_this_run: int
    final_train_loss: float | None
    valid_loss: float
    median_step_s: float
    replicas: int
    world_size: int
    parameters: int
    parameters_this_rank: int
    energy: EnergyReport

    def metrics(self) -> dict[str, Any]:
        """The figures of the run record."""
        ran = self.steps_this_run > 0
        global_batch = self.config.train.batch_size * self.replicas
        return {
            "final_train_loss": self.final_train_loss,
            "valid_loss": self.valid_loss,
            "steps": self.steps,
            "steps_this_run": self.steps_this_run,
            "median_step_s": self.median_step_s,
            "samples_per_s": global_batch / self.median_step_s if ran else None,
            "grid": str(self.config.grid_spec),
            "replicas": self.replicas,
            "world_size": self.world_size,
            "parameters": self.parameters,
            "parameters_this_rank": self.parameters_this_rank,
            "energy_j_per_step": self.energy.total_joules / self.steps_this_run if ran else None,
        }

    def headline(self) -> Headline:
        """The validation loss at the end."""
        return Headline(
            "validation loss (lat-weighted MSE, normalised change units)",
            self.valid_loss,
            higher_is_better=False,
        )


@dataclass(frozen=True)
class StepStats:
    """What one optimizer step did.

    Attributes:
        loss: Loss of the global batch.
        grad_norm: Global gradient norm before clipping.
        lr: Learning rate used.
        rollout: Steps of the rollout.
        graded: Of those, the steps back-propagated through.
    """

    loss: float
    grad_norm: float
    lr: float
    rollout: int
    graded: int


class Trainer:
    """One training run on this rank: model, optimizer, samples, prefetcher and log, set up
    once; ``run`` trains from the newest checkpoint in the run folder (or from the start).

    Collective: every rank of the run constructs a ``Trainer`` and calls ``run`` (inside
    ``torch_distributed`` when there is more than one rank). Close it (or use it as a context
    manager) to stop the prefetcher and close the log.

    Args:
        cfg: The run.
        data: Its opened data (the model's channel counts and grid are taken from it).
        device: Where this rank's tensors live.
        comm: Communicator of all ranks (default: ``get_comm()``).
        progress: Called on rank 0 with a line at every log step, validation and resume.

    Raises:
        UserError: The run folder's checkpoint was made with other data (unless
            ``cfg.force_resume``) or holds another model, or the data holds NaNs (on every
            rank, whichever rank's band holds them).
    """

    def __init__(
        self,
        cfg: RunConfig,
        data: TrainingData,
        device: torch.device,
        comm: Comm | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.cfg, self.tc = replace(cfg, model=data.model), cfg.train
        self.comm = get_comm() if comm is None else comm
        self.store, self.lead = data.store, data.lead
        self.out = Path(cfg.output)
        rank0 = self.comm.Get_rank() == 0
        self._progress = progress if rank0 else None
        fingerprint = self.store.fingerprint() if rank0 else None
        self.data_fingerprint = self.comm.bcast(fingerprint, root=0)
        self.resume_from = self._checkpoint_to_resume(cfg.force_resume)
        self.engine = Engine(data.model, ProcessGrid.create(cfg.grid_spec, data.model), device)
        shard = self.engine.shard
        if cfg.data.preload:
            raise_together(self.comm, lambda: self.store.preload(shard.rows, shard.state))
        self.stats_path = Path(cfg.data.stats_path or self.out / "stats.nc")
        self.stats = self._statistics()
        self.engine.set_residual_scale(
            self.stats.diff_std / self.stats.std[: self.stats.diff_std.size]
        )
        self.optimizer = _optimizer(self.engine, self.tc)
        self.start_step = self._resume()
        self.meta = {
            "config": config_to_dict(self.cfg),
            "stats": str(self.stats_path.resolve()),
            "data": self.data_fingerprint,
        }
        self.train_times = cfg.data.period("train", self.store.times)
        valid_times = cfg.data.period("valid", self.store.times)
        history = data.model.history
        self.valid = ForecastSamples(
            self.store, self.stats, self.lead, valid_times, shard, 1, history
        )
        self._samples: dict[int, ForecastSamples] = {}
        self.weights = self.engine.loss_weights(self.store.latitude)
        self.global_batch = self.tc.batch_size * self.engine.grid.replicas
        self.flops = flops_per_sample(data.model)["train_step"]
        self._log = (self.out / "train_log.jsonl").open("a") if rank0 else None
        # One reader thread: the next batch loads while a step computes, and HDF5 is never
        # entered concurrently.
        self.prefetch = ThreadPoolExecutor(max_workers=1)
        self.losses: list[float] = []
        self.step_times: list[float] = []
        self.valid_loss = float("nan")

    # --- set-up -------------------------------------------------------------------------
    def _statistics(self) -> NormStats:
        """Statistics over (a sample of) the training period, computed once and stored."""
        cfg, store, grid = self.cfg, self.store, self.engine.grid
        if self.stats_path.exists():
            stats = NormStats.read(self.stats_path)
            if stats.matches(store.variables, cfg.data.lead_time_h):
                return stats
        train = cfg.data.period("train", store.times)
        train = train[train + self.lead < store.times.size]
        # A random subset, not an evenly spaced one: even spacing can alias with the day (e.g.
        # every 58th 6-hourly step sees only 00 and 12 UTC).
        rng = np.random.default_rng(self.tc.seed)
        pick = np.sort(rng.choice(train, min(cfg.data.stats_samples, train.size), replace=False))
        mine = pick[grid.r :: grid.replicas]
        stats = compute_stats(store, mine, self.lead, self.engine.shard, self.comm)
        if self.comm.Get_rank() == 0:
            stats.write(self.stats_path)
        self.comm.barrier()
        return stats

    def _checkpoint_to_resume(self, force: bool) -> Path | None:
        """The newest checkpoint of the run folder, if any, once it is known to be of this
        run's data (checked before any data is read)."""
        last = checkpoint.latest(self.out / "checkpoints")
        if last is not None:
            stored = checkpoint.read_meta(last).get("data")
            check_resume("data", stored, self.data_fingerprint, force=force)
        return last

    def _resume(self) -> int:
        """Load the checkpoint to resume, if any; returns its step."""
        last = self.resume_from
        if last is None:
            return 0
        step = checkpoint.restore(last, self.engine, self.optimizer)
        self._say(f"resumed from {last} at step {step} (grid {self.cfg.grid})")
        return step

    def _samples_for(self, rollout: int) -> ForecastSamples:
        if rollout not in self._samples:
            self._samples[rollout] = ForecastSamples(
                self.store,
                self.stats,
                self.lead,
                self.train_times,
                self.engine.shard,
                rollout,
                self.engine.cfg.history,
            )
        return self._samples[rollout]

    def _fetch(self, step: int) -> Future:
        """Start reading the batch of ``step`` in the reader thread."""
        tc, grid = self.tc, self.engine.grid
        samples = self._samples_for(tc.rollout(step))
        idx = batch_indices(step, len(samples), tc.batch_size, grid.replicas, grid.r, tc.seed)
        return self.prefetch.submit(samples.batch, idx)

    # --- training -----------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Train from ``start_step`` to the end of the schedule (collective).

        Raises:
            TrainingDiverged: The loss or the gradient norm is no longer finite.
        """
        tc = self.tc
        pending = self._fetch(self.start_step) if self.start_step < tc.total_steps else None
        try:
            with EnergyMeter(self.comm) as meter:
                for step in range(self.start_step, tc.total_steps):
                    started = time.perf_counter()
                    batch = pending.result()
                    pending = self._fetch(step + 1) if step + 1 < tc.total_steps else None
                    stats = self.step(step, batch)
                    self.step_times.append(time.perf_counter() - started)
                    self.losses.append(stats.loss)
                    self._after_step(step + 1, stats)
        finally:
            if pending is not None:
                pending.cancel()
        self._report_energy(meter.report)
        self._copy_statistics()
        return self._result(meter.report)

    def step(self, step: int, batch: dict[str, torch.Tensor]) -> StepStats:
        """One optimizer step on this rank's part of a batch (collective).

        Args:
            step: The step's index in the schedule (sets learning rate and augmentation).
            batch: ``state``, ``extras`` and ``targets`` of ``ForecastSamples.batch``.
        """
        tc, engine = self.tc, self.engine
        device = engine.device
        lr = tc.learning_rate(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        state = batch["state"].to(device, non_blocking=True)
        extras = batch["extras"].to(device, non_blocking=True)
        targets = batch["targets"].to(device, non_blocking=True)
        if tc.roll_longitude:
            state, extras, targets = _roll(
                state, extras, targets, engine.cfg, tc.seed, step, engine.grid.r
            )
        with autocast(device, tc.precision):
            pred = engine.rollout(state, extras, tc.rollout_grad_steps)
        targets = targets[:, -pred.shape[1] :]
        local = engine.local_loss(pred, targets, self.weights, self.global_batch)
        self.optimizer.zero_grad(set_to_none=True)
        local.backward()
        norm = engine.sync_and_clip(tc.grad_clip)
        loss = engine.global_loss(local)
        if not np.isfinite(loss) or not np.isfinite(norm):
            raise TrainingDiverged(
                f"loss {loss} / gradient norm {norm} at step {step}: lower train.lr or use fp32"
            )
        self.optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return StepStats(loss, norm, lr, rollout=extras.shape[1], graded=pred.shape[1])

    def _after_step(self, done: int, stats: StepStats) -> None:
        """Log, validate and checkpoint when their intervals (or the schedule) end."""
        tc = self.tc
        last = done == tc.total_steps
        if done % tc.log_every == 0 or last:
            self.log_progress(done, stats)
        if done % tc.val_every == 0 or last:
            self.valid_loss = self.validate()
            self._say(f"step {done} validation loss {self.valid_loss:.4f}")
            self._write_log({"step": done, "val_loss": self.valid_loss})
        if done % tc.checkpoint_every == 0 or last:
            self.save_checkpoint(done)

    def validate(self) -> float:
        """Mean loss over the first ``val_batches`` batches of the validation period."""
        tc, engine = self.tc, self.engine
        grid, device = engine.grid, engine.device
        losses = []
        with torch.no_grad():
            for b in range(tc.val_batches):
                try:
                    idx = batch_indices(
                        b, len(self.valid), tc.batch_size, grid.replicas, grid.r, 12345
                    )
                except ValueError:
                    break
                batch = self.prefetch.submit(self.valid.batch, idx).result()
                with autocast(device, tc.precision):
                    pred = engine.rollout(batch["state"].to(device), batch["extras"].to(device))
                local = engine.local_loss(
                    pred, batch["targets"].to(device), self.weights, self.global_batch
                )
                losses.append(engine.global_loss(local))
        return float(np.mean(losses)) if losses else float("nan")

    def log_progress(self, done: int, stats: StepStats) -> None:
        """A line of the log (and of ``progress``) on the last ``log_every`` steps.

        Args:
            done: Steps done.
            stats: What the last step did.
        """
        tc = self.tc
        step_s = float(np.median(self.step_times[-tc.log_every :]))
        work = stats.graded + (stats.rollout - stats.graded) / 3  # no gradients: ~1/3 the cost
        entry = {
            "step": done,
            "loss": float(np.mean(self.losses[-tc.log_every :])),
            "lr": stats.lr,
            "rollout": stats.rollout,
            "grad_norm": stats.grad_norm,
            "step_time_s": step_s,
            "samples_per_s": self.global_batch / step_s,
            "tflops": work * self.flops * self.global_batch / step_s / 1e12,
        }
        self._say(
            f"step {done}/{tc.total_steps} loss {entry['loss']:.4f} lr {stats.lr:.2e} "
            f"rollout {stats.rollout} {entry['samples_per_s']:.1f} samples/s"
        )
        self._write_log(entry)

    def save_checkpoint(self, done: int) -> None:
        """Write a checkpoint (collective).

        Args:
            done: Steps done.
        """
        checkpoint.save(
            self.out / "checkpoints",
            done,
            self.engine,
            self.optimizer,
            self.meta,
            self.tc.keep_checkpoints,
        )

    # --- the end --------------------------------------------------------------------------
    def _report_energy(self, report: EnergyReport) -> None:
        self._say(f"energy: {report}")
        self._write_log(
            {
                "energy_j": report.total_joules,
                "seconds": report.seconds,
                "steps": len(self.step_times),
                "method": report.method,
                "measured": report.measured,
            }
        )

    def _copy_statistics(self) -> None:
        """Statistics given by ``data.stats_path`` are copied into the run folder (rank 0)."""
        own = self.out / "stats.nc"
        if self.comm.Get_rank() == 0 and self.stats_path != own:
            with atomic_path(own) as tmp:
                shutil.copyfile(self.stats_path, tmp)

    def _result(self, energy: EnergyReport) -> TrainResult:
        tc, grid = self.tc, self.engine.grid
        ran = bool(self.step_times)
        return TrainResult(
            config=self.cfg,
            steps=tc.total_steps,
            steps_this_run=len(self.step_times),
            final_train_loss=float(np.mean(self.losses[-tc.log_every :])) if ran else None,
            valid_loss=self.valid_loss,
            median_step_s=float(np.median(self.step_times)) if ran else float("nan"),
            replicas=grid.replicas,
            world_size=self.comm.Get_size(),
            parameters=parameter_count(self.engine.cfg),
            parameters_this_rank=self.engine.local_parameters(),
            energy=energy,
        )

    def _say(self, line: str) -> None:
        if self._progress is not None:
            self._progress(line)

    def _write_log(self, entry: dict[str, Any]) -> None:
        if self._log is not None:
            self._log.write(json.dumps(entry) + "\n")
            self._log.flush()

    def close(self) -> None:
        """Stop the reader thread (a batch it is reading is finished, none is started) and
        close the log; no collective, so a failed rank leaves at once."""
        self.prefetch.shutdown(wait=True, cancel_futures=True)
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> Trainer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def train(
    cfg: RunConfig, comm: Comm | None = None, progress: Progress | None = None
) -> TrainResult:
    """Train (or resume) the run ``cfg`` on every rank of ``comm``.

    The data is opened and checked first, so bad input fails before any heavy work; then the
    ranks join a process group (none for a single process) and run a ``Trainer``.

    Args:
        cfg: The run; its model's channel counts and grid are taken from the data.
        comm: Communicator of all ranks (default: ``get_comm()``).
        progress: Called on rank 0 with a line at every log step, validation and resume.

    Returns:
        The result, on every rank.

    Raises:
        UserError: Bad settings or data (see ``TrainingData.open``), an output that cannot be
            written, a run too large for the memory, another run using the run folder, a
            checkpoint of another model or (without ``force_resume``) of other data in the run
            folder, NaNs in the data, or a diverging loss (``TrainingDiverged``).
    """
    comm = get_comm() if comm is None else comm
    cfg = replace(cfg, data=cfg.data.absolute())
    data = TrainingData.open(cfg, comm.Get_size())
    with lock_folder(cfg.output, comm) as out:
        raise_together(comm, lambda: _check_run(cfg, data, out))
        with (
            torch_distributed(comm) as info,
            Trainer(cfg, data, info.device, comm, progress) as trainer,
        ):
            return trainer.run()


def _check_run(cfg: RunConfig, data: TrainingData, out: Path) -> None:
    """Refuse, before any work, outputs that cannot be written and a run too large for this
    node's memory (the model's on the CPU; the preloaded data's always)."""
    for name in ("train_log.jsonl", "stats.nc"):
        check_output_file(out / name)
    prepare_output_dir(out / "checkpoints")
    if cfg.data.stats_path and not Path(cfg.data.stats_path).exists():
        check_output_file(cfg.data.stats_path)  # computed and written there
    spec, tc, model = cfg.grid_spec, cfg.train, data.model
    need = 0
    if cfg.data.preload:  # this rank's band and channels of every time step, float32
        fields = data.store.times.size * model.state_channels * model.grid[0] * model.grid[1]
        need += 4 * fields // spec.size
    if not torch.cuda.is_available():
        graded = tc.rollout_grad_steps or (tc.max_rollout if tc.finetune_steps else 1)
        need += training_bytes(model, tc.batch_size, spec.size, graded)
    parameters = parameter_count(model)
    require_memory(
        need, f"training {parameters:,} parameters on batches of {tc.batch_size} (grid {spec})"
    )


def _optimizer(engine: Engine, tc: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over this rank's parameters; no weight decay for biases and norms."""
    decay, plain = [], []
    for name, param in engine.named_shards():
        (plain if name.endswith(".bias") or "norm." in name else decay).append(param)
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": tc.weight_decay},
            {"params": plain, "weight_decay": 0.0},
        ],
        lr=tc.lr,
        betas=(0.9, 0.95),
    )


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
