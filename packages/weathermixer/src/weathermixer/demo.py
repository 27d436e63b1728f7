"""The embedded default end to end: generate a small world, train, evaluate, plot.

About a minute on two CPU cores as a plain process; under ``mpiexec -n N`` the same steps run
on a process grid (2×2 for 4 ranks, N×1 where the bands allow, else pure data parallelism).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from shared_hpc import EnergyMeter, RunRecord, config_to_dict, get_comm
from weathermixer.__about__ import __version__
from weathermixer.config import ArchConfig, DataConfig, RunConfig, TrainConfig
from weathermixer.evaluate import evaluate, headline_skill
from weathermixer.simulate import SimulationConfig, generate
from weathermixer.train import train

SIMULATION = SimulationConfig(nlat=32, days=100.0, spinup_days=30.0)
MODEL = ArchConfig(patch=4, embed_dim=128, token_hidden=128, channel_hidden=256, depth=3)
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
LEADS_H = [6.0, 12.0, 24.0, 48.0]
# For the test suite: the same pipeline in seconds (numbers not meaningful).
QUICK = (
    SimulationConfig(nlat=16, days=24.0, spinup_days=2.0),
    ArchConfig(patch=2, embed_dim=16, token_hidden=16, channel_hidden=32, depth=1),
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
    if world % 4 == 0:
        return "2x2"
    if world in (2, 8):
        return f"{world}x1"
    return "1x1"


def demo(output: Path, comm: Any = None, quick: bool = False) -> RunRecord | None:
    """Run the demo into ``output``; returns the run record on rank 0.

    ``quick`` runs the same steps on a tiny world in seconds (for tests).
    """
    comm = comm or get_comm()
    simulation, model, training = QUICK if quick else (SIMULATION, MODEL, TRAINING)
    output = Path(output)
    rank0 = comm.Get_rank() == 0
    started = time.perf_counter()
    data = output / "data.nc"
    with EnergyMeter(comm) as meter:
        if rank0:
            print(
                f"simulating {simulation.days:g} days on a {simulation.nlat}×"
                f"{2 * simulation.nlat} grid"
            )
            generate(data, simulation)
        comm.barrier()
        cfg = RunConfig(
            data=DataConfig(path=str(data), preload=True),
            model=model,
            train=training,
            grid=demo_grid(comm.Get_size()),
            output=str(output / "run"),
        )
        train(cfg, comm, progress=print)
        table = evaluate(output / "run", output, LEADS_H, stride_h=12.0, comm=comm)
    if not rank0:
        return None
    skill = headline_skill(table, "z500")
    log = [
        json.loads(line) for line in (output / "run" / "train_log.jsonl").read_text().splitlines()
    ]
    _loss_plot(log, output / "training_loss.png")
    metrics = {
        "z500_rmse_skill_vs_persistence": skill,
        "leads_h": LEADS_H,
        "rmse": {
            k: {c: table[k][c]["rmse"] for c in ("z500", "t850", "t2m", "msl")}
            for k in ("model", "persistence", "climatology")
        },
        "acc": {
            k: {c: table[k][c]["acc"] for c in ("z500", "t850", "t2m", "msl")}
            for k in ("model", "persistence")
        },
        "climatology_terms": table["climatology_terms"],
        "n_forecasts": table["n_forecasts"],
        "grid": cfg.grid,
        "ranks": comm.Get_size(),
    }
    record = RunRecord.create(
        "weathermixer",
        __version__,
        config={
            "simulation": config_to_dict(simulation),
            "run": config_to_dict(cfg),
            "leads_h": LEADS_H,
        },
        metrics=metrics,
        headline={
            "name": f"Z500 RMSE skill vs persistence at +{LEADS_H[-1]:g} h (1 - model/persistence)",
            "value": skill,
            "unit": "",
            "paper": None,
            "higher_is_better": True,
        },
        energy=meter.report.to_dict(),
        wall_time_s=time.perf_counter() - started,
        artifacts=[
            "skill.json",
            "skill_vs_lead.png",
            "map_z500.png",
            "training_loss.png",
            "run/",
            "data.nc",
        ],
        comm=comm,
    )
    record.write(output / "results.json")
    print(
        f"Z500 RMSE at +{LEADS_H[-1]:g} h: model {table['model']['z500']['rmse'][-1]:.0f}, "
        f"persistence {table['persistence']['z500']['rmse'][-1]:.0f}, climatology "
        f"{table['climatology']['z500']['rmse'][-1]:.0f} m²/s²; skill {skill:.3f}"
    )
    print(f"wrote {output / 'results.json'} ({meter.report})")
    return record


def _loss_plot(log: list[dict[str, Any]], path: Path) -> None:
    fig = Figure(figsize=(5, 3.2), layout="constrained")
    ax = fig.subplots()
    train_log = [e for e in log if "loss" in e]
    valid = [e for e in log if "val_loss" in e]
    ax.plot([e["step"] for e in train_log], [e["loss"] for e in train_log], label="training")
    ax.plot([e["step"] for e in valid], [e["val_loss"] for e in valid], "o", label="validation")
    ax.axhline(1.0, color="gray", ls=":", label="≈ persistence")
    ax.set_xlabel("step")
    ax.set_ylabel("weighted MSE (units of 1-step change)")
    ax.legend()
    fig.savefig(path, dpi=110)
