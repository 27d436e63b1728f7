"""Write BENCHMARKS.md: ReCycle beside the uncompressed Transformer, DLinear, the MLP and LSTM
backbones, Holt-Winters and the profiles, on both embedded data sets, in one run; then one
ReCycle across the two west-coast temperature series beside one per series.

    python benchmarks/run.py [--seeds 0,1,2] [--datasets taylor,seattle,west-coast]
                             [--epochs N] [--no-tune]

At most 100 epochs on Taylor and 20 on Seattle and the west coast unless ``--epochs`` says
otherwise (the step Transformer's 504-token history costs about half a minute per epoch on a
shared 2-core CPU).

Every network's width and learning rate are first chosen on the validation windows (seed 0,
``recycle_ts.comparison.GRID``), then every network is trained by the same loop on the same
split with each seed, seeds outermost so that the models alternate; each training run is
measured by its own energy meter. Torch uses one thread.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
from recycle_ts.comparison import GRID, compare, tune
from recycle_ts.config import ForecastConfig
from recycle_ts.data import EMBEDDED, to_cycles
from recycle_ts.many import fit_many, load_collection
from recycle_ts.model import WIDTHLESS
from recycle_ts.training import score_references

from shared_hpc.bench import machine_line, markdown_table, replace_marked_block

HERE = Path(__file__).resolve().parent.parent
MODELS = ["recycle", "transformer", "dlinear", "mlp", "lstm"]
EPOCHS = {"taylor": 100, "seattle": 20, "west-coast": 20}


def _fmt(value: float | None, digits: str = ".4g") -> str:
    return "" if value is None else format(value, digits)


def bench(name: str, seeds: list[int], epochs: int, tuned: bool) -> str:
    loader, settings = EMBEDDED[name]
    config = ForecastConfig(date_column="date", target=["load"], epochs=epochs, **settings)
    series = to_cycles(loader(), "date", ["load"], cycle=config.cycle_length)
    began = time.perf_counter()
    chosen = {}
    if tuned:
        for model in MODELS:
            chosen[model] = tune(series, replace(config, seed=seeds[0]), model).chosen
            print(f"{name}: {model} chose {chosen[model]}", flush=True)
    comparison = compare(series, config, MODELS, seeds, {"name": name}, settings=chosen,
                         progress=lambda r: print(f"{name}: {r.model} seed {r.seed}: test MAE "
                                                  f"{r.result.test[r.model]['mae']:.4g}, "
                                                  f"{r.result.train_seconds:.1f} s",
                                                  flush=True))  # fmt: skip
    rows = comparison.rows()
    by_name = {r["name"]: r for r in rows}
    step = by_name["transformer"]
    table = markdown_table(
        ["forecaster", "kind", "width, lr", "seeds", "test MAE (median)", "MAE range",
         "test MASE", "train s", "energy J", "time vs transformer", "energy vs transformer"],
        [[r["name"], r["kind"], _settings(chosen, config, r), r["seeds"], _fmt(r["mae"]),
          _range(comparison, r["name"]), _fmt(r["mase"], ".3f"),
          _fmt(r["train_seconds"], ".2f"), _fmt(r["joules"], ".1f"),
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
    reference = first.forecaster.config.baseline
    return (
        f"{series.cycles} cycles of {series.cycle} steps; history {config.history}, horizon "
        f"{config.horizon} cycles; windows train/validation/test "
        f"{first.windows['train']}/{first.windows['validation']}/{first.windows['test']}; "
        f"residual reference chosen before the test span: `{reference}`; "
        f"{_tuning_line(tuned)}; seeds {seeds}; at most {epochs} epochs, patience "
        f"{config.patience}; {time.perf_counter() - began:.0f} s in all.\n\n{table}\n\n"
        f"Targets of the issue:\n\n" + "\n".join(verdicts)
    )


def bench_many(seeds: list[int], epochs: int) -> str:
    """One ReCycle across Seattle and San Francisco beside one ReCycle per city."""
    config = ForecastConfig(date_column="date", target=["load"], epochs=epochs,
                            **EMBEDDED["west-coast"][1])  # fmt: skip
    collection, data = load_collection(None, "west-coast", config)
    began = time.perf_counter()
    results = []
    for seed in seeds:
        results.append(fit_many(collection, replace(config, seed=seed), data))
        print(f"west-coast seed {seed}: {results[-1].metrics()['mean_test_mase']}", flush=True)
    references = {key: score_references(series, config)[0]
                  for key, series in collection.items()}  # fmt: skip
    rows = []
    for key in collection:
        best = min(references[key], key=lambda n: references[key][n]["mae"])
        mae = {way: statistics.median(r.test[key][way]["mae"] for r in results)
               for way in ("global", "local")}  # fmt: skip
        mase = {way: statistics.median(r.test[key][way]["mase"] for r in results)
                for way in ("global", "local")}  # fmt: skip
        rows.append([key, _fmt(mae["global"]), _fmt(mae["local"]), _fmt(mase["global"], ".3f"),
                     _fmt(mase["local"], ".3f"), f"{best} {references[key][best]['mae']:.4g}",
                     _fmt(references[key]["ets"]["mae"])])  # fmt: skip
    table = markdown_table(
        ["series", "one model: test MAE", "one per series: test MAE", "one model: MASE",
         "one per series: MASE", "best reference (MAE)", "ETS MAE"], rows)  # fmt: skip
    seconds = {
        w: statistics.median(r.train_seconds[w] for r in results) for w in ("global", "local")
    }
    joules = {w: statistics.median(r.train_joules[w] for r in results) for w in ("global", "local")}
    mean = {w: statistics.median(r.mean(w, "mase") for r in results) for w in ("global", "local")}
    return (
        f"ReCycle at the default settings (width 64, lr 0.001), residual reference chosen per "
        f"series; {len(collection)} series of {next(iter(collection.values())).cycles} days; "
        f"seeds {seeds}, medians; at most {epochs} epochs, patience {config.patience}; "
        f"{time.perf_counter() - began:.0f} s in all.\n\n{table}\n\n"
        f"Mean test MASE over the series: one model {mean['global']:.3f}, one per series "
        f"{mean['local']:.3f}. Training: one model {seconds['global']:.2f} s and "
        f"{joules['global']:.1f} J, one per series {seconds['local']:.2f} s and "
        f"{joules['local']:.1f} J in all ({results[0].energy_method})."
    )


def _settings(chosen: dict, config: ForecastConfig, row: dict) -> str:
    if row["kind"] != "network":
        return ""
    own = {"width": config.width, "lr": config.lr, **chosen.get(row["name"], {})}
    width = "-" if row["name"] in WIDTHLESS else own["width"]
    return f"{width}, {own['lr']:g}"


def _tuning_line(tuned: bool) -> str:
    if not tuned:
        return "networks at the authors' default width 64 and lr 0.001 (not tuned)"
    grid = ", ".join(f"{k} in {list(v)}" for k, v in GRID.items())
    return f"each network's {grid} chosen on the validation windows (first seed)"


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
    parser.add_argument("--datasets", default="taylor,seattle,west-coast")
    parser.add_argument("--epochs", type=int, help="most epochs (default: per data set)")
    parser.add_argument("--no-tune", action="store_true", help="networks at default settings")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    for name in args.datasets.split(","):
        epochs = args.epochs or EPOCHS[name]
        result = (bench_many(seeds, epochs) if name == "west-coast"
                  else bench(name, seeds, epochs, not args.no_tune))  # fmt: skip
        text = (
            f"Machine: {machine_line()} (shared with other jobs: timings are noisy, ratios "
            f"measured side by side remain meaningful). Energy of each training run as the "
            f"energy meter obtained it (its method named below).\n\n{result}"
        )
        replace_marked_block(HERE / "BENCHMARKS.md", name, text, append=True)
        print(text, flush=True)


if __name__ == "__main__":
    main()
