"""Overhead of EnergyMeter on a fixed CPU workload of about ten seconds.

Runs the same single-threaded work with and without the meter, alternating, and reports the
median of the paired ratios of wall time and of process CPU time (CPU time is less disturbed by
other processes on a shared machine); also the meter's own cost as it accounts for it (time
blocked in start/stop plus its sampling thread's CPU time) and the one-off cost of setting up
codecarbon's model in a fresh process. Writes
``BENCHMARKS.md`` and the overhead block of ``README.md`` beside this folder.

    python shared/benchmarks/run.py [--seconds 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads its BLAS
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

from shared_hpc.bench import machine_line, replace_marked_block
from shared_hpc.energy import EnergyMeter
from shared_hpc.files import write_text_atomic

HERE = Path(__file__).resolve().parent.parent
FIRST_USE = """
import json, time
from shared_hpc.energy import EnergyMeter
meter = EnergyMeter()
with meter:
    end = time.perf_counter() + 2.0
    while time.perf_counter() < end:
        pass
print(json.dumps({"overhead_s": meter.overhead_s, "method": meter.report.method}))
"""


def _work(iterations: int) -> None:
    a = np.random.default_rng(0).standard_normal((200, 200))
    for _ in range(iterations):
        a = np.tanh(a @ a)


def _calibrate(seconds: float) -> int:
    began = time.perf_counter()
    _work(200)
    per_iteration = (time.perf_counter() - began) / 200
    return max(int(seconds / per_iteration), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    iterations = _calibrate(args.seconds)

    def timed(metered: bool) -> tuple[float, float, EnergyMeter | None]:
        meter = EnergyMeter() if metered else None
        w0, c0 = time.perf_counter(), time.process_time()
        if meter is None:
            _work(iterations)
        else:
            with meter:
                _work(iterations)
        return time.perf_counter() - w0, time.process_time() - c0, meter

    wall, cpu, noise, own, method = [], [], [], [], ""
    for _ in range(args.repeats):  # plain, meter, meter, plain: cancels drifts in the load
        p1, m1, m2, p2 = timed(False), timed(True), timed(True), timed(False)
        wall.append((m1[0] + m2[0]) / (p1[0] + p2[0]))
        cpu.append((m1[1] + m2[1]) / (p1[1] + p2[1]))
        noise.append(abs(p1[0] / p2[0] - 1))
        for _, _, meter in (m1, m2):
            own.append(meter.overhead_s / meter.report.seconds)
            method = meter.report.method
    first = json.loads(
        subprocess.run(
            [sys.executable, "-c", FIRST_USE], capture_output=True, text=True, check=True
        ).stdout
    )

    machine = machine_line()
    wall_diff, wall_noise = statistics.median(wall) - 1, statistics.median(noise)
    verdict = (
        "The wall-time difference is within the run-to-run noise of this machine, so it "
        "cannot resolve the meter's cost; the meter's own accounted cost in the table can."
        if abs(wall_diff) <= wall_noise
        else "The wall-time difference exceeds the run-to-run noise."
    )
    table = "\n".join(
        [
            f"Fixed single-threaded NumPy workload of about {args.seconds:.0f} s, run "
            f"{args.repeats} times in the order plain, metered, metered, plain; medians of the "
            f"ratios metered / plain. Energy method on this machine: **{method}**. "
            f"Machine: {machine}.",
            "",
            "| measure | overhead |",
            "|---|---|",
            f"| wall time, with / without meter | {100 * wall_diff:+.2f} % |",
            f"| run-to-run noise of wall time (plain vs plain) | {100 * wall_noise:.2f} % |",
            f"| process CPU time, with / without meter | "
            f"{100 * (statistics.median(cpu) - 1):+.2f} % |",
            f"| meter's own cost (blocked in start/stop + sampling thread CPU) "
            f"| {100 * statistics.median(own):.3f} % |",
            f"| one-off codecarbon set-up, first meter of a fresh process (2 s run) "
            f"| {first['overhead_s']:.3f} s CPU in a background thread |",
            "",
            verdict,
        ]
    )
    write_text_atomic(
        HERE / "BENCHMARKS.md",
        "# shared-hpc benchmarks\n\n"
        "Written by `benchmarks/run.py`; do not edit by hand.\n\n"
        "## EnergyMeter overhead\n\n" + table + "\n",
    )
    replace_marked_block(HERE / "README.md", "overhead", table)
    print(table)


if __name__ == "__main__":
    main()
