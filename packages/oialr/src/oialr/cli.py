"""Command line of oialr: train a recipe, compare OIALR with full rank, the demo."""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from oialr.__about__ import __version__
from oialr.config import TrainConfig
from shared_hpc import (
    Recorder,
    add_config_flags,
    config_from_args,
    get_comm,
    lock_folder,
    rank0_print,
    run_main,
    set_torch_threads,
    write_text_atomic,
)

if TYPE_CHECKING:
    from oialr.comparison import Comparison
    from oialr.training import EpochRecord

RECIPE_NAMES = (
    "mlp-digits",
    "mlp-mnist1d",
    "cnn-mnist1d",
    "resnet18-cifar10",
    "vit-cifar10",
    "transformer-seattle",
    "transformer-taylor",
)
"""The names of ``oialr.recipes.RECIPES`` (listed here so that ``--help`` needs no torch)."""


def _csv(rows: list[dict[str, object]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _print_epoch(record: EpochRecord) -> None:
    rank0_print(
        f"epoch {record.epoch:3d}  loss {record.train_loss:.4f}  validation "
        f"{record.validation:.4f}  trainable {record.trainable}"
    )


def _train(args: argparse.Namespace) -> int:
    from oialr.plots import plot_ranks
    from oialr.recipes import get_recipe
    from oialr.training import train

    recipe = get_recipe(args.recipe)
    config = config_from_args(args, base=recipe.settings)
    comm = get_comm()
    set_torch_threads(comm)
    with lock_folder(args.output, comm):
        with Recorder("oialr", __version__, comm) as run:
            result = train(
                recipe,
                config,
                comm,
                checkpoint=args.output / "checkpoint.pt",
                resume=args.resume,
                force_resume=args.force_resume,
                progress=_print_epoch,
            )
        artifacts = ["checkpoint.pt", "history.csv"]
        if run.is_writer:
            history = [{k: v for k, v in vars(h).items() if k != "ranks"} for h in result.history]
            write_text_atomic(args.output / "history.csv", _csv(history))
            if result.events:
                events = [vars(e) for e in result.events]
                write_text_atomic(args.output / "events.csv", _csv(events))
                plot_ranks(result, args.output / "ranks.png")
        if result.events:
            artifacts += ["events.csv", "ranks.png"]
        run.write(
            args.output / "results.json",
            config={"recipe": recipe.name, **vars(config)},
            metrics=result.metrics(),
            headline=result.headline(),
            artifacts=artifacts,
        )
    rank0_print(
        f"test {result.metric} {result.test:.4f} with {result.trainable_share:.1%} of the dense "
        f"network's trainable parameters; wrote {args.output / 'results.json'}"
    )
    return 0


def _comparison_table(comparison: Comparison) -> str:
    from shared_hpc.bench import markdown_table

    header = [
        "arm",
        "seeds",
        f"test {comparison.metric}",
        "± sd",
        "trainable share",
        "ms / step",
        "energy J",
        "energy method",
    ]
    rows = [
        [
            r["arm"],
            r["seeds"],
            f"{r['test']:.4f}",
            f"{r['test_sd']:.4f}",
            f"{r['trainable_share']:.1%}",
            f"{r['ms_per_step']:.2f}",
            f"{r['joules']:.1f}",
            r["energy_method"],
        ]
        for r in comparison.rows()
    ]
    return markdown_table(header, rows)


def run_comparison(
    recipe_name: str, config: TrainConfig, seeds: Sequence[int], output: Path
) -> int:
    """Compare the arms on one recipe into ``output``: results.json, comparison.md and .png."""
    from oialr.comparison import compare
    from oialr.plots import plot_comparison
    from oialr.recipes import get_recipe

    recipe = get_recipe(recipe_name)
    comm = get_comm()
    set_torch_threads(comm)

    def report(arm: str, seed: int, record: EpochRecord) -> None:
        if record.epoch == config.epochs:
            rank0_print(
                f"{arm:12s} seed {seed}: validation {record.validation:.4f}, "
                f"trainable {record.trainable}"
            )

    with lock_folder(output, comm):
        with Recorder("oialr", __version__, comm) as run:
            comparison = compare(recipe, config, seeds, comm=comm, progress=report)
        table = _comparison_table(comparison)
        if run.is_writer:
            write_text_atomic(output / "comparison.md", table + "\n")
            plot_comparison(comparison, output / "comparison.png")
        run.write(
            output / "results.json",
            config={"recipe": recipe.name, "seeds": list(seeds), **vars(config)},
            metrics=comparison.metrics(),
            headline=comparison.headline(),
            artifacts=["comparison.md", "comparison.png"],
        )
    rank0_print(table)
    rank0_print(f"wrote {output / 'results.json'}, comparison.md and comparison.png")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from oialr.recipes import get_recipe

    config = config_from_args(args, base=get_recipe(args.recipe).settings)
    return run_comparison(args.recipe, config, args.seeds, args.output)


def _demo(args: argparse.Namespace) -> int:
    from oialr.demo import run_demo

    run_demo(args.output)
    return 0


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds are integers like 0,1,2, got {text!r}") from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds repeat: {text!r}")
    return seeds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oialr", description="Orthogonality-informed adaptive low-rank training."
    )
    parser.add_argument("--version", action="version", version=f"oialr {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", help="train a recipe with OIALR (or --full-rank); MPI: data parallel"
    )
    train.add_argument("--recipe", choices=RECIPE_NAMES, default="mlp-digits")
    train.add_argument(
        "--output", type=Path, required=True, help="folder for results, checkpoint and plots"
    )
    train.add_argument("--resume", action="store_true", help="continue from its checkpoint")
    train.add_argument(
        "--force-resume",
        action="store_true",
        help="resume even if the checkpoint was made with other data",
    )
    add_config_flags(train, TrainConfig)
    train.set_defaults(run=_train)

    compare = commands.add_parser(
        "compare", help="OIALR vs full rank vs a fixed-delay switch on one recipe"
    )
    compare.add_argument("--recipe", choices=RECIPE_NAMES, default="mlp-digits")
    compare.add_argument("--output", type=Path, required=True, help="folder for the results")
    compare.add_argument("--seeds", type=_seeds, default=[0], help="e.g. 0,1,2 (default: 0)")
    add_config_flags(compare, TrainConfig)
    compare.set_defaults(run=_compare)

    demo = commands.add_parser(
        "demo", help="compare OIALR with full rank on the digits MLP (about half a minute)"
    )
    demo.add_argument(
        "--output",
        type=Path,
        default=Path("oialr-demo"),
        help="folder for results.json, comparison.md and comparison.png",
    )
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``oialr`` command; returns the exit code."""
    return run_main(_parser(), argv)
