"""Command line of propulate-hpo: the parser and one short handler per command.

``run`` searches a benchmark function or your loss, ``summarize`` reads a checkpoint, ``demo``
tunes an MLP on scikit-learn's digits. Every command also works under MPI:
``mpiexec -n 8 propulate-hpo run --function rastrigin --islands 2``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from propulate_hpo.__about__ import __version__
from propulate_hpo.config import DemoConfig, RunConfig
from shared_hpc import (
    Recorder,
    UserError,
    add_config_flags,
    check_output_file,
    config_from_args,
    get_comm,
    prepare_output_dir,
    rank0_print,
    run_main,
    write_text_atomic,
)

PACKAGE = "propulate-hpo"
RUN_FILES = ("history.csv", "progress.png", "results.json")
SUMMARY_FILES = ("history.csv", "progress.png")
FRONT_FILE = "pareto-front.csv"  # written besides them by a multi-objective search


def _output_folder(path: Path, files: tuple[str, ...]) -> Path:
    """The output folder, with every file a command will write into it checked before any work."""
    folder = prepare_output_dir(path)
    for name in files:
        check_output_file(folder / name)
    return folder


def _run(args: argparse.Namespace) -> int:
    from propulate_hpo.search import run_search

    config = config_from_args(args)
    files = RUN_FILES if config.objectives is None else (*RUN_FILES, FRONT_FILE)
    output = _output_folder(args.output, files)
    comm = get_comm()
    with Recorder(PACKAGE, __version__, comm) as run:
        result = run_search(config, comm)
    if run.is_writer:
        result.to_csv(output / "history.csv")
        result.plot(output / "progress.png")
        if config.objectives is not None:
            write_text_atomic(output / FRONT_FILE, result.pareto_front().to_csv(index=False))
    run.write(
        output / "results.json",
        config=config,
        metrics=result.metrics(),
        headline=result.headline(),
        artifacts=[name for name in files if name != "results.json"],
    )
    rank0_print(result.summary(), comm=comm)
    rank0_print(f"energy: {run.report}", comm=comm)
    rank0_print(f"results in {output}/ ({', '.join(files)})", comm=comm)
    counts = result.counts()
    if counts["failed"] and counts["failed"] == result.n_evaluations:
        rank0_print(
            f"{PACKAGE} run: error: all {counts['failed']} candidates failed; the first: "
            f"{result.first_error()} (every error is in {output / 'history.csv'})",
            comm=comm,
            file=sys.stderr,
        )
        return 1
    return 0


def _summarize(args: argparse.Namespace) -> None:
    from propulate_hpo.checkpoint import read_meta
    from propulate_hpo.summary import summarize_checkpoint

    if args.top < 0:
        raise UserError(f"--top must be >= 0, got {args.top}")
    read_meta(args.directory)  # a checkpoint: refused before any folder is created
    output = _output_folder(args.output or args.directory, SUMMARY_FILES)
    summary = summarize_checkpoint(args.directory)
    comm = get_comm()
    rank0_print(summary.summary(args.top), comm=comm)
    if summary.result.n_evaluations and comm.Get_rank() == 0:
        summary.result.to_csv(output / "history.csv")
        summary.result.plot(output / "progress.png")
        print(f"wrote {output / 'history.csv'} and {output / 'progress.png'}")


def _demo(args: argparse.Namespace) -> None:
    from propulate_hpo.demo import run_demo

    run_demo(args.output, config_from_args(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PACKAGE,
        description="Asynchronous parallel evolutionary optimisation (Propulate) over MPI.",
        epilog="Under MPI: mpiexec -n 8 propulate-hpo run --function rastrigin --islands 2",
    )
    parser.add_argument("--version", action="version", version=f"{PACKAGE} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="optimise a benchmark function or your loss function")
    run.add_argument(
        "--output",
        type=Path,
        default=Path("propulate-hpo-run"),
        help="folder for results.json, history.csv and progress.png (default: propulate-hpo-run)",
    )
    add_config_flags(run, RunConfig)
    run.set_defaults(run=_run)

    summarize = commands.add_parser("summarize", help="best candidates and history of a checkpoint")
    summarize.add_argument("directory", type=Path, help="checkpoint directory")
    summarize.add_argument(
        "--output", type=Path, help="folder for history.csv and progress.png (default: DIRECTORY)"
    )
    summarize.add_argument("--top", type=int, default=5, help="best candidates to list")
    summarize.set_defaults(run=_summarize)

    demo = commands.add_parser("demo", help="tune an MLP on scikit-learn digits (about 20 s)")
    demo.add_argument(
        "--output",
        type=Path,
        default=Path("propulate-hpo-demo"),
        help="folder for results.json and the plots (default: propulate-hpo-demo)",
    )
    add_config_flags(demo, DemoConfig)
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``propulate-hpo`` command.

    Args:
        argv: The arguments (default: the command line's).

    Returns:
        The exit code: 0 done, 2 bad input, 130 interrupted.
    """
    return run_main(_parser(), argv)
