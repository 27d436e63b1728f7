"""Write BENCHMARKS.md: OIALR against full rank and a fixed-delay switch, side by side.

    python benchmarks/run.py                      # every recipe that runs on a CPU here
    python benchmarks/run.py --recipes mlp-digits --seeds 0,1

For each recipe the three arms train with the recipe's settings and the same seeds in one
process (seed by seed, the arms in turn, after a warm-up run); each run's energy is measured
around it (``method`` says whether
measured or estimated). The MNIST-1D MLP also checks the data against the benchmark's published
MLP accuracy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from oialr import Comparison, TrainConfig, compare, get_recipe, train

from shared_hpc import load_config, set_torch_threads
from shared_hpc.bench import machine_line, markdown_table, replace_marked_block

HERE = Path(__file__).resolve().parent.parent
RECIPES = ("mlp-digits", "mlp-mnist1d", "cnn-mnist1d", "transformer-taylor")
PUBLISHED = {
    "mlp-mnist1d": "the MNIST-1D paper reports about 0.68 for its MLP",
    "cnn-mnist1d": "the MNIST-1D paper reports about 0.94 for its CNN",
}


def _table(comparison: Comparison) -> str:
    metric = comparison.metric
    rows = []
    for row in comparison.rows():
        rows.append(
            [
                row["arm"],
                row["seeds"],
                f"{row['test']:.4f} ± {row['test_sd']:.4f}",
                f"{row['trainable_share']:.1%}",
                f"{row['ms_per_step']:.2f}",
                f"{row['joules']:.0f}",
                row["energy_method"],
            ]
        )
    header = ["arm", "seeds", f"test {metric}", "trainable", "ms / step", "J / run", "energy"]
    return markdown_table(header, rows)


def _verdict(comparison: Comparison) -> str:
    full = comparison.arms["full-rank"].summary()
    oialr = comparison.arms["oialr"].summary()
    share = float(oialr["trainable_share"])
    gap = float(oialr["test"]) - float(full["test"])
    if comparison.metric == "accuracy":
        within = gap >= -0.01
        gap_text = f"{gap * 100:+.2f} points of accuracy"
    else:
        within = gap <= 0.01 * float(full["test"])
        gap_text = f"MSE {gap:+.4f} ({gap / float(full['test']):+.1%})"
    target = "met" if share <= 0.10 and within else "missed"
    return (
        f"OIALR against full rank: {gap_text} with {share:.1%} of the trainable parameters. "
        f"Target (at most 10 % trainable, within 1 point): **{target}**."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    set_torch_threads()
    warm_up = get_recipe("mlp-digits")  # first-use costs (imports, kernels) hit no arm
    train(warm_up, load_config(TrainConfig, warm_up.settings, epochs=2))
    for name in args.recipes.split(","):
        recipe = get_recipe(name)
        config = load_config(TrainConfig, recipe.settings)
        print(f"{name}: {len(seeds)} seeds x 3 arms", flush=True)
        comparison = compare(recipe, config, seeds)
        text = "\n".join(
            [
                f"### {name}",
                "",
                f"{recipe.summary}; {config.epochs} epochs, batch {config.batch_size}, seeds "
                f"{args.seeds}. Measured on {machine_line()}.",
                "",
                _table(comparison),
                "",
                _verdict(comparison),
                *([f"Sanity check: {PUBLISHED[name]}."] if name in PUBLISHED else []),
            ]
        )
        print(text, flush=True)
        replace_marked_block(HERE / "BENCHMARKS.md", name, text, append=True)


if __name__ == "__main__":
    main()
