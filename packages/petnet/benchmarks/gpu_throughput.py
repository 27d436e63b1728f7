"""PETNet inference throughput on a GPU beside the classical sorters on the same machine's CPU.

Run after ``run.py`` (it needs the trained ring networks in ``bench-results/runs``); the test
acquisitions are simulated again from the same seeds, so they are the same singles. Writes
``benchmarks/gpu_throughput.md``, which ``run.py --markdown-only`` puts into BENCHMARKS.md.

    python benchmarks/gpu_throughput.py --device cuda
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from petnet.classical import gate_sorter, sliding_window
from petnet.inference import PETNetSorter

from shared_hpc import write_text_atomic
from shared_hpc.bench import machine_line

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import CLINICAL, SMALL, acquisition, rate

HERE = Path(__file__).resolve().parent


def median_seconds(run, repeats: int) -> float:
    run()  # warm-up: CUDA context, kernels, caches
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        tic = time.perf_counter()
        run()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - tic)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--work", type=Path, default=Path("bench-results"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=262_144, help="patches per batch")
    parser.add_argument("--output", type=Path, default=HERE / "gpu_throughput.md")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here")
    threads = torch.get_num_threads()
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured by `benchmarks/gpu_throughput.py` on {date} on {machine_line()}: PETNet on "
        f"`{args.device}`; classical sorters and PETNet on CPU on the same machine with "
        f"{threads} torch threads. Highest activity of each use case, median of {args.repeats} "
        "runs after one warm-up; PETNet times include encoding and patch building on the CPU.",
        "",
        "| use case | singles | PETNet ring, events (GPU) | PETNet ring, time-stepped (GPU) "
        "| PETNet ring, events (CPU) | PETNet dense (GPU) | GATE takeWinnerOfGoods "
        "| sliding window | PETNet ring events GPU ÷ GATE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case in (SMALL, CLINICAL):
        index = len(case.activities_mbq) - 1
        activity = case.activities_mbq[index]
        test = acquisition(case, activity, case.decays[2], 300 + index)
        checkpoint = args.work / "runs" / case.tag / "ring" / "best.pt"
        gpu = PETNetSorter.from_checkpoint(checkpoint, args.device, batch_size=args.batch_size)
        steps = PETNetSorter.from_checkpoint(
            checkpoint, args.device, batch_size=args.batch_size, engine="steps"
        )
        cpu = PETNetSorter.from_checkpoint(checkpoint, "cpu")
        methods = {
            "gpu": gpu.predict,
            "steps": steps.predict,
            "cpu": cpu.predict,
            "gate": lambda s: gate_sorter(s, 4.0),
            "sliding": lambda s: sliding_window(s, 4.0, (350.0, 650.0)),
        }
        dense = args.work / "runs" / case.tag / "dense" / "best.pt"
        if dense.is_file():
            methods["dense"] = PETNetSorter.from_checkpoint(dense, args.device).predict
        n = len(test)
        speed = {
            k: n / median_seconds(partial(run, test), args.repeats) for k, run in methods.items()
        }
        lines.append(
            f"| {case.tag}, {activity:g} MBq | {n:,} | {rate(speed['gpu'])} | "
            f"{rate(speed['steps'])} | {rate(speed['cpu'])} | "
            f"{rate(speed['dense']) if 'dense' in speed else '–'} | "
            f"{rate(speed['gate'])} | {rate(speed['sliding'])} | "
            f"{speed['gpu'] / speed['gate']:.2f} |"
        )
        print(lines[-1], flush=True)
    write_text_atomic(args.output, "\n".join(lines) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
