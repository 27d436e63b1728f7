"""Forecast skill on the generated data: RMSE and ACC at several lead times against
persistence and climatology (WeatherBench 2 conventions). Writes the `skill` section.

Two simulated years at 32 × 64: year one trains, January of year two validates, February to
December of year two is the test period (one forecast per day, up to 120 h).

    python benchmarks/skill.py                 # ~30 min on 2 busy CPU cores
    python benchmarks/skill.py --steps 300     # a quick look
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import RESULTS, skill_wins, write_section
from weathermixer.config import (
    DataConfig,
    EvaluateConfig,
    ModelConfig,
    RunConfig,
    SimulationConfig,
    TrainConfig,
)
from weathermixer.evaluate import TrainedRun, evaluate
from weathermixer.simulate import generate
from weathermixer.train import TrainResult, train

from shared_hpc import get_comm, set_torch_threads, write_json_atomic
from shared_hpc.bench import machine_line, markdown_table

LEADS_H = [6.0, 24.0, 48.0, 72.0, 120.0]
SHOWN = ("z500", "t850", "t2m", "u500", "msl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--finetune-steps", type=int, default=400)
    parser.add_argument("--max-rollout", type=int, default=20)
    parser.add_argument(
        "--grad-steps", type=int, default=0, help="back-propagate through the last N (0: all)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "wm-skill",
        help="data and run directory (about 200 MB)",
    )
    args = parser.parse_args()
    comm = get_comm()
    set_torch_threads(comm, args.threads)
    work = args.work
    data = work / "data.nc"
    began = time.perf_counter()
    if not data.exists():
        generate(data, SimulationConfig(nlat=32, days=730.0, spinup_days=60.0), progress=print)
    generated = time.perf_counter() - began
    cfg = RunConfig(
        data=DataConfig(
            path=str(data),
            train_period="2000-01-01:2000-12-31",
            valid_period="2001-01-01:2001-01-31",
            test_period="2001-02-01:2001-12-31",
            preload=True,
        ),
        model=ModelConfig(patch=4, embed_dim=192, token_hidden=256, channel_hidden=512, depth=4),
        train=TrainConfig(
            steps=args.steps,
            batch_size=8,
            lr=2e-3,
            min_lr=5e-5,
            warmup_steps=100,
            finetune_steps=args.finetune_steps,
            max_rollout=args.max_rollout,
            rollout_grad_steps=args.grad_steps,
            finetune_lr=1e-4,
            log_every=50,
            val_every=500,
            checkpoint_every=500,
            roll_longitude=True,
        ),
        output=str(work / "run"),
    )
    result = train(cfg, comm, progress=print)
    trained = time.perf_counter() - began - generated
    skill = evaluate(
        TrainedRun.open(work / "run"), EvaluateConfig(leads_h=LEADS_H, stride_h=24.0), comm
    )
    tab = skill.to_dict()
    write_json_atomic(RESULTS / "skill.json", tab)
    write_section("skill", report(tab, result, generated, trained, args))


def report(
    tab: dict, result: TrainResult, generated: float, trained: float, args: argparse.Namespace
) -> str:
    leads = tab["leads_h"]
    header = ["variable", "score", *[f"+{h:g} h" for h in leads]]
    rows = []
    for name in SHOWN:
        for score in ("rmse", "acc"):
            for kind in ("model", "persistence", "climatology"):
                values = tab[kind][name][score]
                if values[0] is None:
                    continue
                label = {
                    "model": "**WeatherMixer**",
                    "persistence": "persistence",
                    "climatology": "climatology",
                }[kind]
                rows.append([name, f"{score.upper()} {label}", *[f"{v:.3g}" for v in values]])
    wins, cells = skill_wins(tab, SHOWN)
    m = result.metrics()
    energy = result.energy
    return (
        "## Skill on the generated data\n\n"
        f"`benchmarks/skill.py`: 2 simulated years on a 32 × 64 grid (T21 shallow-water "
        f"atmosphere, 6-hourly). Trained on year 1: {args.steps} steps, then "
        f"{args.finetune_steps} rollout fine-tuning steps of up to {args.max_rollout} × 6 h "
        f"(gradients through {f'the last {args.grad_steps}' if args.grad_steps else 'all'} "
        "steps), batch 8, longitude-roll "
        f"augmentation, {m['parameters']:,} parameters; tested on {tab['n_forecasts']} daily "
        f"forecasts from {tab['test_period'][0][:10]} to {tab['test_period'][1][:10]}. "
        f"Latitude-weighted RMSE (units of the variable: z in m²/s², t in K, u in m/s, msl in Pa) "
        "and ACC; climatology: " + ", ".join(tab["climatology_terms"]) + " harmonics fitted per "
        "grid point "
        "to the training year.\n\n"
        + markdown_table(header, rows)
        + f"\nWeatherMixer beats both baselines in **{wins} of {cells}** (variable, score, lead) "
        "cells shown.\n\n"
        f"Generating the data took {generated:.0f} s, training {trained:.0f} s "
        f"({m['samples_per_s']:.0f} samples/s median), energy of training "
        f"{energy.total_joules:.0f} J ({'measured' if energy.measured else 'estimated'}, "
        f"{energy.method}). Machine: {machine_line()} (other jobs were running).\n"
    )


if __name__ == "__main__":
    main()
