"""Command line of recycle-ts: the parser and one short handler per command."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from recycle_ts.__about__ import __version__
from recycle_ts.config import MODELS, ForecastConfig
from shared_hpc import (
    Recorder,
    UserError,
    add_config_flags,
    check_output_file,
    config_from_args,
    get_comm,
    lock_folder,
    prepare_output_dir,
    rank0_print,
    run_main,
    set_torch_threads,
    write_text_atomic,
)

STATE = "training-state.pt"
"""The training state a ``train`` run writes after every epoch (``--resume`` reads it)."""
DATASETS = ("taylor", "seattle", "san-francisco", "west-coast")
"""The embedded data sets (``recycle_ts.data.EMBEDDED``), listed here so ``--help`` is quick."""


def _config(args: argparse.Namespace, many: bool = False) -> ForecastConfig:
    """Settings: the data set's own (``--dataset``), then the TOML file, then the flags.

    Raises:
        UserError: A series column for a command that takes one series.
    """
    if args.dataset is None:
        config = config_from_args(args)
    else:
        from recycle_ts.data import EMBEDDED

        base: dict[str, Any] = {"date_column": "date", "target": ["load"],
                                **EMBEDDED[args.dataset][1]}  # fmt: skip
        config = config_from_args(args, base=base)
    if config.series_column and not many:
        if args.dataset:
            raise UserError(f"the data set {args.dataset} holds several series; "
                            f"{args.command} takes one (train takes several)")  # fmt: skip
        raise UserError(f"{args.command} takes one series; --series-column is for train")
    return config


def _train_many(args: argparse.Namespace, config: ForecastConfig) -> int:
    from recycle_ts.many import fit_many, load_collection

    if args.resume:
        raise UserError("--resume continues a run of one series; rerun many series from start")
    comm = get_comm()
    prepare_output_dir(args.output)
    with lock_folder(args.output, comm):
        collection, data = load_collection(args.csv, args.dataset, config)
        set_torch_threads(comm)
        with Recorder("recycle-ts", __version__, comm) as run:
            result = fit_many(collection, config, data, comm)
        if run.is_writer:
            for key, forecaster in result.forecasters.items():
                forecaster.save(args.output / "models" / key)
        run.write(
            args.output / "results.json",
            config=config,
            metrics={**result.metrics(), "data": data},
            headline=result.headline(),
            artifacts=[f"models/{key}/model.json" for key in result.forecasters],
        )
    rank0_print(f"{result.headline().name}: {result.headline().value:.4g}; wrote {args.output}")
    return 0


def _train(args: argparse.Namespace) -> int:
    config = _config(args, many=True)
    if config.series_column:
        return _train_many(args, config)
    comm = get_comm()
    prepare_output_dir(args.output)
    with lock_folder(args.output, comm):  # refused at once while another run holds it
        from recycle_ts.data import load_series
        from recycle_ts.plots import plot_forecast
        from recycle_ts.training import EpochRecord, fit

        series, data = load_series(args.csv, args.dataset, config)
        set_torch_threads(comm)

        def report(record: EpochRecord) -> None:
            if record.epoch % 10 == 0:
                rank0_print(f"epoch {record.epoch:4d}  train {record.train_loss:.4f}  "
                            f"validation {record.validation_loss:.4f}")  # fmt: skip

        with Recorder("recycle-ts", __version__, comm) as run:
            result = fit(series, config, data, progress=report, comm=comm,
                         state_file=args.output / STATE, resume=args.resume,
                         force_resume=args.force_resume)  # fmt: skip
        if run.is_writer:
            result.forecaster.save(args.output / "model")
            write_text_atomic(args.output / "test_forecasts.csv",
                              result.test_forecasts.to_csv(index=False))  # fmt: skip
            rows = ["epoch,train_loss,validation_loss,seconds"]
            rows += [",".join(map(str, vars(r).values())) for r in result.history]
            write_text_atomic(args.output / "history.csv", "\n".join(rows) + "\n")
            plot_forecast(result.test_forecasts, series.target_names[0],
                          args.output / "forecast.png")  # fmt: skip
        run.write(
            args.output / "results.json",
            config=result.forecaster.config,
            metrics={**result.metrics(), "data": data},
            headline=result.headline(),
            artifacts=["model/model.json", "model/model.pt", "test_forecasts.csv",
                       "history.csv", "forecast.png", STATE],
        )  # fmt: skip
    rank0_print(f"{result.headline().name}: {result.test[result.model]['mae']:.4g}; "
                f"wrote {args.output}")  # fmt: skip
    return 0


def _forecast(args: argparse.Namespace) -> int:
    from recycle_ts.data import read_csv
    from recycle_ts.forecaster import Forecaster

    check_output_file(args.output)
    forecaster = Forecaster.load(args.model)
    frame = read_csv(args.csv, forecaster.config.date_column)
    future = read_csv(args.future, forecaster.config.date_column) if args.future else None
    result = forecaster.predict(frame, future)
    write_text_atomic(args.output, result.to_csv(index=False))
    rank0_print(f"forecast of {len(result)} steps from {result['timestamp'].iloc[0]}; "
                f"wrote {args.output}")  # fmt: skip
    return 0


def _compare(args: argparse.Namespace) -> int:
    from recycle_ts.comparison import GRID, compare, tune
    from recycle_ts.data import load_series
    from recycle_ts.plots import plot_comparison
    from shared_hpc.bench import markdown_table

    config = _config(args)
    comm = get_comm()
    prepare_output_dir(args.output)
    with lock_folder(args.output, comm):
        series, data = load_series(args.csv, args.dataset, config)
        set_torch_threads(comm)
        with Recorder("recycle-ts", __version__, comm) as run:
            chosen: dict[str, dict[str, Any]] = {}
            if args.tune:
                for model in args.models:
                    chosen[model] = tune(series, config, model, comm=comm).chosen
                    rank0_print(f"{model}: chose {chosen[model]} on validation from {GRID}")
            comparison = compare(
                series,
                config,
                args.models,
                args.seeds,
                data,
                comm,
                progress=lambda r: rank0_print(f"{r.model} seed {r.seed} done"),
                settings=chosen,
            )
        rows = comparison.rows()
        table = markdown_table(
            ["model", "kind", "seeds", "test MAE", "test MASE", "train s", "energy J", "tuned"],
            [[r["name"], r["kind"], r["seeds"], f"{r['mae']:.4g}", f"{r['mase']:.3f}",
              "" if r["train_seconds"] is None else f"{r['train_seconds']:.2f}",
              "" if r["joules"] is None else f"{r['joules']:.1f} ({r['energy_method']})",
              ", ".join(f"{k} {v:g}" for k, v in chosen.get(r["name"], {}).items())]
             for r in rows],
        )  # fmt: skip
        if run.is_writer:
            write_text_atomic(args.output / "comparison.md", table + "\n")
            plot_comparison(comparison, args.output / "comparison.png")
        run.write(
            args.output / "results.json",
            config={**vars(config), "models": list(args.models), "seeds": list(args.seeds)},
            metrics={**comparison.metrics(), "tuned": chosen, "data": data},
            headline=comparison.headline(),
            artifacts=["comparison.md", "comparison.png"],
        )
    rank0_print(table)
    return 0


def _hpo(args: argparse.Namespace) -> int:
    from recycle_ts.data import load_series
    from recycle_ts.hpo import search

    config = _config(args)
    comm = get_comm()
    prepare_output_dir(args.output)
    with lock_folder(args.output, comm):
        series, data = load_series(args.csv, args.dataset, config)
        set_torch_threads(comm)
        with Recorder("recycle-ts", __version__, comm) as run:
            result = search(series, config, args.generations, comm, seed=args.search_seed)
        if run.is_writer:
            result.best.forecaster.save(args.output / "model")
        run.write(
            args.output / "results.json",
            config={**vars(config), "generations": args.generations},
            metrics={**result.metrics(), "data": data},
            headline=result.headline(),
            artifacts=["model/model.json", "model/model.pt"],
        )
    rank0_print(f"{result.headline().name}: {result.headline().value:.4g}; best "
                f"{result.best_params}; wrote {args.output}")  # fmt: skip
    return 0


def _demo(args: argparse.Namespace) -> int:
    from recycle_ts.demo import run_demo

    run_demo(args.output)
    return 0


def _list(kind: type, choices: tuple[str, ...] | None = None):
    def parse(text: str) -> list:
        try:
            items = [kind(item) for item in text.split(",") if item]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a list like A,B; got {text!r}") from None
        if choices is not None and any(i not in choices for i in items):
            raise argparse.ArgumentTypeError(f"choose from {','.join(choices)}; got {text!r}")
        if not items or len(set(items)) != len(items):
            raise argparse.ArgumentTypeError(f"expected distinct items, got {text!r}")
        return items

    return parse


def _data_flags(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", type=Path, help="CSV file with a time stamp column")
    source.add_argument("--dataset", choices=DATASETS, help="an embedded data set instead")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recycle-ts",
        description="ReCycle: residual cyclic transformers for load forecasting.",
    )
    parser.add_argument("--version", action="version", version=f"recycle-ts {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model; score it and every baseline")
    _data_flags(train)
    train.add_argument("--output", type=Path, required=True, help="folder for the results")
    train.add_argument(
        "--resume",
        action="store_true",
        help=f"continue from the folder's {STATE} (written after every epoch)",
    )
    train.add_argument(
        "--force-resume",
        action="store_true",
        help="resume even if the state was saved with other data",
    )
    add_config_flags(train, ForecastConfig)
    train.set_defaults(run=_train)

    forecast = commands.add_parser("forecast", help="forecast after the end of new data")
    forecast.add_argument("--model", type=Path, required=True, help="a train run's model/")
    forecast.add_argument("--csv", type=Path, required=True, help="the recent history")
    forecast.add_argument("--future", type=Path, help="CSV of the covariates ahead, if any")
    forecast.add_argument("--output", type=Path, required=True, help="CSV file to write")
    forecast.set_defaults(run=_forecast)

    compare = commands.add_parser("compare", help="all models and baselines on one data set")
    _data_flags(compare)
    compare.add_argument("--output", type=Path, required=True, help="folder for the results")
    compare.add_argument("--models", type=_list(str, MODELS), default=list(MODELS),
                         help="e.g. recycle,dlinear (default: all)")  # fmt: skip
    compare.add_argument("--seeds", type=_list(int), default=[0], help="e.g. 0,1,2")
    compare.add_argument(
        "--tune", action="store_true", help="first choose each network's width and lr on validation"
    )
    add_config_flags(compare, ForecastConfig)
    compare.set_defaults(run=_compare)

    hpo = commands.add_parser(
        "hpo", help="tune a model with propulate-hpo (MPI: one worker per rank)"
    )
    _data_flags(hpo)
    hpo.add_argument("--output", type=Path, required=True, help="folder for the results")
    hpo.add_argument("--generations", type=int, default=8, help="candidates per rank")
    hpo.add_argument("--search-seed", type=int, default=0, help="seed of the breeding")
    add_config_flags(hpo, ForecastConfig)
    hpo.set_defaults(run=_hpo)

    demo = commands.add_parser("demo", help="ReCycle on Taylor's demand data (seconds)")
    demo.add_argument("--output", type=Path, default=Path("recycle-ts-demo"),
                      help="folder for results.json and forecast.png")  # fmt: skip
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``recycle-ts`` command; returns the exit code."""
    return run_main(_parser(), argv)
