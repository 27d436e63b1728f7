"""Forecast skill on the generated two-layer atmosphere: RMSE and ACC at 6-120 h against
persistence, damped persistence and a climatology of a separate multi-year record (WeatherBench 2
conventions), on a held-out year of the training seed and on another seed's file scored with
``evaluate --data``. Writes the `skill` section of BENCHMARKS.md.

Three simulated years at 32 × 64 (seed 0): 2000-2001 train, January 2002 validates, February
to December 2002 is the test period (one forecast per day). The climatology is fitted to four
years of another seed (1990-1993); the damped persistence to the training years.

    python benchmarks/skill.py                 # about an hour on 2 busy CPU cores
    python benchmarks/skill.py --quick         # a smoke test of the script (figures meaningless)
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
from weathermixer.evaluate import ACC_KINDS, KINDS, TrainedRun, evaluate
from weathermixer.simulate import generate
from weathermixer.train import TrainResult, train

from shared_hpc import get_comm, set_torch_threads, write_json_atomic
from shared_hpc.bench import machine_line, markdown_table

LEADS_H = [6.0, 24.0, 48.0, 72.0, 120.0]
SHOWN = ("z500", "t850", "t2m", "u10", "msl")
LABELS = {
    "model": "**WeatherMixer**",
    "persistence": "persistence",
    "damped_persistence": "damped persistence",
    "climatology": "climatology",
}
SHORT = {"persistence": "P", "damped_persistence": "DP", "climatology": "C"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--finetune-steps", type=int, default=200)
    parser.add_argument("--max-rollout", type=int, default=12)
    parser.add_argument("--grad-steps", type=int, default=3, help="back-propagate the last N")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny smoke test, no section")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "wm-skill-0.2",
        help="data and run directory (about 500 MB)",
    )
    args = parser.parse_args()
    comm = get_comm()
    set_torch_threads(comm, args.threads)
    work = args.work
    nlat = 16 if args.quick else 32
    if args.quick:
        args.steps, args.finetune_steps, args.max_rollout = 10, 4, 20
    files = {
        "data": SimulationConfig(nlat=nlat, days=1095.0, start="2000-01-01T00:00", seed=0),
        "record": SimulationConfig(nlat=nlat, days=1461.0, start="1990-01-01T00:00", seed=1),
        "other": SimulationConfig(nlat=nlat, days=365.0, start="2002-01-01T00:00", seed=4242),
    }
    began = time.perf_counter()
    reused = []
    for name, sim in files.items():
        path = work / f"{name}.nc"
        if path.exists():
            reused.append(path.name)
            continue
        generate(path, sim, progress=lambda line, n=name: print(n, line, flush=True))
    generated = time.perf_counter() - began
    args.reused = reused
    cfg = RunConfig(
        data=DataConfig(
            path=str(work / "data.nc"),
            train_period="2000-01-01:2001-12-31",
            valid_period="2002-01-01:2002-01-31",
            test_period="2002-02-01:2002-12-31",
            preload=True,
        ),
        model=ModelConfig(patch=4, embed_dim=192, token_hidden=256, channel_hidden=512, depth=4),
        train=TrainConfig(
            steps=args.steps,
            batch_size=8,
            lr=2e-3,
            min_lr=5e-5,
            warmup_steps=min(100, args.steps // 2),
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
    result = train(cfg, comm, progress=lambda line: print(line, flush=True))
    trained = time.perf_counter() - began - generated
    run = TrainedRun.open(work / "run")
    climatology = str(work / "record.nc")
    common = dict(leads_h=LEADS_H, stride_h=24.0, climatology=climatology)
    held_out = evaluate(run, EvaluateConfig(**common), comm).to_dict()
    other = evaluate(
        run, EvaluateConfig(data=str(work / "other.nc"), period="2002-02-01:2002-12-31", **common)
    ).to_dict()
    evaluated = time.perf_counter() - began - generated - trained
    if args.quick:
        print(table(held_out))
        print(table(other))
        return
    write_json_atomic(RESULTS / "skill.json", held_out)
    write_json_atomic(RESULTS / "skill_other_seed.json", other)
    write_section("skill", report(held_out, other, result, (generated, trained, evaluated), args))


def lost_cells(tab: dict) -> str:
    """The (variable, score, lead) cells where some baseline is at least as good."""
    lost = []
    for name in SHOWN:
        for score, kinds in (("rmse", KINDS), ("acc", ACC_KINDS)):
            for k, lead in enumerate(tab["leads_h"]):
                model = tab["model"][name][score][k]
                others = [tab[kind][name][score][k] for kind in kinds[1:]]
                if (min(others) <= model) if score == "rmse" else (max(others) >= model):
                    lost.append(f"{name} {score.upper()} +{lead:g} h")
    return ", ".join(lost) if lost else "none"


def table(tab: dict) -> str:
    """RMSE and ACC of the model and every baseline, and the verdict per cell."""
    leads = tab["leads_h"]
    header = ["variable", "score", *[f"+{h:g} h" for h in leads]]
    rows = []
    for name in SHOWN:
        for score, kinds in (("rmse", KINDS), ("acc", ACC_KINDS)):
            for kind in kinds:
                values = tab[kind][name][score]
                rows.append(
                    [name, f"{score.upper()} {LABELS[kind]}", *[f"{v:.3g}" for v in values]]
                )
            verdict = []
            for k in range(len(leads)):
                model = tab["model"][name][score][k]
                beaten_by = [
                    SHORT[kind]
                    for kind in kinds[1:]
                    if (
                        tab[kind][name][score][k] <= model
                        if score == "rmse"
                        else tab[kind][name][score][k] >= model
                    )
                ]
                verdict.append("wins" if not beaten_by else "loses to " + "+".join(beaten_by))
            rows.append([name, f"{score.upper()} verdict", *verdict])
    return markdown_table(header, rows)


def report(
    held_out: dict,
    other: dict,
    result: TrainResult,
    seconds: tuple[float, float, float],
    args: argparse.Namespace,
) -> str:
    m = result.metrics()
    energy = result.energy
    generated, trained, evaluated = seconds
    wins, cells = skill_wins(held_out, SHOWN)
    wins_o, cells_o = skill_wins(other, SHOWN)
    return (
        "## Skill on the generated data\n\n"
        "`benchmarks/skill.py`. Data: the two-layer baroclinic atmosphere of "
        "`weathermixer generate` (T21, 32 × 64, 6-hourly), three years of seed 0 (2000-2002). "
        f"Trained on 2000-2001: {args.steps} steps, then {args.finetune_steps} rollout "
        f"fine-tuning steps of up to {args.max_rollout} × 6 h (gradients through the last "
        f"{args.grad_steps}), batch 8, longitude-roll augmentation, {m['parameters']:,} "
        "parameters. Baselines: persistence; damped persistence (the initial anomaly times a "
        "coefficient per lead, channel and latitude row, least-squares fitted on the training "
        "years); climatology: " + ", ".join(held_out["climatology_terms"]) + " harmonics per "
        f"grid point fitted to {held_out['climatology_source']}. Latitude-weighted RMSE (z in "
        "m²/s², t in K, u in m/s, msl in Pa) and ACC. A verdict cell says whether the model "
        "beats every baseline at that lead (P persistence, DP damped persistence, C "
        "climatology).\n\n"
        f"**Held-out year** ({held_out['n_forecasts']} daily forecasts from "
        f"{held_out['test_period'][0][:10]} to {held_out['test_period'][1][:10]}): "
        f"WeatherMixer beats every baseline in **{wins} of {cells}** (variable, score, lead) "
        f"cells; lost: {lost_cells(held_out)}.\n\n"
        + table(held_out)
        + f"\n**Another seed's file** (`weathermixer evaluate --data other.nc --period "
        f"2002-02-01:2002-12-31`: seed 4242, never seen in training, normalised with the run's "
        f"statistics; {other['n_forecasts']} forecasts): WeatherMixer beats every baseline in "
        f"**{wins_o} of {cells_o}** cells; lost: {lost_cells(other)}.\n\n"
        + table(other)
        + (
            f"\nGenerating the 8 simulated years took {generated:.0f} s"
            if not args.reused
            else f"\nThe data files ({', '.join(args.reused)}) were reused from an earlier start"
        )
        + f", training {trained:.0f} s "
        f"({m['samples_per_s']:.0f} samples/s median), the two evaluations {evaluated:.0f} s; "
        f"energy of training {energy.total_joules:.0f} J "
        f"({'measured' if energy.measured else 'estimated'}). "
        f"Machine: {machine_line()}; the 2 cores were shared with other jobs, so times are "
        "noisy.\n"
    )


if __name__ == "__main__":
    main()
