"""The embedded default end to end: generate a small world, train, evaluate, plot.

About a minute on two CPU cores as a plain process; under ``mpiexec -n N`` the same steps run
on a process grid (2×2 for 4 ranks, N×1 where the bands allow, else pure data parallelism).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from shared_hpc import (
    Comm,
    Recorder,
    RunRecord,
    check_output_file,
    get_comm,
    lock_folder,
    rank0_print,
)
from weathermixer.__about__ import __version__
from weathermixer.config import (
    DataConfig,
    EvaluateConfig,
    ModelConfig,
    RunConfig,
    SimulationConfig,
    TrainConfig,
)
from weathermixer.evaluate import TrainedRun, evaluate
from weathermixer.plots import loss_plot
from weathermixer.report import skill_files, write_skill
from weathermixer.simulate import generate
from weathermixer.train import train

SIMULATION = SimulationConfig(nlat=32, days=100.0, spinup_days=30.0)
MODEL = ModelConfig(patch=4, embed_dim=128, token_hidden=128, channel_hidden=256, depth=3)
TRAINING = TrainConfig(
    steps=280,
    batch_size=8,
    lr=4e-3,
    min_lr=1e-4,
    warmup_steps=20,
    finetune_steps=40,
    max_rollout=3,
    finetune_lr=2e-4,
    log_every=20,
    val_every=160,
    checkpoint_every=160,
    val_batches=3,
    roll_longitude=True,
)
EVALUATION = EvaluateConfig(leads_h=[6.0, 12.0, 24.0, 48.0], stride_h=12.0)
# For the test suite: the same pipeline in seconds (numbers not meaningful).
QUICK = (
    SimulationConfig(nlat=16, days=24.0, spinup_days=2.0),
    ModelConfig(patch=2, embed_dim=16, token_hidden=16, channel_hidden=32, depth=1),
    TrainConfig(
        steps=6,
        batch_size=4,
        warmup_steps=2,
        finetune_steps=2,
        max_rollout=2,
        log_every=2,
        val_every=8,
        checkpoint_every=8,
        val_batches=1,
        roll_longitude=True,
    ),
)


def demo_grid(world: int) -> str:
    """The demo's process grid: 2×2 for multiples of 4 ranks, N×1 for 2 and 8, else 1×1.

    Args:
        world: Ranks taking part.
    """
    if world % 4 == 0:
        return "2x2"
    if world in (2, 8):
        return f"{world}x1"
    return "1x1"


def run_demo(
    output: str | os.PathLike[str], comm: Comm | None = None, quick: bool = False
) -> RunRecord:
    """Generate, train and evaluate into ``output``; writes ``results.json`` and the plots.

    Args:
        output: Folder of the demo's files (created).
        comm: Communicator of all ranks (default: ``get_comm()``).
        quick: The same steps on a tiny world in seconds (for tests; figures not meaningful).

    Returns:
        The run record (written by rank 0), on every rank.

    Raises:
        UserError: An output cannot be written, or another run uses ``output``.
    """
    comm = get_comm() if comm is None else comm
    with lock_folder(output, comm) as folder:
        return _run_demo(folder, comm, quick)


def _run_demo(output: Path, comm: Comm, quick: bool) -> RunRecord:
    """The demo in its locked folder, its outputs checked first."""
    simulation, model, training = QUICK if quick else (SIMULATION, MODEL, TRAINING)
    channels = DataConfig().variables.state_channels
    for name in ("results.json", "training_loss.png", "data.nc", *skill_files(channels)):
        check_output_file(output / name)
    data = output / "data.nc"
    cfg = RunConfig(
        data=DataConfig(path=str(data), preload=True),
        model=model,
        train=training,
        grid=demo_grid(comm.Get_size()),
        output=str(output / "run"),
    )
    with Recorder("weathermixer", __version__, comm) as run:
        rank0_print(
            f"simulating {simulation.days:g} days on a {simulation.nlat}×"
            f"{2 * simulation.nlat} grid",
            comm=comm,
        )
        if comm.Get_rank() == 0:
            generate(data, simulation)
        comm.barrier()
        trained = train(cfg, comm, progress=print)
        skill = evaluate(TrainedRun.open(output / "run"), EVALUATION, comm)
    artifacts = ["training_loss.png", "run/", "data.nc"]
    if run.is_writer:
        artifacts = write_skill(skill, output) + artifacts
        lines = (output / "run" / "train_log.jsonl").read_text().splitlines()
        loss_plot([json.loads(line) for line in lines], output / "training_loss.png")
    record = run.write(
        output / "results.json",
        config={"simulation": simulation, "run": trained.config, "evaluation": EVALUATION},
        metrics={**skill.metrics(), "grid": cfg.grid, "ranks": comm.Get_size()},
        headline=skill.headline(),
        artifacts=artifacts,
    )
    kinds = ("model", "persistence", "damped_persistence", "climatology")
    z500 = [skill.scores(kind)["z500"].rmse[-1] for kind in kinds]
    rank0_print(
        f"Z500 RMSE at +{skill.leads_h[-1]:g} h: model {z500[0]:.0f}, persistence {z500[1]:.0f}, "
        f"damped persistence {z500[2]:.0f}, climatology {z500[3]:.0f} m²/s²; skill "
        f"{skill.rmse_skill('z500'):.3f}",
        comm=comm,
    )
    rank0_print(f"wrote {output / 'results.json'} ({run.report})", comm=comm)
    return record
