"""Why the default breeding draws 15 % of its children from ``EliteGaussian``: writes
ELITE_SHARE.md.

    python benchmarks/elite_share.py              # 64 seeds, about two minutes on one core
    python benchmarks/elite_share.py --seeds 8    # a quick look

One worker (serial, no MPI launch), 1000 evaluations, population 8 (as in BENCHMARKS.md), on
the benchmark's six functions, with ``elite_probability`` 0 (the paper's GA), 0.15 (the
default) and 0.25. Medians of the best loss over seeds, and one-sided Mann-Whitney p values for
"this share ends worse than the default".
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import FUNCTIONS
from propulate_hpo import propulate
from propulate_hpo.functions import benchmark
from propulate_hpo.propagators import default_propagator
from run import _no_worse

from shared_hpc import write_text_atomic
from shared_hpc.bench import machine_line

SHARES = (0.0, 0.15, 0.25)
DEFAULT = 0.15
POP_SIZE = 8


def best_losses(function: str, share: float, seeds: int, evaluations: int) -> list[float]:
    loss, space = benchmark(function)
    return [
        propulate(
            loss,
            space,
            generations=evaluations,
            seed=seed,
            pop_size=POP_SIZE,
            propagator=default_propagator(POP_SIZE, space, elite_probability=share),
        ).best_loss
        for seed in range(seeds)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=64)
    parser.add_argument("--evaluations", type=int, default=1000)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent.parent / "ELITE_SHARE.md"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    header = " | ".join(f"share {s:g}" for s in SHARES)
    lines = [
        "# Share of EliteGaussian children in the default breeding",
        "",
        f"Written by `benchmarks/elite_share.py` on {machine_line()}: one worker, "
        f"{args.evaluations} evaluations, population {POP_SIZE}, {args.seeds} seeds; median best "
        "loss, and in brackets the one-sided Mann-Whitney p that the share ends worse than the "
        f"default ({DEFAULT:g}).",
        "",
        f"| function | {header} |",
        "|---|" + "---:|" * len(SHARES),
    ]
    for function in FUNCTIONS:
        found = {s: best_losses(function, s, args.seeds, args.evaluations) for s in SHARES}
        cells = []
        for share in SHARES:
            cell = f"{statistics.median(found[share]):.3g}"
            if share != DEFAULT:
                cell += f" (p = {_no_worse(found[share], found[DEFAULT])[1]:.2f})"
            cells.append(cell)
        lines.append(f"| {function} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    minutes = (time.monotonic() - started) / 60
    lines += ["", f"Run time: {minutes:.1f} minutes.", ""]
    write_text_atomic(args.out, "\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
