"""Write BENCHMARKS.md: ReCycle beside the uncompressed Transformer, DLinear, the MLP and LSTM
backbones, Holt-Winters and the profiles, on both embedded data sets, in one run.

    python benchmarks/run.py [--seeds 0,1,2] [--datasets taylor,seattle] [--epochs N]

At most 100 epochs on Taylor and 20 on Seattle unless ``--epochs`` says otherwise (the step
Transformer's 504-token history costs about half a minute per epoch on a shared 2-core CPU).

Every network is trained by the same loop on the same split, seeds outermost so that the
models alternate; each training run is measured by its own energy meter. Torch uses one thread.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from recycle_ts.comparison import compare
from recycle_ts.config import ForecastConfig
from recycle_ts.data import EMBEDDED, to_cycles

from shared_hpc.bench import machine_line, markdown_table, replace_marked_block

HERE = Path(__file__).resolve().parent.parent
MODELS = ["recycle", "transformer", "dlinear", "mlp", "lstm"]
EPOCHS = {"taylor": 100, "seattle": 20}


def _fmt(value: float | None, digits: str = ".4g") -> str:
    return "" if value is None else format(value, digits)


def bench(name: str, seeds: list[int], epochs: int) -> str:
    loader, settings = EMBEDDED[name]
    config = ForecastConfig(date_column="date", target=["load"], epochs=epochs, **settings)
    series = to_cycles(loader(), "date", ["load"], cycle=config.cycle_length)
    began = time.perf_counter()
    comparison = compare(series, config, MODELS, seeds, {"name": name},
                         progress=lambda r: print(f"{name}: {r.model} seed {r.seed}: test MAE "
                                                  f"{r.result.test[r.model]['mae']:.4g}, "
                                                  f"{r.result.train_seconds:.1f} s",
                                                  flush=True))  # fmt: skip
    rows = comparison.rows()
    by_name = {r["name"]: r for r in rows}
    step = by_name["transformer"]
    table = markdown_table(
        ["forecaster", "kind", "seeds", "test MAE (median)", "MAE range", "test MASE",
         "train s", "energy J", "time vs transformer", "energy vs transformer"],
        [[r["name"], r["kind"], r["seeds"], _fmt(r["mae"]), _range(comparison, r["name"]),
          _fmt(r["mase"], ".3f"), _fmt(r["train_seconds"], ".2f"), _fmt(r["joules"], ".1f"),
          _ratio(step["train_seconds"], r["train_seconds"]),
          _ratio(step["joules"], r["joules"])]
         for r in rows],
    )  # fmt: skip
    ours = by_name["recycle"]
    references = [r for r in rows if r["kind"] == "reference"]
    best = min(references, key=lambda r: r["mae"])
    verdicts = [
        _verdict(f"ReCycle's MAE below every baseline and ETS (best: {best['name']} "
                 f"{best['mae']:.4g})", ours["mae"] < best["mae"]),
        _verdict(f"ReCycle's MAE below the uncompressed Transformer's ({step['mae']:.4g})",
                 ours["mae"] < step["mae"]),
        _verdict(f"training at least 10x faster than the uncompressed Transformer "
                 f"({step['train_seconds'] / ours['train_seconds']:.1f}x)",
                 step["train_seconds"] >= 10 * ours["train_seconds"]),
        _verdict(f"at least 10x less training energy ({step['joules'] / ours['joules']:.1f}x, "
                 f"{ours['energy_method']})", step["joules"] >= 10 * ours["joules"]),
    ]  # fmt: skip
    first = comparison.runs[0].result
    chosen = first.forecaster.config.baseline
    return (
        f"{series.cycles} cycles of {series.cycle} steps; history {config.history}, horizon "
        f"{config.horizon} cycles; windows train/validation/test "
        f"{first.windows['train']}/{first.windows['validation']}/{first.windows['test']}; "
        f"residual reference chosen before the test span: `{chosen}`; seeds {seeds}; at most "
        f"{epochs} epochs, patience {config.patience}; {time.perf_counter() - began:.0f} s in "
        f"all.\n\n{table}\n\nTargets of the issue:\n\n" + "\n".join(verdicts)
    )


def _ratio(reference: float, value: float | None) -> str:
    return "" if value is None else f"{reference / value:.1f}x"


def _range(comparison, name: str) -> str:
    values = [r.result.test[name]["mae"] for r in comparison.runs if r.model == name]
    if not values:
        return ""
    return f"{min(values):.4g}-{max(values):.4g}" if len(values) > 1 else ""


def _verdict(text: str, met: bool) -> str:
    return f"- {'met' if met else 'MISSED'}: {text}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--datasets", default="taylor,seattle")
    parser.add_argument("--epochs", type=int, help="most epochs (default: per data set)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    for name in args.datasets.split(","):
        text = (f"Machine: {machine_line()} (shared with other jobs: timings are noisy, ratios "
                f"measured side by side remain meaningful). Energy of each training run as the "
                f"energy meter obtained it (method in the targets below).\n\n"
                f"{bench(name, seeds, args.epochs or EPOCHS[name])}")  # fmt: skip
        replace_marked_block(HERE / "BENCHMARKS.md", name, text, append=True)
        print(text, flush=True)


if __name__ == "__main__":
    main()
