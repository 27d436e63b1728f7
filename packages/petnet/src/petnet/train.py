"""Training with data parallelism over MPI ranks (torch DistributedDataParallel on gloo/NCCL).

Every rank draws the same shuffled order of samples each epoch and takes every ``size``-th
batch of it, so ranks see disjoint data and take the same number of steps. After each epoch
the validation singles are scored (each rank predicts its share, the flags are summed), rank 0
writes ``last.pt`` (for resume) and, when validation F1 improved, ``best.pt``, both atomically.
A checkpoint remembers the data files it was trained on, so that a resume on other data is
refused. A step whose gradients are not finite stops every rank at once (DDP averaged them),
with one line instead of a model that silently learned nothing. The training's energy is
measured with its own ``EnergyMeter``, so a caller that also simulates or evaluates can report
it apart; inside a ``Recorder`` that meter shares the recorder's sensors.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from petnet.__about__ import __version__
from petnet.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from petnet.config import EncodingConfig, ModelConfig, PETNetConfig
from petnet.inference import PETNetSorter, build_model
from petnet.loss import count_timing_loss
from petnet.metrics import PAPER_F1, Scores, score
from petnet.patches import hit_patches, patch_length
from petnet.scanner import Scanner
from petnet.singles import Singles
from petnet.spikes import SpikeStream, densify, encode, window_starts
from shared_hpc import (
    Comm,
    DistInfo,
    EnergyMeter,
    EnergyReport,
    Headline,
    UserError,
    check_output_file,
    check_resume,
    file_fingerprint,
    get_comm,
    load_config,
    prepare_output_dir,
    require_memory,
    torch_distributed,
)

BEST_CHECKPOINT = "best.pt"  # the epoch with the best validation F1
LAST_CHECKPOINT = "last.pt"  # the latest epoch, with the optimiser's state for resume
SPLIT_VALIDATION = {"name": "the last part of the training data"}
# measured peak memory of a training step: about 50 bytes per neuron and time bin of a batch
# (inputs, currents, membranes, spikes and their gradients), and per parameter its weight,
# gradient, Adam's two moments and DDP's gradient bucket
BYTES_PER_NEURON_BIN = 50
BYTES_PER_PARAMETER = 20


@dataclass(frozen=True)
class TrainResult:
    """What a training run reached.

    Args:
        best_f1: Best validation coincidence F1 over the epochs.
        best_epoch: The epoch that reached it (saved as ``best.pt``).
        history: Per epoch: loss, validation F1, precision, recall and seconds.
        best_checkpoint: ``best.pt``.
        last_checkpoint: ``last.pt`` (for resume).
        world_size: Ranks that trained.
        energy: Energy and wall time of the training alone, summed over nodes.
    """

    best_f1: float
    best_epoch: int
    history: list[dict[str, float]]
    best_checkpoint: Path
    last_checkpoint: Path
    world_size: int
    energy: EnergyReport

    def metrics(self) -> dict[str, Any]:
        """Best F1, its epoch, the history and the number of ranks, for a run record."""
        return {
            "best_val_f1": self.best_f1,
            "best_epoch": self.best_epoch,
            "history": self.history,
            "world_size": self.world_size,
        }

    def headline(self) -> Headline:
        """The best validation F1 beside the paper's."""
        return Headline("validation coincidence F1", round(self.best_f1, 4), paper=PAPER_F1)


def data_fingerprints(
    data: Sequence[str | os.PathLike[str]], validation: str | os.PathLike[str] | None = None
) -> dict[str, dict[str, Any]]:
    """What identifies a run's data files (``data``, ``validation data``), for ``train``.

    Several data files get one fingerprint over their contents in their order; the paths only
    name the files, so a copy elsewhere is the same data.

    Args:
        data: The training files, in the order they are concatenated.
        validation: The validation file; ``None``: split from the training data.
    """
    prints = [file_fingerprint(path) for path in data]
    joined = prints[0]
    if len(prints) > 1:
        joined = {
            "path": " + ".join(p["path"] for p in prints),
            "size": sum(p["size"] for p in prints),
            "sha256": hashlib.sha256("".join(p["sha256"] for p in prints).encode()).hexdigest(),
            "sampled": any(p["sampled"] for p in prints),
        }
    checked = SPLIT_VALIDATION if validation is None else file_fingerprint(validation)
    return {"data": joined, "validation data": checked}


