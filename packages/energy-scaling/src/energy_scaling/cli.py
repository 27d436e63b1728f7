"""Command line of energy-scaling: sweep, point, analyze, recommend, demo."""

from __future__ import annotations

import argparse
from pathlib import Path

from energy_scaling.__about__ import __version__
from energy_scaling.config import SweepConfig
from shared_hpc import (
    Headline,
    Recorder,
    UserError,
    add_config_flags,
    config_from_args,
    get_comm,
    lock_folder,
    prepare_output_dir,
    rank0_print,
    run_main,
    set_torch_threads,
    write_json_atomic,
    write_text_atomic,
)

PACKAGE = "energy-scaling"


def _sweep(args: argparse.Namespace) -> int:
    from energy_scaling.runner import PointOutcome, run_sweep
    from energy_scaling.sweep import expand

    sweep = config_from_args(args)
    points = expand(sweep)  # every point checked before anything runs
    if args.slurm is not None:
        from energy_scaling.slurm import SlurmOptions, write_slurm

        options = SlurmOptions(args.time, args.cpus_per_task, args.partition, args.account)
        prepare_output_dir(args.slurm)
        with lock_folder(args.slurm):
            scripts = write_slurm(sweep, args.slurm, options)
        print(f"wrote {len(scripts) - 1} batch scripts; submit them with {scripts[-1]}")
        return 0
    prepare_output_dir(args.output)

    def report(outcome: PointOutcome) -> None:
        text = {"done": f"done in {outcome.seconds:.1f} s", "skipped": "finished earlier"}
        print(f"point {outcome.point.id}: {text.get(outcome.status, outcome.message)}")

    print(f"sweep {sweep.name}: {len(points)} points into {args.output}")
    with lock_folder(args.output):
        with Recorder(PACKAGE, __version__) as run:
            result = run_sweep(
                sweep,
                args.output,
                force=args.force_resume,
                only=args.point,
                timeout_s=args.timeout,
                progress=report,
            )
        failed = result.ids("failed")
        run.write(
            args.output / "results.json",
            config=sweep,
            metrics={s: result.ids(s) for s in ("done", "skipped", "failed")},
            headline=Headline("points finished", len(result.outcomes) - len(failed)),
        )
    if failed and len(failed) == len(result.outcomes):
        raise UserError(f"every point failed ({', '.join(failed)}); see points/*/log.txt")
    if failed:
        print(f"{len(failed)} point(s) failed: {', '.join(failed)} (see points/<id>/log.txt)")
    print(f"wrote {args.output}; analyse with: energy-scaling analyze {args.output}")
    return 0


def _point(args: argparse.Namespace) -> int:
    from energy_scaling.data import load_samples
    from energy_scaling.runner import load_sweep
    from energy_scaling.sweep import find_point
    from energy_scaling.training import Evaluation, train_point

    sweep = load_sweep(args.sweep)
    point = find_point(sweep, args.point)
    comm = get_comm()
    if comm.Get_size() != point.ranks:
        raise UserError(
            f"point {point.id} needs {point.ranks} rank(s); started with "
            f"{comm.Get_size()} (mpiexec -n {point.ranks})"
        )
    set_torch_threads(comm, sweep.threads or None)

    def report(e: Evaluation) -> None:
        rank0_print(
            f"{point.id} update {e.update}: validation {e.metric:.4f} at {e.seconds:.1f} "
            f"s, {e.joules:.1f} J, train loss {e.train_loss:.4f}",
            comm=comm,
        )

    prepare_output_dir(args.output)
    with lock_folder(args.output, comm):
        with Recorder(PACKAGE, __version__, comm) as run:
            samples = load_samples(sweep.data, sweep.train.seed)
            result = train_point(sweep, point, samples, comm, progress=report)
        run.write(
            args.output / "results.json",
            config={"point": point.id, "sweep": sweep},
            metrics=result.metrics(),
            headline=result.headline(),
        )
    return 0


def analyze_folders(
    folders: list[Path],
    output: Path,
    *,
    tolerance: float = 0.01,
    deadline_s: float | None = None,
    energy_budget_kwh: float | None = None,
) -> tuple[Headline, str]:
    """Analyse finished sweeps into ``output``: results.json, analysis.json,
    recommendation.json, report.md and the plots. Returns the headline and the choice text."""
    from energy_scaling.analysis import analyze, load_points
    from energy_scaling.plots import write_plots
    from energy_scaling.recommend import recommend_run
    from energy_scaling.report import markdown_report

    prepare_output_dir(output)
    points = load_points(folders)
    with lock_folder(output):
        with Recorder(PACKAGE, __version__) as run:
            analysis = analyze(points, tolerance=tolerance)
            choice = recommend_run(
                analysis, deadline_s=deadline_s, energy_budget_kwh=energy_budget_kwh
            )
            plots = write_plots(analysis, choice, output)
        write_json_atomic(output / "analysis.json", analysis.to_dict())
        write_json_atomic(output / "recommendation.json", choice.to_dict())
        title = "Energy of data-parallel training: " + ", ".join(f.name for f in folders)
        write_text_atomic(output / "report.md", markdown_report(analysis, choice, title))
        fit = analysis.fits[0]
        headline = Headline(
            f"fitted k of {fit.model} ({'measured' if fit.measured else 'estimated'} energy, "
            f"R² {fit.r2:.3f}, {fit.points} points)",
            fit.watts_per_device,
            unit="W per device",
            higher_is_better=False,
        )
        run.write(
            output / "results.json",
            config={"sweeps": [str(f) for f in folders], "tolerance": tolerance},
            metrics={**analysis.to_dict(), "recommendation": choice.to_dict()},
            headline=headline,
            artifacts=["analysis.json", "recommendation.json", "report.md", *plots],
        )
    return headline, choice.text()


