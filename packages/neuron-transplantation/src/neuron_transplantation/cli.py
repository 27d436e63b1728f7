"""Command line of neuron-transplantation: the parser and one short handler per command."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from neuron_transplantation.__about__ import __version__
from neuron_transplantation.config import CompareConfig, FinetuneConfig, FuseConfig, TrainConfig
from shared_hpc import (
    Headline,
    Recorder,
    add_config_flags,
    config_from_args,
    get_comm,
    lock_folder,
    prepare_output_dir,
    rank0_print,
    run_main,
    set_torch_threads,
    write_text_atomic,
)

if TYPE_CHECKING:
    from neuron_transplantation.compare import Comparison

PACKAGE = "neuron-transplantation"


def _train_ensemble(args: argparse.Namespace) -> int:
    from neuron_transplantation.checkpoint import DataInfo, save_ensemble
    from neuron_transplantation.data import load_split
    from neuron_transplantation.train import train_members

    config = config_from_args(args)
    comm = get_comm()
    set_torch_threads(comm, threads=1)  # the built-in models are tiny: more threads only spin
    prepare_output_dir(args.output)
    split = load_split(config.dataset, config.validation, config.seed, config.data, config.label)
    with lock_folder(args.output, comm):
        with Recorder(PACKAGE, __version__, comm) as run:
            members = train_members(config, split, comm, folder=args.output)
        if run.is_writer:
            data = DataInfo.of(split, config.validation, config.seed, config.data, config.label)
            save_ensemble(
                args.output / "members.pt",
                members.spec,
                members.models,
                data,
                members.seeds,
                members.validation,
            )
        run.write(
            args.output / "results.json",
            config=config,
            metrics=members.metrics(),
            headline=members.headline(),
            artifacts=["members.pt"],
        )
    accuracies = ", ".join(f"{100 * a:.2f}" for a in members.validation)
    rank0_print(
        f"members' validation accuracy [%]: {accuracies}; wrote {args.output / 'members.pt'}"
    )
    return 0


def _fuse(args: argparse.Namespace) -> int:
    from neuron_transplantation.checkpoint import load_ensemble, save_model
    from neuron_transplantation.fusion import fuse
    from neuron_transplantation.train import accuracy, reset_batch_norm

    config = config_from_args(args)
    prepare_output_dir(args.output)
    spec, models, data, _ = load_ensemble(args.ensemble)
    split = data.load()
    comm = get_comm()
    set_torch_threads(comm, threads=1)  # the built-in models are tiny: more threads only spin
    with lock_folder(args.output, comm):
        with Recorder(PACKAGE, __version__, comm) as run:
            fused = fuse(
                models, split.train.tensors[0][:8], config.method, config.variant, config.seed
            )
            if config.reset_batch_norm:
                reset_batch_norm(fused.model, split.train)
        validation, test = (
            accuracy(fused.model, split.validation),
            accuracy(fused.model, split.test),
        )
        if run.is_writer:
            origin = {"method": config.method, "variant": config.variant, "members": len(models),
                      "reset_batch_norm": config.reset_batch_norm}  # fmt: skip
            save_model(args.output / "fused.pt", spec, fused.model, data, origin)
        metrics = {"validation_fused": validation, "test_fused": test, "fusion_s": fused.seconds}
        run.write(
            args.output / "results.json",
            config=config,
            metrics=metrics,
            headline=Headline("test accuracy right after fusion", test),
            artifacts=["fused.pt"],
        )
    rank0_print(
        f"{config.method} ({config.variant}) fused {len(models)} members in "
        f"{fused.seconds:.3f} s: validation {100 * validation:.2f} %, test "
        f"{100 * test:.2f} % before fine-tuning; wrote {args.output / 'fused.pt'}"
    )
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from neuron_transplantation.checkpoint import load_model, save_model
    from neuron_transplantation.train import accuracy, finetune

    config = config_from_args(args)
    prepare_output_dir(args.output)
    spec, model, data, origin = load_model(args.model)
    split = data.load()
    comm = get_comm()
    set_torch_threads(comm, threads=1)  # the built-in models are tiny: more threads only spin
    with lock_folder(args.output, comm):
        with Recorder(PACKAGE, __version__, comm) as run:
            curve = finetune(model, split, config)
        test = accuracy(model, split.test)
        if run.is_writer:
            save_model(
                args.output / "finetuned.pt",
                spec,
                model,
                data,
                {**origin, "finetune_epochs": origin.get("finetune_epochs", 0) + config.epochs},
            )
            rows = "".join(f"{epoch},{acc:.6f}\n" for epoch, acc in enumerate(curve))
            write_text_atomic(args.output / "history.csv", "epoch,validation_accuracy\n" + rows)
        metrics = {"validation_before": curve[0], "validation_after": curve[-1], "test": test}
        run.write(
            args.output / "results.json",
            config=config,
            metrics=metrics,
            headline=Headline("test accuracy after fine-tuning", test),
            artifacts=["finetuned.pt", "history.csv"],
        )
    rank0_print(
        f"validation {100 * curve[0]:.2f} % -> {100 * curve[-1]:.2f} % in {config.epochs} "
        f"epochs; test {100 * test:.2f} %; wrote {args.output / 'finetuned.pt'}"
    )
    return 0


def write_comparison(
    run: Recorder, comparison: Comparison, output: Path, config: dict[str, object]
) -> None:
    """Write a finished comparison into ``output``: results.json, comparison.md and
    comparison.png, and print its table (shared by ``compare`` and ``demo``)."""
    from neuron_transplantation.compare import TABLE_HEADER
    from neuron_transplantation.plots import plot_comparison
    from shared_hpc.bench import markdown_table

    table = markdown_table(list(TABLE_HEADER), comparison.rows())
    if run.is_writer:
        write_text_atomic(output / "comparison.md", table + "\n")
        plot_comparison(comparison, output / "comparison.png")
    run.write(
        output / "results.json",
        config=config,
        metrics=comparison.metrics(),
        headline=comparison.headline(),
        artifacts=["comparison.md", "comparison.png"],
    )
    rank0_print(table)
    rank0_print(
        f"energy: {run.report}; wrote {output / 'results.json'}, comparison.md, comparison.png"
    )


def _compare(args: argparse.Namespace) -> int:
    from neuron_transplantation.checkpoint import load_ensemble
    from neuron_transplantation.compare import compare

    config = config_from_args(args)
    prepare_output_dir(args.output)
    _, models, data, validation = load_ensemble(args.ensemble)
    split = data.load()
    comm = get_comm()
    set_torch_threads(comm, threads=1)  # the built-in models are tiny: more threads only spin
    with lock_folder(args.output, comm):
        with Recorder(PACKAGE, __version__, comm) as run:
            comparison = compare(models, validation, split, config)
        write_comparison(
            run, comparison, args.output, {"ensemble": str(args.ensemble), "compare": config}
        )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from neuron_transplantation.demo import run_demo

    run_demo(args.output)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PACKAGE,
        description="Fuse an ensemble into one model of the original size by transplanting "
        "neurons (arXiv:2502.06849).",
    )
    parser.add_argument("--version", action="version", version=f"{PACKAGE} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train-ensemble", help="train the members (MPI: one member per rank at a time)"
    )
    train.add_argument("--output", type=Path, required=True, help="folder for members.pt")
    add_config_flags(train, TrainConfig)
    train.set_defaults(run=_train_ensemble)

    fuse = commands.add_parser("fuse", help="fuse an ensemble into one model of its members' size")
    fuse.add_argument("--ensemble", type=Path, required=True, help="members.pt of train-ensemble")
    fuse.add_argument("--output", type=Path, required=True, help="folder for fused.pt")
    add_config_flags(fuse, FuseConfig)
    fuse.set_defaults(run=_fuse)

    tune = commands.add_parser("finetune", help="fine-tune a fused model on the training data")
    tune.add_argument(
        "--model", type=Path, required=True, help="fused.pt of fuse (or finetuned.pt)"
    )
    tune.add_argument("--output", type=Path, required=True, help="folder for finetuned.pt")
    add_config_flags(tune, FinetuneConfig)
    tune.set_defaults(run=_finetune)

    compare = commands.add_parser(
        "compare", help="every fusion method on one ensemble: table and accuracy-vs-epochs plot"
    )
    compare.add_argument(
        "--ensemble", type=Path, required=True, help="members.pt of train-ensemble"
    )
    compare.add_argument("--output", type=Path, required=True, help="folder for the results")
    add_config_flags(compare, CompareConfig)
    compare.set_defaults(run=_compare)

    demo = commands.add_parser(
        "demo", help="train 4 MLPs on the embedded digits, compare every method (about 30 s)"
    )
    demo.add_argument(
        "--output",
        type=Path,
        default=Path("neuron-transplantation-demo"),
        help="folder for results.json, comparison.md and comparison.png",
    )
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``neuron-transplantation`` (and ``nt``) command; returns the exit code."""
    return run_main(_parser(), argv)