def split_by_time(singles: Singles, validation_fraction: float) -> tuple[Singles, Singles]:
    """Earlier part for training, the last ``validation_fraction`` of the time for validation.

    Args:
        singles: Time-sorted singles.
        validation_fraction: Share of the acquisition's time span for validation.

    Raises:
        UserError: Fewer than two singles.
    """
    if len(singles) < 2:
        raise UserError("training needs at least two singles")
    t0, t1 = singles.time_ns[0], singles.time_ns[-1]
    cut = np.searchsorted(singles.time_ns, t0 + (1 - validation_fraction) * (t1 - t0))
    return singles.subset(slice(0, cut)), singles.subset(slice(cut, None))


class _Samples:
    """Training samples of one architecture: hit indices (ring) or window starts (dense)."""

    def __init__(self, stream: SpikeStream, singles: Singles, config: PETNetConfig) -> None:
        self.stream, self.singles, self.config = stream, singles, config
        self.dense = config.model.architecture == "dense"
        length = config.train.window_bins
        self.index = window_starts(stream, length, length) if self.dense else np.arange(len(stream))

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, picks: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        if self.dense:
            x, y = densify(
                self.stream, self.index[picks], cfg.train.window_bins, cfg.encoding, device
            )
            return x, y
        x, y = hit_patches(
            self.stream,
            self.index[picks],
            self.singles.scanner,
            cfg.encoding,
            cfg.model.geometry_scales,
        )
        return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)


def train(
    singles: Singles,
    config: PETNetConfig,
    output_dir: str | os.PathLike[str],
    validation: Singles | None = None,
    resume: str | os.PathLike[str] | None = None,
    comm: Comm | None = None,
    log: Callable[[str], None] | None = None,
    fingerprints: Mapping[str, Mapping[str, Any]] | None = None,
    force_resume: bool = False,
) -> TrainResult:
    """Train PETNet; collective over ``comm`` (data parallel with more than one rank).

    Args:
        singles: Training singles with ground truth.
        config: Model, encoding and optimisation.
        output_dir: Folder for ``best.pt`` and ``last.pt`` (written by rank 0), checked before
            any work.
        validation: Validation singles with ground truth; ``None``: the last
            ``validation_fraction`` of ``singles`` (in time).
        resume: A ``last.pt`` to continue from (same data, batch size, epochs and ranks).
        comm: Communicator of the ranks that train (default: ``get_comm()``).
        log: Called with one line per epoch.
        fingerprints: What identifies the data (``data_fingerprints``), stored in the
            checkpoints; resuming a checkpoint that stores other ones is refused.
        force_resume: Resume even when the fingerprints differ.

    Returns:
        The result, built when the training has finished.

    Raises:
        UserError: Singles without ground truth, from different scanners, or too few for one
            step; an output folder or checkpoint that cannot be written; a network or batch
            that does not fit in memory; a resume on other data; a training that diverged.
        CheckpointError: A ``resume`` checkpoint that is unreadable or does not fit this run.
    """
    if not singles.has_truth or (validation is not None and not validation.has_truth):
        raise UserError("training needs singles with ground truth (decay_id, scattered)")
    comm = get_comm() if comm is None else comm
    output_dir = prepare_output_dir(output_dir)
    for name in (BEST_CHECKPOINT, LAST_CHECKPOINT):
        check_output_file(output_dir / name)
    payload = None
    if resume is not None:
        payload = load_checkpoint(resume)
        config = _resumed_config(payload, config, comm.Get_size(), resume)
        if payload["scanner"] != singles.scanner.to_dict():
            raise CheckpointError(f"{resume} was trained on another scanner than these singles")
        stored = payload.get("fingerprints") or {}  # none in checkpoints of petnet 0.1
        for what, current in (fingerprints or {}).items():
            check_resume(what, stored.get(what), current, force=force_resume)
    require_memory(*_host_memory(config, singles.scanner, torch.cuda.is_available()))
    if validation is None:
        singles, validation = split_by_time(singles, config.train.validation_fraction)
    if validation.scanner != singles.scanner:
        raise UserError("training and validation singles come from different scanners")
    log = log or (lambda message: None)
    with EnergyMeter(comm) as meter, torch_distributed(comm) as info:
        best_f1, best_epoch, history = _fit(
            singles, validation, config, output_dir, payload, fingerprints or {}, info, log
        )
    return TrainResult(
        best_f1=best_f1,
        best_epoch=best_epoch,
        history=history,
        best_checkpoint=output_dir / BEST_CHECKPOINT,
        last_checkpoint=output_dir / LAST_CHECKPOINT,
        world_size=info.world_size,
        energy=meter.report,
    )


