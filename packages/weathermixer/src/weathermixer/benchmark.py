"""Throughput, memory and communication of training steps for a model size and process grid.

Synthetic inputs (random normalised fields) isolate the model from I/O. Per rank it reports:
step time, samples/s, achieved model TFLOP/s (FLOPs from
``weathermixer.model.flops_per_sample``, 3× forward per training step) and the fraction of a
given peak (MFU); parameter, gradient and AdamW bytes; activation bytes saved for backward
(counted with ``saved_tensors_hooks``, so nothing is guessed); peak device memory (CUDA) or
peak resident set size (CPU); and the bytes sent per step, both counted at every collective and
measured by the kernel (``wchar`` of ``/proc/self/io``, which counts the socket writes of gloo;
not available for NCCL).
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from shared_hpc import Comm, Headline, get_comm, require_memory, torch_distributed
from weathermixer.collectives import count_bytes
from weathermixer.config import BenchmarkConfig
from weathermixer.engine import Engine, autocast
from weathermixer.grid import GridSpec, ProcessGrid, check_grid
from weathermixer.model import ModelConfig, flops_per_sample, parameter_count, training_bytes
from weathermixer.together import raise_together

PRESETS = {
    # The default model on the demo's data shape (12 + 4 channels, 32 × 64).
    "small": BenchmarkConfig().model,
    # For MFU on one GPU: 0.25° ERA5 (720 × 1440 rows used), 69 + 4 channels, patch 8
    # → 16 200 tokens, ~0.6 B parameters.
    "large": ModelConfig(
        state_channels=69,
        extra_channels=4,
        grid=(720, 1440),
        patch=8,
        embed_dim=1024,
        token_hidden=2048,
        channel_hidden=4096,
        depth=8,
    ),
}


@dataclass(frozen=True)
class BenchResult:
    """One rank's measurements (see the module docstring).

    Attributes:
        grid: Process grid DxM.
        replicas: Data-parallel replicas.
        world_size: Ranks.
        rank: This rank.
        device: Its device.
        precision: The precision setting.
        compiled: Whether the model was compiled.
        batch_per_replica: Samples per replica and step.
        step_s: Median wall time of a step.
        samples_per_s: Samples of the global batch per second.
        tflops_per_rank: Model TFLOP/s of this rank.
        mfu: Model FLOP utilisation of the given peak (``None`` without one).
        parameters_total: Parameters of the whole model.
        parameters_rank: Parameters this rank stores.
        param_bytes: Bytes of this rank's parameters.
        grad_bytes: Bytes of their gradients.
        optimizer_bytes: Bytes of this rank's AdamW state.
        activation_bytes: Bytes autograd saved for backward in one step.
        peak_memory_bytes: Peak device memory (CUDA) or resident set size (CPU).
        comm_bytes_counted: Bytes sent per step, counted at the collectives.
        comm_calls: Collective calls per step.
        comm_bytes_by_group: Bytes sent per step by group.
        comm_bytes_measured: Bytes written per step as the kernel saw them (CPU; else
            ``None``).
    """

    grid: str
    replicas: int
    world_size: int
    rank: int
    device: str
    precision: str
    compiled: bool
    batch_per_replica: int
    step_s: float
    samples_per_s: float
    tflops_per_rank: float
    mfu: float | None
    parameters_total: int
    parameters_rank: int
    param_bytes: int
    grad_bytes: int
    optimizer_bytes: int
    activation_bytes: int
    peak_memory_bytes: int
    comm_bytes_counted: int
    comm_calls: int
    comm_bytes_by_group: dict[str, int]
    comm_bytes_measured: int | None


def _wchar() -> int | None:
    try:
        with open("/proc/self/io") as handle:
            for line in handle:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class BenchmarkRun:
    """Every rank's measurements of one benchmark.

    Attributes:
        ranks: One ``BenchResult`` per rank, in rank order.
    """

    ranks: list[BenchResult]

    def metrics(self) -> dict[str, Any]:
        """The figures of a run record: every rank's measurements."""
        return {"ranks": [asdict(r) for r in self.ranks]}

    def headline(self) -> Headline:
        """Training throughput of the whole process grid."""
        return Headline("training samples per second", self.ranks[0].samples_per_s, "samples/s")

    def summary(self) -> str:
        """A line for the run and one per rank."""
        r0 = self.ranks[0]
        lines = [
            f"grid {r0.grid} × {r0.replicas} replicas on {r0.device}: "
            f"{r0.step_s * 1e3:.1f} ms/step, {r0.samples_per_s:.2f} samples/s"
        ]
        for r in self.ranks:
            mfu = f" MFU {100 * r.mfu:.1f} %" if r.mfu is not None else ""
            lines.append(
                f"  rank {r.rank}: {r.tflops_per_rank:.3f} TFLOP/s{mfu}, "
                f"params {r.parameters_rank:,} of {r.parameters_total:,}, "
                f"activations {r.activation_bytes / 2**20:.1f} MiB, "
                f"peak {r.peak_memory_bytes / 2**20:.0f} MiB, "
                f"sent {r.comm_bytes_counted / 2**20:.2f} MiB/step"
            )
        return "\n".join(lines)


