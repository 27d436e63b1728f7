"""The shared-hpc demo: a small data-parallel torch training loop, measured and recorded.

It shows the three pieces together: the communicator (serial or ``mpiexec -n N``),
``torch.distributed`` set up from it (DDP over gloo on CPU, NCCL on GPU), and the energy meter
around the training loop. An MLP learns a smooth 8-D regression target from synthetic data,
each rank drawing its own shard; rank 0 writes ``results.json`` and ``demo.png``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared_hpc.__about__ import __version__
from shared_hpc.distributed import torch_distributed
from shared_hpc.energy import EnergyReport
from shared_hpc.errors import UserError
from shared_hpc.files import prepare_output_dir, write_json_atomic
from shared_hpc.mpi import Comm, get_comm, rank0_print
from shared_hpc.recorder import Recorder
from shared_hpc.records import Headline, RunRecord

__all__ = ["DemoConfig", "run_demo"]


@dataclass(frozen=True)
class DemoConfig:
    """Settings of the demo; the defaults take about ten seconds on two CPU cores.

    Attributes:
        steps: Training steps.
        batch_size: Samples per rank and step.
        hidden: Width of the MLP's two hidden layers.
        lr: Adam's learning rate.
        inputs: Dimension of the regression inputs.
        seed: Seed of the data and the initial weights (each rank adds its rank to it).
    """

    steps: int = 2500
    batch_size: int = 256
    hidden: int = 256
    lr: float = 3e-3
    inputs: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "hidden", "inputs"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UserError(f"lr must be a positive number, got {self.lr}")


def _target(x: Any) -> Any:
    """A smooth function of all inputs that an MLP needs a few hundred steps to fit."""
    import torch

    return torch.sin(2.0 * x[:, :1]) * torch.cos(x[:, 1:2]) + 0.5 * torch.tanh(
        x.sum(1, keepdim=True)
    )


def _plot(
    path: Path, losses: list[float], val_every: int, val: list[float], report: EnergyReport
) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_energy = fig.subplots(1, 2)
    ax_loss.semilogy(losses, label="training loss (rank 0 batch)", alpha=0.6)
    ax_loss.semilogy([i * val_every for i in range(len(val))], val, "o-", label="validation MSE")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("mean squared error")
    ax_loss.legend()
    kinds = list(report.joules)
    ax_energy.bar(kinds, [report.joules[k] for k in kinds], color="tab:green")
    for i, kind in enumerate(kinds):
        ax_energy.annotate(report.methods[kind], (i, report.joules[kind]), ha="center", va="bottom")
    ax_energy.set_ylabel("energy (J)")
    ax_energy.set_title(
        f"{report.total_joules:.0f} J in {report.seconds:.1f} s on {report.nodes} node(s)"
    )
    fig.savefig(path, dpi=100)


def run_demo(
    output: str | Path, config: DemoConfig | None = None, comm: Comm | None = None
) -> RunRecord:
    """Train, measure and record; returns the run record (files written by rank 0 only)."""
    import torch
    from torch.nn.parallel import DistributedDataParallel

    config = config or DemoConfig()
    comm = get_comm() if comm is None else comm
    output = prepare_output_dir(output)
    # One thread per rank: a model this small gains nothing from intra-op threads, and spinning
    # thread pools slow everyone down when ranks share cores.
    torch.set_num_threads(1)
    torch.manual_seed(config.seed + comm.Get_rank())
    with torch_distributed(comm, single_process_group=True) as dist_info:
        device = dist_info.device
        gen = torch.Generator().manual_seed(10_000 + config.seed)
        x_val = torch.rand(4096, config.inputs, generator=gen) * 4 - 2
        x_val, y_val = x_val.to(device), _target(x_val).to(device)
        model = torch.nn.Sequential(
            torch.nn.Linear(config.inputs, config.hidden),
            torch.nn.GELU(),
            torch.nn.Linear(config.hidden, config.hidden),
            torch.nn.GELU(),
            torch.nn.Linear(config.hidden, 1),
        ).to(device)
        ddp = DistributedDataParallel(model)
        optimiser = torch.optim.Adam(ddp.parameters(), lr=config.lr)
        val_every = max(config.steps // 20, 1)
        losses: list[float] = []
        val: list[float] = []

        def validate() -> None:
            with torch.no_grad():
                val.append(torch.nn.functional.mse_loss(model(x_val), y_val).item())

        validate()
        rank0_print(
            f"training {config.steps} steps on {dist_info.world_size} rank(s), {device}", comm=comm
        )
        with Recorder("shared-hpc", __version__, comm) as run:
            for step in range(1, config.steps + 1):
                x = (torch.rand(config.batch_size, config.inputs) * 4 - 2).to(device)
                loss = torch.nn.functional.mse_loss(ddp(x), _target(x))
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                losses.append(loss.item())
                if step % val_every == 0:
                    validate()
    report = run.report
    samples = config.steps * config.batch_size * dist_info.world_size
    metrics = {
        "val_mse_initial": val[0],
        "val_mse_final": val[-1],
        "train_loss_final": losses[-1],
        "train_seconds": report.seconds,
        "samples_per_s": samples / report.seconds,
        "joules_per_1k_samples": 1000 * report.total_joules / samples,
        "meter_overhead_percent": 100 * run.meter.overhead_s / report.seconds,
        "world_size": dist_info.world_size,
        "backend": dist_info.backend,
    }
    headline = Headline(
        "energy per 1000 training samples",
        metrics["joules_per_1k_samples"],
        unit="J",
        higher_is_better=False,
    )
    if run.is_writer:
        write_json_atomic(
            output / "losses.json", {"train": losses, "val": val, "val_every": val_every}
        )
        _plot(output / "demo.png", losses, val_every, val, report)
    record = run.write(
        output / "results.json",
        config=config,
        metrics=metrics,
        headline=headline,
        artifacts=["demo.png", "losses.json"],
    )
    rank0_print(f"energy: {report}", comm=comm)
    rank0_print(
        f"validation MSE {val[0]:.4f} -> {val[-1]:.4f}; wrote {output}/results.json", comm=comm
    )
    return record