def _host_memory(config: PETNetConfig, scanner: Scanner, cuda: bool) -> tuple[float, str]:
    """Estimated peak bytes of host memory of a training step, and what needs them: the
    network is built and checkpointed on the host, its batches run there without CUDA."""
    with torch.device("meta"):  # the network's shape without its memory
        net = build_model(scanner, config.encoding, config.model)
    parameters = sum(p.numel() for p in net.parameters())
    neurons = net.synapses[0].in_features + sum(s.out_features for s in net.synapses)
    dense = config.model.architecture == "dense"
    bins = config.train.window_bins if dense else patch_length(config.encoding)
    batch = config.train.batch_size
    need = parameters * BYTES_PER_PARAMETER
    if not cuda:
        need += batch * bins * neurons * BYTES_PER_NEURON_BIN
    what = (
        f"training a {config.model.architecture} network of {parameters:,} parameters on "
        f"batches of {batch} × {bins} time bins"
    )
    return need, what


def _resumed_config(
    payload: dict[str, Any], config: PETNetConfig, world_size: int, path: str | os.PathLike[str]
) -> PETNetConfig:
    """The model and encoding stored in the checkpoint with this run's training settings;
    configuring a different (non-default) model or encoding, or rank count, is refused."""
    stored_world = payload.get("world_size")
    if stored_world != world_size:
        raise CheckpointError(
            f"{path} was written by a run on {stored_world} rank(s); resume it on the same "
            f"number of ranks (this run has {world_size})"
        )
    model = load_config(ModelConfig, {"quiescent": False, **payload["model"]})  # 0.1: no cap
    encoding = load_config(EncodingConfig, payload["encoding"])
    if (config.model, config.encoding) != (ModelConfig(), EncodingConfig()) and (
        config.model != model or config.encoding != encoding
    ):
        raise CheckpointError(
            f"{path} holds a different model or encoding than the one configured; "
            "resume without them or start a new run"
        )
    return PETNetConfig(model=model, encoding=encoding, train=config.train)