def _analyze(args: argparse.Namespace) -> int:
    headline, text = analyze_folders(args.sweeps, args.output, tolerance=args.tolerance)
    print(f"{headline.name}: {headline.value:.4g} {headline.unit}")
    print(text)
    print(f"wrote {args.output / 'report.md'}")
    return 0


def _recommend(args: argparse.Namespace) -> int:
    from energy_scaling.analysis import analyze, load_points
    from energy_scaling.recommend import recommend_run

    budget = None if args.budget_wh is None else args.budget_wh / 1e3
    analysis = analyze(load_points(args.sweeps))
    choice = recommend_run(analysis, deadline_s=args.deadline, energy_budget_kwh=budget)
    print(choice.to_json() if args.json else choice.text())
    return 0


def _demo(args: argparse.Namespace) -> int:
    from energy_scaling.demo import run_demo

    run_demo(args.output)
    return 0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="energy-scaling",
        description="What scaling out data-parallel training costs in energy: sweep, fit, "
        "recommend.",
    )
    parser.add_argument("--version", action="version", version=f"energy-scaling {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    sweep = commands.add_parser(
        "sweep", help="run a sweep point by point (mpiexec), or write SLURM scripts (--slurm)"
    )
    where = sweep.add_mutually_exclusive_group(required=True)
    where.add_argument("--output", type=Path, help="sweep folder to run into (resumable)")
    where.add_argument(
        "--slurm",
        type=Path,
        metavar="DIR",
        help="write one batch script per point for the sweep folder DIR",
    )
    sweep.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="ID",
        help="run only this point (repeatable), e.g. r2-g128-l64",
    )
    sweep.add_argument(
        "--timeout",
        type=_positive,
        metavar="S",
        help="a point still running after S seconds counts as failed",
    )
    sweep.add_argument(
        "--force-resume",
        action="store_true",
        help="continue a folder that holds a sweep with other settings",
    )
    slurm = sweep.add_argument_group("SLURM (with --slurm)")
    slurm.add_argument("--time", default="01:00:00", help="time limit per point")
    slurm.add_argument("--cpus-per-task", type=int, default=8, help="cores per rank")
    slurm.add_argument("--partition", default="", help="partition")
    slurm.add_argument("--account", default="", help="account")
    add_config_flags(sweep, SweepConfig)
    sweep.set_defaults(run=_sweep)

    point = commands.add_parser(
        "point", help="train one point of a sweep (what sweep and the SLURM scripts run)"
    )
    point.add_argument("--sweep", type=Path, required=True, help="sweep.json or a TOML sweep")
    point.add_argument("--point", required=True, help="the point's id, e.g. r2-g128-l64")
    point.add_argument("--output", type=Path, required=True, help="the point's folder")
    point.set_defaults(run=_point)

    analyze = commands.add_parser(
        "analyze", help="fit energy vs device-hours, batch limit, scaling, plots and report"
    )
    analyze.add_argument("sweeps", type=Path, nargs="+", help="sweep folders")
    analyze.add_argument("--output", type=Path, required=True, help="folder for the report")
    analyze.add_argument(
        "--tolerance",
        type=_positive,
        default=0.01,
        help="metric distance from the best that counts as degraded",
    )
    analyze.set_defaults(run=_analyze)

    recommend = commands.add_parser(
        "recommend", help="Pareto front of time vs energy to target and the best configuration"
    )
    recommend.add_argument("sweeps", type=Path, nargs="+", help="sweep folders")
    limit = recommend.add_mutually_exclusive_group()
    limit.add_argument(
        "--deadline",
        type=_positive,
        metavar="S",
        help="least energy among runs of at most S seconds",
    )
    limit.add_argument(
        "--budget-wh", type=_positive, metavar="WH", help="fastest run using at most WH watt-hours"
    )
    recommend.add_argument("--json", action="store_true", help="print JSON")
    recommend.set_defaults(run=_recommend)

    demo = commands.add_parser(
        "demo", help="a small CPU sweep (1-2 ranks, two batch sizes), analysis, recommendation"
    )
    demo.add_argument(
        "--output",
        type=Path,
        default=Path("energy-scaling-demo"),
        help="folder for the sweep, results.json, report.md and the plots",
    )
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``energy-scaling`` command; returns the exit code."""
    return run_main(_parser(), argv)