@contextlib.contextmanager
def saved_activation_bytes() -> Iterator[tuple[dict[str, int], set[int]]]:
    """Count bytes of distinct non-parameter tensors autograd saves inside the block.

    Yields ``(counter, params)``: add the data pointers of parameters to ``params`` (they are
    not counted); ``counter["bytes"]`` holds the count when the block ends.
    """
    seen: dict[int, int] = {}
    params: set[int] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, torch.nn.Parameter) and t.data_ptr() not in params:
            key = t.untyped_storage().data_ptr()
            seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        return t

    counter = {"bytes": 0}
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield counter, params
    counter["bytes"] = sum(seen.values())


def _count_ddp(engine: Engine) -> None:
    """Route DDP's gradient all-reduce through the byte counter (same algorithm, counted)."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    from weathermixer.collectives import _record

    def hook(state, bucket):  # type: ignore[no-untyped-def]  # DDP checks real annotations
        buf = bucket.buffer()
        _record("all_reduce", engine.grid.replica, buf.numel() * buf.element_size())
        return default_hooks.allreduce_hook(state, bucket)

    engine.runner.register_comm_hook(engine.grid.replica.pg, hook)


def run_benchmark(bench: BenchmarkConfig, comm: Comm | None = None) -> BenchmarkRun:
    """Time training steps on synthetic inputs (collective over ``comm``).

    Args:
        bench: Model, process grid, batch, steps and precision.
        comm: Communicator of all ranks (default: ``get_comm()``).

    Returns:
        Every rank's measurements, on every rank.

    Raises:
        UserError: The process grid does not fit the ranks or the model, or the model does not
            fit in this node's memory (checked on the CPU).
    """
    comm = get_comm() if comm is None else comm
    cfg = bench.model
    spec = GridSpec.parse(bench.grid)
    batch_size, precision, compile_model = bench.batch_size, bench.precision, bench.compile
    check_grid(spec, comm.Get_size(), cfg)
    if not torch.cuda.is_available():
        need = training_bytes(cfg, batch_size, spec.size)
        what = f"training {parameter_count(cfg):,} parameters on batches of {batch_size}"
        raise_together(comm, lambda: require_memory(need, what))
    with torch_distributed(comm) as info:
        device = info.device
        pgrid = ProcessGrid.create(spec, cfg)
        torch.manual_seed(1234 + pgrid.r)
        engine = Engine(cfg, pgrid, device)
        if not engine.jigsaw and pgrid.replica.size > 1:
            _count_ddp(engine)
        if compile_model:
            engine.runner = torch.compile(engine.runner)
        rows = engine.shard.rows.stop - engine.shard.rows.start
        shape = (batch_size, len(engine.shard.state), rows, cfg.grid[1])
        state = torch.randn(batch_size, cfg.history, *shape[1:], device=device)
        extras = torch.randn(
            batch_size, 1, len(engine.shard.extra), rows, cfg.grid[1], device=device
        )
        targets = torch.randn(batch_size, 1, *shape[1:], device=device)
        weights = torch.ones(len(engine.shard.state), rows, 1, device=device)
        optimizer = torch.optim.AdamW([p for _, p in engine.named_shards()], lr=1e-4)
        global_batch = batch_size * pgrid.replicas

        def step(count_activations: bool = False) -> int:
            ctx = saved_activation_bytes() if count_activations else contextlib.nullcontext()
            with ctx as counted:
                if counted is not None:
                    counted[1].update(p.data_ptr() for _, p in engine.named_shards())
                with autocast(device, precision):
                    pred = engine.rollout(state, extras)
                loss = engine.local_loss(pred, targets, weights, global_batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            engine.sync_and_clip(1.0)
            engine.global_loss(loss)
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return counted[0]["bytes"] if counted is not None else 0

        # saved-tensor hooks and torch.compile do not mix: no activation count when compiled
        activation = step(count_activations=not compile_model)
        for _ in range(max(0, bench.warmup - 1)):
            step()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        with count_bytes() as counter:
            before = _wchar()
            for _ in range(bench.steps):
                comm.barrier()
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
            after = _wchar()
        step_s = float(np.median(times))
        flops = flops_per_sample(cfg)["train_step"] * batch_size
        tflops = flops / step_s / 1e12
        params = sum(p.numel() for _, p in engine.named_shards())
        peak = (
            torch.cuda.max_memory_allocated(device)
            if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        )
        result = BenchResult(
            grid=str(spec),
            replicas=pgrid.replicas,
            world_size=comm.Get_size(),
            rank=comm.Get_rank(),
            device=str(device),
            precision=precision,
            compiled=compile_model,
            batch_per_replica=batch_size,
            step_s=step_s,
            samples_per_s=global_batch / step_s,
            tflops_per_rank=tflops / spec.size,
            mfu=(tflops / spec.size / bench.peak_tflops) if bench.peak_tflops else None,
            parameters_total=parameter_count(cfg),
            parameters_rank=params,
            param_bytes=params * 4,
            grad_bytes=params * 4,
            optimizer_bytes=sum(
                v.numel() * v.element_size()
                for s in optimizer.state.values()
                for v in s.values()
                if torch.is_tensor(v) and v.dim() > 0
            ),
            activation_bytes=activation,
            peak_memory_bytes=int(peak),
            comm_bytes_counted=counter.sent_bytes() // bench.steps,
            comm_calls=len(counter.records) // bench.steps,
            comm_bytes_by_group={k: v // bench.steps for k, v in counter.by_group().items()},
            comm_bytes_measured=(
                (after - before) // bench.steps
                if after is not None and before is not None and device.type == "cpu"
                else None
            ),
        )
        return BenchmarkRun(comm.allgather(result))