def _fit(
    singles: Singles,
    validation: Singles,
    config: PETNetConfig,
    output_dir: Path,
    payload: dict[str, Any] | None,
    fingerprints: Mapping[str, Mapping[str, Any]],
    info: DistInfo,
    log: Callable[[str], None],
) -> tuple[float, int, list[dict[str, float]]]:
    """The training loop; returns the best validation F1, its epoch and the history."""
    rank, world = info.rank, info.world_size
    device = info.device
    cfg = config.train
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    scanner = singles.scanner
    net = build_model(scanner, config.encoding, config.model).to(device)
    torch.manual_seed(cfg.seed + 7919 * (rank + 1))  # training noise differs per rank
    samples = _Samples(encode(singles, config.encoding), singles, config)
    steps = len(samples) // (cfg.batch_size * world)
    if cfg.max_steps_per_epoch is not None:
        steps = min(steps, cfg.max_steps_per_epoch)
    if steps < 1:
        raise UserError(
            f"{len(samples)} training samples are too few for {world} rank(s) × batch size "
            f"{cfg.batch_size}; simulate longer or lower the batch size"
        )
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps, pct_start=0.1
    )
    start_epoch, best_f1, best_epoch, history = 0, -1.0, -1, []
    if payload is not None:
        net.load_state_dict(payload["state_dict"])
        optimizer.load_state_dict(payload["optimizer"])
        schedule.load_state_dict(payload["scheduler"])
        start_epoch = payload["epoch"] + 1
        best_f1, best_epoch = payload["best_f1"], payload["best_epoch"]
        history = list(payload["history"])
        torch.set_rng_state(payload["rng_states"][rank])
        if payload["steps_per_epoch"] != steps or payload["train"]["epochs"] != cfg.epochs:
            raise CheckpointError(
                "the checkpoint's schedule does not match this run (steps per epoch or epochs "
                "changed); resume with the same data, batch size and number of epochs"
            )
    model = DistributedDataParallel(net) if world > 1 else net
    sorter = PETNetSorter(net, scanner, config.encoding, device=device)
    common = {
        "version": __version__,
        "scanner": scanner.to_dict(),
        "model": asdict(config.model),
        "encoding": asdict(config.encoding),
        "train": asdict(cfg),
        "world_size": world,
        "steps_per_epoch": steps,
        "fingerprints": {what: dict(value) for what, value in fingerprints.items()},
    }
    best_path, last_path = output_dir / BEST_CHECKPOINT, output_dir / LAST_CHECKPOINT
    for epoch in range(start_epoch, cfg.epochs):
        tic = time.perf_counter()
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(samples))
        net.train()
        total = torch.zeros(2, device=device)
        for step in range(steps):
            picks = order[(step * world + rank) * cfg.batch_size :][: cfg.batch_size]
            x, y = samples.batch(picks, device)
            out = model(x)
            loss = count_timing_loss(
                out,
                y,
                timing_weight=cfg.timing_weight,
                tolerance_bins=config.encoding.tolerance_bins,
                count_window_bins=cfg.count_window_bins,
                miss_weight=cfg.miss_weight,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            # the norm is the same on every rank (DDP averaged the gradients), so a NaN on one
            # rank stops all of them at this step, before the weights take it
            if not (torch.isfinite(loss) and torch.isfinite(norm)):
                raise UserError(
                    f"training diverged at epoch {epoch}, step {step} (loss {loss.item():.4g}, "
                    f"gradient norm {norm.item():.4g}); lower the learning rate (--train.lr)"
                )
            optimizer.step()
            schedule.step()
            total += torch.stack([loss.detach(), torch.ones((), device=device)])
        if world > 1:
            dist.all_reduce(total)
        rng_states = [torch.get_rng_state()]
        if world > 1:
            rng_states = [None] * world
            dist.all_gather_object(rng_states, torch.get_rng_state())
        scores = _validate(sorter, validation, rank, world, device)
        record = {
            "epoch": epoch,
            "loss": float(total[0] / total[1]),
            "val_f1": scores.f1,
            "val_precision": scores.precision,
            "val_recall": scores.recall,
            "seconds": time.perf_counter() - tic,
        }
        history.append(record)
        improved = scores.f1 > best_f1
        if improved:
            best_f1, best_epoch = scores.f1, epoch
        if rank == 0:
            state = {
                **common,
                "state_dict": net.state_dict(),
                "epoch": epoch,
                "best_f1": best_f1,
                "best_epoch": best_epoch,
                "history": history,
                "val_f1": scores.f1,
            }
            if improved:
                save_checkpoint(best_path, state)
            save_checkpoint(
                last_path,
                {
                    **state,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": schedule.state_dict(),
                    "rng_states": rng_states,
                },
            )
        log(
            f"epoch {epoch}: loss {record['loss']:.4f}, validation F1 {scores.f1:.4f} "
            f"(P {scores.precision:.4f}, R {scores.recall:.4f}), {record['seconds']:.1f} s"
        )
        if world > 1:
            dist.barrier()
    return best_f1, best_epoch, history


def _validate(
    sorter: PETNetSorter, singles: Singles, rank: int, world: int, device: torch.device
) -> Scores:
    """Each rank predicts its share; flags and spurious spikes are summed over ranks."""
    decoded = sorter.predict(singles, shard=(rank, world))
    flags = torch.from_numpy(decoded.flags.astype(np.int32)).to(device)
    spurious = torch.tensor([decoded.spurious], device=device)
    if world > 1:
        dist.all_reduce(flags)
        dist.all_reduce(spurious)
    return score(singles, flags.cpu().numpy() > 0, int(spurious.item()))
