"""Command line of weathermixer: generate, train, evaluate, benchmark, demo.

Every setting is a flag generated from the config dataclasses (``--train.steps``,
``--model.embed-dim``, ``--data.path``) or comes from ``--config run.toml``. Every command also
runs under ``mpiexec``/``srun``, e.g. ``mpiexec -n 4 weathermixer train --grid 2x2
--data.path era5.nc --output run``. Bad input ends a command with one line on stderr and exit
code 2, before any heavy work.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from shared_hpc import (
    Recorder,
    add_config_flags,
    check_output_file,
    config_from_args,
    get_comm,
    lock_folder,
    prepare_output_dir,
    rank0_print,
    run_main,
    set_torch_threads,
)
from weathermixer.__about__ import __version__
from weathermixer.benchmark import run_benchmark
from weathermixer.config import BenchmarkConfig, EvaluateConfig, RunConfig, SimulationConfig
from weathermixer.evaluate import TrainedRun, evaluate
from weathermixer.simulate import generate
from weathermixer.train import train

PACKAGE = "weathermixer"


def _generate(args: argparse.Namespace) -> None:
    cfg = config_from_args(args)
    path = check_output_file(args.output)
    comm = get_comm()
    if comm.Get_rank() == 0:
        generate(path, cfg, progress=print)
    rank0_print(f"wrote {path}", comm=comm)


def _train(args: argparse.Namespace) -> None:
    cfg = config_from_args(args)
    comm = get_comm()
    out = prepare_output_dir(cfg.output)
    check_output_file(out / "results.json")  # train checks its other files
    set_torch_threads(comm, args.threads)
    with Recorder(PACKAGE, __version__, comm) as run:
        result = train(cfg, comm, progress=print)
    run.write(
        out / "results.json",
        config=result.config,
        metrics=result.metrics(),
        headline=result.headline(),
        artifacts=["train_log.jsonl", "stats.nc", "checkpoints/"],
    )
    rank0_print(f"wrote {out / 'results.json'}", comm=comm)


def _evaluate(args: argparse.Namespace) -> None:
    from weathermixer.report import skill_files, write_skill  # matplotlib

    cfg = config_from_args(args)
    comm = get_comm()
    trained = TrainedRun.open(args.run_dir)
    with lock_folder(args.output or args.run_dir / "evaluation", comm) as out:
        for name in ("results.json", *skill_files(trained.config.data.variables.state_channels)):
            check_output_file(out / name)
        set_torch_threads(comm, args.threads)
        with Recorder(PACKAGE, __version__, comm) as run:
            skill = evaluate(trained, cfg, comm)
        artifacts = write_skill(skill, out) if run.is_writer else []
        run.write(
            out / "results.json",
            config={"run": trained.folder.resolve(), "evaluation": cfg},
            metrics=skill.metrics(),
            headline=skill.headline(),
            artifacts=artifacts,
        )
    rank0_print(f"{skill.summary()}\nwrote {out / 'results.json'}", comm=comm)


def _benchmark(args: argparse.Namespace) -> None:
    cfg = config_from_args(args)
    comm = get_comm()
    path = check_output_file(args.output) if args.output else None
    set_torch_threads(comm, args.threads)
    with Recorder(PACKAGE, __version__, comm) as run:
        result = run_benchmark(cfg, comm)
    if path is not None:
        run.write(path, config=cfg, metrics=result.metrics(), headline=result.headline())
    rank0_print(result.summary(), comm=comm)


def _demo(args: argparse.Namespace) -> None:
    from weathermixer.demo import run_demo  # matplotlib

    comm = get_comm()
    set_torch_threads(comm, args.threads)
    run_demo(args.output, comm, quick=args.quick)


def _threads_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads per rank (default: the node's share)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weathermixer",
        description="WeatherMixer global weather model with Jigsaw domain × tensor parallelism.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("generate", help="simulate an ERA5-like global dataset (netCDF)")
    p.add_argument("--output", type=Path, required=True, help="netCDF file to write")
    add_config_flags(p, SimulationConfig)
    p.set_defaults(run=_generate)

    p = commands.add_parser("train", help="train (or resume) a WeatherMixer, on any process grid")
    _threads_flag(p)
    add_config_flags(p, RunConfig)
    p.set_defaults(run=_train)

    p = commands.add_parser(
        "evaluate",
        help="RMSE and ACC vs (damped) persistence and climatology, on the test period or --data",
    )
    p.add_argument("--run", dest="run_dir", type=Path, required=True, help="run folder of `train`")
    p.add_argument(
        "--output",
        type=Path,
        help="folder for results.json, skill.json and plots (default: RUN/evaluation)",
    )
    _threads_flag(p)
    add_config_flags(p, EvaluateConfig)
    p.set_defaults(run=_evaluate)

    p = commands.add_parser("benchmark", help="step time, TFLOP/s, memory and bytes per rank")
    p.add_argument("--output", type=Path, help="run record with every rank's results (JSON)")
    _threads_flag(p)
    add_config_flags(p, BenchmarkConfig)
    p.set_defaults(run=_benchmark)

    p = commands.add_parser("demo", help="generate, train, evaluate end to end (about a minute)")
    p.add_argument(
        "--output", type=Path, default=Path("weathermixer-demo"), help="folder of the demo's files"
    )
    p.add_argument("--quick", action="store_true", help="tiny version for tests (seconds)")
    _threads_flag(p)
    p.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``weathermixer`` and ``python -m weathermixer``.

    Args:
        argv: The arguments (default: the command line's).

    Returns:
        The exit code: 0 done, 2 bad input, 130 interrupted.
    """
    return run_main(_parser(), argv)
