"""Which training levers move PETNet against the tuned GATE sorter (small scanner).

Simulates the small use case of ``run.py`` (same activities, decays and seeds), tunes the
GATE sorter on the validation data, then trains the ring network once per variant (finer time
bins, the sub-bin time channel, longer training, loss weights), each with the tuned energy
window, and scores every variant and the tuned sorter on the test acquisitions of every
activity. Writes ``benchmarks/levers.md``, which ``run.py`` puts into BENCHMARKS.md.

    python benchmarks/levers.py                      # about half an hour on 2 CPU cores
    python benchmarks/levers.py --variants default "0.5 ns bins"
    python benchmarks/levers.py --markdown-only --work A --also B   # one table of two runs
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

from petnet.config import EncodingConfig, ModelConfig, PETNetConfig, TrainConfig
from petnet.inference import PETNetSorter
from petnet.metrics import score
from petnet.singles import Singles
from petnet.train import train
from petnet.tuning import tune_gate

from shared_hpc import set_torch_threads, write_json_atomic, write_text_atomic
from shared_hpc.bench import machine_line

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import SMALL, acquisition, log

HERE = Path(__file__).resolve().parent
BASE_TRAIN = TrainConfig()


def variants(low_kev: float) -> dict[str, PETNetConfig]:
    """The variants, each a full config with the tuned energy window."""
    encoding = EncodingConfig(energy_window_kev=(low_kev, 650.0))
    base = PETNetConfig(model=ModelConfig(), encoding=encoding, train=BASE_TRAIN)
    coarse = replace(encoding, bin_width_ns=0.5, max_gap_bins=16, tolerance_bins=4)
    return {
        "default": base,
        "0.5 ns bins": replace(base, encoding=coarse),
        "time channel": replace(
            base, encoding=replace(encoding, channels=("spike", "energy", "time"))
        ),
        "biases not capped": replace(base, model=ModelConfig(quiescent=False)),
        "miss weight 1": replace(base, train=replace(BASE_TRAIN, miss_weight=1.0)),
        "twice the steps": replace(base, train=replace(BASE_TRAIN, epochs=2 * BASE_TRAIN.epochs)),
        "hidden 32, 32": replace(base, model=ModelConfig(hidden=(32, 32))),
    }


def describe(config: dict) -> str:
    """The network a row measured: bin width and whether its biases were capped at rest."""
    encoding, model = config["encoding"], config["model"]
    capped = "quiescent" if model.get("quiescent", False) else "biases not capped"
    return f"{encoding['bin_width_ns']:g} ns bins, {capped}"


def write_markdown(rows: dict, activities: tuple[float, ...], output: Path, when: str) -> None:
    """The table of ``rows`` (test F1 per activity), bold where better than the tuned GATE."""
    gate = next(iter(rows.values()))["f1"]
    lines = [
        f"Written by `benchmarks/levers.py` from its run(s) finished {when}; machine: "
        f"{machine_line()} (shared with other jobs). Small scanner, trained on all activities "
        "together, 4 epochs × 250 steps of 512 patches unless the variant changes it; test F1 "
        "per activity, bold where better than the tuned GATE sorter. Training seconds follow "
        "the load other jobs put on the machine at the time, so they compare poorly.",
        "",
        "| variant | network | "
        + " | ".join(f"{a:g} MBq" for a in activities)
        + " | validation F1 | training s |",
        "|---" * (len(activities) + 4) + "|",
    ]
    for name, row in rows.items():
        cells = [
            f"**{x:.4f}**" if name.startswith("PETNet") and x > g else f"{x:.4f}"
            for x, g in zip(row["f1"], gate, strict=True)
        ]
        network = describe(row["config"]) if "config" in row else "–"
        val = f"{row['val_f1']:.4f}" if "val_f1" in row else "–"
        secs = f"{row['seconds']:.0f}" if "seconds" in row else "–"
        lines.append(f"| {name} | {network} | " + " | ".join(cells) + f" | {val} | {secs} |")
    write_text_atomic(output, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", help="default: all")
    parser.add_argument("--work", type=Path, default=Path("bench-results/levers"))
    parser.add_argument(
        "--also", type=Path, nargs="*", default=[], help="with --markdown-only: more runs' folders"
    )
    parser.add_argument("--output", type=Path, default=HERE / "levers.md")
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help="rewrite the table from WORK/levers.json (e.g. of an interrupted run)",
    )
    args = parser.parse_args(argv)
    case = SMALL
    if args.markdown_only:
        rows, finished = {}, []
        for folder in (args.work, *args.also):  # the tuned GATE row is the same in every run
            results = folder / "levers.json"
            rows.update(json.loads(results.read_text()))
            finished.append(dt.datetime.fromtimestamp(results.stat().st_mtime, dt.UTC))
        when = ", ".join(f"{t:%Y-%m-%d %H:%M UTC}" for t in finished)
        write_markdown(rows, case.activities_mbq, args.output, when)
        return 0
    set_torch_threads(threads=1)
    tests, parts = [], {"train": [], "validation": []}
    for i, activity in enumerate(case.activities_mbq):
        parts["train"].append(acquisition(case, activity, case.decays[0], 100 + i))
        parts["validation"].append(acquisition(case, activity, case.decays[1], 200 + i))
        tests.append(acquisition(case, activity, case.decays[2], 300 + i))
    training = Singles.concatenate(parts["train"])
    validation = Singles.concatenate(parts["validation"])
    tuned = tune_gate(validation)
    log(f"{tuned.name} on validation")
    rows = {tuned.name: {"f1": [score(t, tuned.sort(t).hit_flags(len(t))).f1 for t in tests]}}
    chosen = variants(tuned.energy_window_kev[0])
    for name in args.variants or list(chosen):
        config = chosen[name]
        folder = args.work / name.replace(" ", "-").replace(",", "")
        result = train(training, config, folder, validation=validation, log=log)
        sorter = PETNetSorter.from_checkpoint(result.best_checkpoint)
        f1 = []
        for test in tests:
            decoded = sorter.predict(test)
            f1.append(score(test, decoded.flags, decoded.spurious).f1)
        rows[f"PETNet ring, {name}"] = {
            "f1": f1,
            "val_f1": result.best_f1,
            "seconds": result.energy.seconds,
            "config": asdict(config),
        }
        log(f"{name}: test F1 {', '.join(f'{x:.4f}' for x in f1)}")
        write_json_atomic(args.work / "levers.json", rows)
    write_markdown(
        rows, case.activities_mbq, args.output, f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}"
    )
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
