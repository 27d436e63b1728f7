"""Command line of propulate-hpo: ``run``, ``summarize`` and ``demo``; a thin wrapper over the API.

Every command also works under MPI: ``mpiexec -n 8 propulate-hpo run --function rastrigin``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from propulate_hpo.__about__ import __version__
from propulate_hpo.config import PROPAGATORS, RunConfig, make_propagator
from propulate_hpo.functions import BENCHMARKS

HEADLINE_PAPER = None  # the paper reports speed-ups, not a loss for these settings
EARLY_STOPPING_MARGIN = 0.5  # demo: cancel a candidate 50 % worse than the best at that epoch


def load_loss(spec: str) -> Callable[..., Any]:
    """``package.module:function`` or ``path/to/file.py:function`` -> the function."""
    target, _, name = spec.rpartition(":")
    if not target or not name:
        raise ValueError(f"loss must look like 'package.module:function', got {spec!r}")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ValueError(f"loss file {path} does not exist")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as error:
            raise ValueError(f"cannot import {target!r}: {error}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise ValueError(f"{target!r} has no function {name!r}")
    return function


def _topology(config: RunConfig) -> Any:
    import numpy as np

    n = config.islands if config.island_sizes is None else len(config.island_sizes)
    matrix = np.full((n, n), config.migrants, dtype=np.int64)
    np.fill_diagonal(matrix, 0)
    return matrix


def run(config: RunConfig, comm: Any = None) -> Any:
    """Run the optimisation described by ``config``; rank 0 writes results into ``output``."""
    from propulate_hpo.functions import benchmark
    from propulate_hpo.propulator import Propulator
    from propulate_hpo.space import SearchSpace
    from propulate_hpo.surrogate import BestAtStep
    from shared_hpc import EnergyMeter, RunRecord, get_comm

    comm = get_comm() if comm is None else comm
    if config.function is not None:
        loss_fn, space = benchmark(config.function, config.dim)
    else:
        assert config.loss is not None and config.space is not None
        space = SearchSpace.from_toml(config.space)
        loss_fn = load_loss(config.loss)
    islands = config.island_sizes if config.island_sizes is not None else config.islands
    n_workers = comm.Get_size() // max(1, config.ranks_per_worker)
    pop_size = config.pop_size or max(8, 2 * max(1, n_workers // max(1, config.islands)))
    propagator = make_propagator(config.propagator, space, pop_size)
    surrogate = None if config.early_stopping is None else BestAtStep(config.early_stopping)
    propulator = Propulator(
        loss_fn,
        space,
        generations=config.generations,
        budget_s=config.budget_s,
        max_evaluations=config.max_evaluations,
        propagator=propagator,
        pop_size=pop_size,
        islands=islands,
        topology=_topology(config),
        migration_probability=config.migration_probability,
        pollination=config.pollination,
        ranks_per_worker=config.ranks_per_worker,
        checkpoint_dir=config.checkpoint,
        seed=config.seed,
        surrogate=surrogate,
        comm=comm,
    )
    n_islands = islands if isinstance(islands, int) else len(islands)
    if n_islands > 1 and config.migration_probability == 0.0 and comm.Get_rank() == 0:
        print(
            f"propulate-hpo: warning: {n_islands} islands with migration probability 0 never "
            "exchange candidates (set --migration-probability)",
            file=sys.stderr,
        )
    started = time.perf_counter()
    with EnergyMeter(comm) as meter:
        result = propulator.run()
    if comm.Get_rank() == 0:
        out = config.output
        out.mkdir(parents=True, exist_ok=True)
        result.to_csv(out / "history.csv")
        result.plot(out / "progress.png")
        best = result.best(1)
        metrics = {
            "best_loss": result.best_loss,
            "evaluations": result.n_evaluations,
            "optimizer_wall_time_s": result.wall_time_s,
            **result.counts(),
            "best_params": best[0]["params"] if best else None,
        }
        if result.n_islands > 1:
            metrics["migration"] = {str(k): v for k, v in result.migration_stats().items()}
        from shared_hpc import config_to_dict

        RunRecord.create(
            "propulate-hpo",
            __version__,
            config=config_to_dict(config),
            metrics=metrics,
            headline={
                "name": "best loss",
                "value": result.best_loss,
                "unit": "",
                "paper": HEADLINE_PAPER,
                "higher_is_better": False,
            },
            energy=meter.report.to_dict(),
            wall_time_s=time.perf_counter() - started,
            artifacts=["history.csv", "progress.png"],
        ).write(out / "results.json")
        print(result.summary())
        print(f"energy: {meter.report}")
        print(f"results in {out}/ (history.csv, progress.png, results.json)")
    return result


def summarize(directory: Path, output: Path | None = None, top: int = 5) -> Any:
    """Read a checkpoint directory: print the best candidates, write the history and a plot."""
    from propulate_hpo.checkpoint import read_checkpoint, read_meta
    from propulate_hpo.results import Result, Table
    from propulate_hpo.space import SearchSpace

    meta = read_meta(directory)
    space = SearchSpace(meta["space"])
    state = read_checkpoint(directory, space)
    finished = state.finished
    islands = int(meta["islands"])
    result = Result(
        space=space,
        table=Table.from_evaluations(finished, space.dim),
        n_islands=islands,
        n_workers=len({e.worker for e in finished}),
    )
    in_flight = sum(not ev.done for ev in state.evaluations.values())
    output = directory if output is None else output
    output.mkdir(parents=True, exist_ok=True)
    print(
        f"{directory}: {len(finished)} finished candidates, {in_flight} in flight, "
        f"{len(state.events)} migration events, {islands} island(s)"
    )
    counts = result.counts()
    print(f"  {counts['ok']} ok, {counts['failed']} failed, {counts['cancelled']} cancelled")
    for i, best in enumerate(result.best(top), start=1):
        print(f"  #{i} loss {best['loss']:.6g}  {json.dumps(best['params'])}")
    if finished:
        result.to_csv(output / "history.csv")
        result.plot(output / "progress.png")
        print(f"wrote {output / 'history.csv'} and {output / 'progress.png'}")
    return result


def demo(
    output: Path,
    ranks_per_worker: int = 1,
    generations: int = 64,
    budget_s: float = 40.0,
    seed: int = 0,
    comm: Any = None,
) -> Any:
    """Tune an MLP on scikit-learn digits: log-scale lr and width, dropout, optimizer.

    Each candidate trains data-parallel on its worker's ranks and is early-stopped by the
    surrogate when its validation loss falls behind; energy is measured per candidate.
    """
    import torch

    from propulate_hpo.digits import DIGITS_SPACE, EPOCHS, digits_data, digits_loss
    from propulate_hpo.propulator import Propulator
    from propulate_hpo.surrogate import BestAtStep
    from shared_hpc import EnergyMeter, RunRecord, get_comm

    comm = get_comm() if comm is None else comm
    torch.set_num_threads(1)  # ranks share the cores
    checkpoint = output / "checkpoint"
    if comm.Get_rank() == 0:
        output.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(checkpoint, ignore_errors=True)  # the demo always starts afresh
    digits_data()
    comm.barrier()
    propulator = Propulator(
        digits_loss,
        DIGITS_SPACE,
        generations=generations,
        budget_s=budget_s,
        ranks_per_worker=ranks_per_worker,
        checkpoint_dir=checkpoint,
        seed=seed,
        surrogate=BestAtStep(margin=EARLY_STOPPING_MARGIN, min_step=2),
        comm=comm,
    )
    started = time.perf_counter()
    with EnergyMeter(comm) as meter:
        result = propulator.run()
    if comm.Get_rank() != 0:
        return result
    history = result.history
    result.to_csv(output / "history.csv")
    result.plot(output / "progress.png")
    _plot_energy(history, output / "energy.png")
    best = result.best(1)[0]
    row = history[
        (history["worker"] == best["worker"]) & (history["generation"] == best["generation"])
    ].iloc[0]
    counts = result.counts()
    metrics = {
        "best_val_loss": best["loss"],
        "best_params": best["params"],
        "best_val_accuracy": float(row.get("val_accuracy", float("nan"))),
        "best_test_accuracy": float(row.get("test_accuracy", float("nan"))),
        "evaluations": result.n_evaluations,
        **counts,
        "epochs_trained": int(history["steps"].sum()),
        "epochs_without_early_stopping": int(EPOCHS * result.n_evaluations),
        "candidate_energy_j": float(history["energy_j"].sum()),
        "energy_per_candidate_measured": bool(history["energy_measured"].min() == 1.0),
        "workers": result.n_workers,
        "ranks_per_worker": ranks_per_worker,
    }
    record = RunRecord.create(
        "propulate-hpo",
        __version__,
        config={
            "search_space": "digits MLP: lr (log), width (log), dropout, optimizer",
            "generations": generations,
            "budget_s": budget_s,
            "seed": seed,
            "ranks_per_worker": ranks_per_worker,
            "early_stopping_margin": EARLY_STOPPING_MARGIN,
        },
        metrics=metrics,
        headline={
            "name": "test accuracy of the best candidate (digits MLP)",
            "value": metrics["best_test_accuracy"],
            "unit": "",
            "paper": HEADLINE_PAPER,
            "higher_is_better": True,
        },
        energy=meter.report.to_dict(),
        wall_time_s=time.perf_counter() - started,
        artifacts=["history.csv", "progress.png", "energy.png", "checkpoint/"],
    )
    record.write(output / "results.json")
    print(result.summary())
    print(
        f"best candidate: test accuracy {metrics['best_test_accuracy']:.3f}; "
        f"{counts['cancelled']} of {result.n_evaluations} candidates stopped early; "
        f"trained {metrics['epochs_trained']} of {metrics['epochs_without_early_stopping']} epochs"
    )
    print(f"energy of the whole demo: {meter.report}")
    print(f"results in {output}/")
    return result


def _plot_energy(history: Any, path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 4), layout="constrained")
    ax = figure.subplots()
    for status, marker in (("ok", "o"), ("cancelled", "x")):
        part = history[history["status"] == status]
        ax.scatter(part["energy_j"], part["loss"], marker=marker, label=status, alpha=0.7)
    measured = bool(len(history)) and bool(history["energy_measured"].min() == 1.0)
    ax.set_xlabel(f"energy per candidate [J] ({'measured' if measured else 'estimated'})")
    ax.set_ylabel("validation loss")
    ax.set_yscale("log")
    ax.legend()
    figure.savefig(path, dpi=110)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="propulate-hpo",
        description="Asynchronous parallel evolutionary optimisation (Propulate) over MPI.",
        epilog="Under MPI: mpiexec -n 8 propulate-hpo run --function rastrigin --islands 2",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    s = argparse.SUPPRESS
    r = commands.add_parser(
        "run", help="optimise a benchmark function or your loss function", argument_default=s
    )
    r.add_argument("--config", type=Path, help="TOML file with any of the options below")
    what = r.add_mutually_exclusive_group()
    what.add_argument("--function", choices=sorted(BENCHMARKS), help="benchmark function")
    what.add_argument("--loss", help="your loss: package.module:function or file.py:function")
    r.add_argument("--space", type=Path, help="TOML search space (with --loss)")
    r.add_argument("--dim", type=int, help="dimension of the benchmark function")
    r.add_argument("--generations", type=int, help="evaluations per worker (default 100)")
    r.add_argument("--budget-s", type=float, dest="budget_s", help="wall-clock budget [s]")
    r.add_argument(
        "--max-evaluations",
        type=int,
        dest="max_evaluations",
        help="evaluations of all workers together (fast workers do more)",
    )
    r.add_argument(
        "--propagator",
        choices=PROPAGATORS,
        help="breeding method (default ga: the paper's GA plus elite samples; ga-paper: the GA "
        "alone)",
    )
    r.add_argument("--pop-size", type=int, dest="pop_size", help="breeding pool size")
    r.add_argument("--islands", type=int, help="number of islands (default 1)")
    r.add_argument(
        "--island-sizes",
        dest="island_sizes",
        type=lambda t: [int(x) for x in t.split(",")],
        help="workers per island, e.g. 2,6",
    )
    r.add_argument("--migration-probability", type=float, dest="migration_probability")
    r.add_argument("--migrants", type=int, help="migrants per island pair and event")
    r.add_argument("--pollination", action="store_true", help="send copies, not migrants")
    r.add_argument(
        "--ranks-per-worker",
        type=int,
        dest="ranks_per_worker",
        help="ranks evaluating one candidate together",
    )
    r.add_argument(
        "--early-stopping",
        type=float,
        dest="early_stopping",
        metavar="MARGIN",
        help="cancel generator losses worse than the best at a step by MARGIN",
    )
    r.add_argument("--checkpoint", type=Path, help="checkpoint directory (resumes if present)")
    r.add_argument("--seed", type=int)
    r.add_argument("--output", type=Path, help="results directory")
    m = commands.add_parser("summarize", help="best candidates and history of a checkpoint")
    m.add_argument("directory", type=Path)
    m.add_argument("--output", type=Path, default=None, help="where to write history.csv/png")
    m.add_argument("--top", type=int, default=5)
    d = commands.add_parser("demo", help="tune an MLP on scikit-learn digits (about a minute)")
    d.add_argument("--output", type=Path, default=Path("propulate-hpo-demo"))
    d.add_argument("--ranks-per-worker", type=int, default=1, dest="ranks_per_worker")
    d.add_argument("--generations", type=int, default=64, help="candidates per worker")
    d.add_argument("--budget-s", type=float, default=40.0, dest="budget_s")
    d.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from shared_hpc import get_comm

    comm = get_comm()
    try:
        if args.command == "run":
            from shared_hpc import load_config

            options = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
            config = load_config(RunConfig, getattr(args, "config", None), **options)
            run(config, comm)
        elif args.command == "summarize":
            if comm.Get_rank() == 0:
                summarize(args.directory, args.output, args.top)
        else:
            demo(
                args.output, args.ranks_per_worker, args.generations, args.budget_s, args.seed, comm
            )
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as error:
        from propulate_hpo.checkpoint import CheckpointError
        from propulate_hpo.space import SearchSpaceError

        if not isinstance(
            error, (ValueError, FileNotFoundError, CheckpointError, SearchSpaceError)
        ):
            raise
        if comm.Get_rank() == 0:
            print(f"propulate-hpo: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
