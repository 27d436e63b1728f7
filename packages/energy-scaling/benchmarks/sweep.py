"""Write BENCHMARKS.md's sweep table: a real sweep on this machine, fitted and recommended.

    python benchmarks/sweep.py                 # CPU: ResNet18 on digits, 1-2 ranks, 4 batches
    python benchmarks/sweep.py --device cuda   # one GPU: ResNet50 bf16, NVML-measured energy
    python benchmarks/sweep.py --resume        # keep finished points, redo the analysis

Every point runs as its own job through the package's runner (``mpiexec`` for two ranks), then
the package's analysis fits energy against device-hours and recommends a configuration. The
energy method of every number is printed beside it (on a machine without readable RAPL or NVML
it is codecarbon's estimate).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from energy_scaling.cli import analyze_folders
from energy_scaling.config import DataConfig, ModelConfig, SweepConfig, TrainConfig
from energy_scaling.runner import run_sweep

from shared_hpc import RunRecord
from shared_hpc.bench import machine_line, markdown_table, replace_marked_block

HERE = Path(__file__).resolve().parent.parent

SWEEPS = {
    "cpu": SweepConfig(
        name="bench-cpu-resnet18-digits",
        ranks=[1, 2],
        global_batch=[16, 32, 64, 128],
        threads=1,
        data=DataConfig(image_size=16),
        train=TrainConfig(epochs=3, evals_per_epoch=2, base_lr=0.01, warmup_epochs=0.3,
                          target=0.9),
    ),
    "cuda": SweepConfig(
        name="bench-gpu-resnet50-digits",
        ranks=[1],
        global_batch=[64, 128, 256, 512],
        device="cuda",
        model=ModelConfig(name="resnet50"),
        data=DataConfig(image_size=64),
        train=TrainConfig(epochs=8, evals_per_epoch=2, base_lr=0.01, warmup_epochs=0.5,
                          precision="bf16", target=0.9),
    ),
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=sorted(SWEEPS), default="cpu")
    parser.add_argument("--output", type=Path, default=Path("/tmp/energy-scaling-bench"))
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the points a previous run finished (default: start afresh)",
    )
    args = parser.parse_args()
    sweep = SWEEPS[args.device]
    folder = args.output / args.device
    if not args.resume:
        shutil.rmtree(folder, ignore_errors=True)
    machine = machine_line()
    run = run_sweep(sweep, folder / "sweep", progress=lambda o: print(o.point.id, o.status,
                                                                      o.message))  # fmt: skip
    headline, choice = analyze_folders([folder / "sweep"], folder / "analysis")
    record = RunRecord.read(folder / "analysis" / "results.json")
    fit = record.metrics["fits"][0]
    records = [
        RunRecord.read(p).metrics for p in (folder / "sweep" / "points").glob("*/results.json")
    ]
    rows = []
    for m in sorted(records, key=lambda m: (m["ranks"], m["global_batch"], m["local_batch"])):
        method = "+".join(sorted(set(m["energy_methods"].values())))
        rows.append([
            m["point"], m["ranks"], m["global_batch"], f"{m['final_metric']:.3f}",
            f"{m['wall_time_s']:.1f}", f"{m['device_hours'] * 3600:.1f}",
            f"{m['energy_j']:.0f}", f"{m['energy_j'] / m['samples'] * 1e3:.1f}",
            "–" if m["time_to_target_s"] is None else f"{m['time_to_target_s']:.1f}",
            "–" if m["energy_to_target_j"] is None else f"{m['energy_to_target_j']:.0f}",
            f"{m['throughput_samples_per_s']:.0f}", method,
        ])  # fmt: skip
    table = markdown_table(
        ["point", "ranks", "global batch", "accuracy", "time [s]", "device-s", "energy [J]",
         "mJ/sample", "time to 0.9 [s]", "energy to 0.9 [J]", "samples/s", "energy method"],
        rows,
    )  # fmt: skip
    kind = "measured" if fit["measured"] else "estimated"
    power = {}
    for m in records:
        power.setdefault(m["ranks"], []).append(m["energy_j"] / (m["device_hours"] * 3600))
    per_rank = ", ".join(f"{r} rank(s) {sum(w) / len(w):.1f} W" for r, w in sorted(power.items()))
    rates = record.metrics["rates"][0]
    rate_line = (
        "too few points for the regression of k on samples and updates per device-hour"
        if "coefficients" not in rates
        else "k regressed on samples and updates per device-hour (millions): "
        f"{rates['coefficients']['samples'] * 1e3:+.3g} Wh per device-hour per M samples, "
        f"{rates['coefficients']['updates'] * 1e3:+.3g} Wh per device-hour per M updates, "
        f"R² = {rates['r2']:.3f}"
    )
    failed = ", failed: " + ", ".join(run.ids("failed")) if run.ids("failed") else ""
    text = (
        f"Sweep `{sweep.name}` ({len(rows)} points{failed}); machine: {machine}.\n\n{table}\n"
        f"Fit ({kind} energy; methods: {', '.join(fit['methods'])}): "
        f"k = {fit['watts_per_device']:.3g} W per device "
        f"(95 % CI {fit['k_ci'][0] * 1e3:.3g} .. {fit['k_ci'][1] * 1e3:.3g}), "
        f"intercept {fit['intercept_kwh'] * 3.6e6:.0f} J, R² = {fit['r2']:.3f} over "
        f"{fit['points']} points. Mean power per device: {per_rank}. {rate_line}.\n\n"
        "Recommendation (`energy-scaling recommend`):\n\n"
        f"```\n{choice}\n```\n"
    )
    replace_marked_block(HERE / "BENCHMARKS.md", f"sweep-{args.device}", text, append=True)
    print(text)
    print(headline)


if __name__ == "__main__":
    main()
