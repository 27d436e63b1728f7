"""Command line of weathermixer: generate, train, evaluate, benchmark, demo.

A thin wrapper over the Python API. Every command also runs under ``mpiexec``/``srun``, e.g.
``mpiexec -n 4 weathermixer train --grid 2x2 --data era5.nc --output run``. Errors in the
input end the command with one line on stderr and exit code 2, before any heavy work.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from shared_hpc import get_comm, load_config
from weathermixer.__about__ import __version__


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def _add_generate(sub: Any) -> None:
    p = sub.add_parser("generate", help="simulate an ERA5-like global dataset (netCDF)")
    p.add_argument("--output", type=Path, required=True, help="netCDF file to write")
    p.add_argument("--nlat", type=int, default=32, help="latitude rows (longitudes: 2×nlat)")
    p.add_argument("--days", type=float, default=365.0, help="simulated days written")
    p.add_argument("--spinup-days", type=float, default=60.0, help="days simulated first")
    p.add_argument("--interval-h", type=int, default=6, help="hours between written states")
    p.add_argument("--start", default="2000-01-01T00:00", help="first written time (UTC)")
    p.add_argument("--seed", type=int, default=0)


def _add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train (or resume) a WeatherMixer, on any process grid")
    p.add_argument("--config", type=Path, help="TOML file with [data], [model], [train] tables")
    p.add_argument("--data", help="netCDF file, directory, glob or zarr store")
    p.add_argument("--static", help="separate file with the static fields")
    p.add_argument("--output", help="run directory (checkpoints, log, results.json)")
    p.add_argument("--grid", help="domain x tensor ranks, e.g. 2x2; replicas = ranks / (D·M)")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int, help="samples per data-parallel replica")
    p.add_argument("--lr", type=float)
    p.add_argument("--warmup-steps", type=int)
    p.add_argument("--finetune-steps", type=int, help="rollout fine-tuning steps after --steps")
    p.add_argument("--max-rollout", type=int)
    p.add_argument(
        "--rollout-grad-steps", type=int, help="back-propagate through only the last N steps"
    )
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"])
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--log-every", type=int)
    p.add_argument("--val-every", type=int)
    p.add_argument("--lead-time-h", type=float)
    p.add_argument("--train-period", help="START:END, e.g. 1979-01-01:2015-12-31")
    p.add_argument("--valid-period")
    p.add_argument("--test-period")
    p.add_argument("--preload", action="store_true", help="keep this rank's data in memory")
    p.add_argument(
        "--roll-longitude", action="store_true", help="augment by rotating the globe (small data)"
    )
    for name in ("patch", "embed-dim", "token-hidden", "channel-hidden", "depth"):
        p.add_argument(f"--{name}", type=int)
    p.add_argument("--threads", type=int, help="torch CPU threads per rank")


def _add_evaluate(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="RMSE and ACC vs persistence and climatology")
    p.add_argument("--run", type=Path, required=True, help="run directory of `train`")
    p.add_argument("--output", type=Path, help="where to write skill.json and plots")
    p.add_argument("--leads", type=_floats, help="lead times in hours, e.g. 6,24,72,120")
    p.add_argument("--stride-h", type=float, default=24.0, help="hours between initial times")
    p.add_argument("--grid", default="1x1")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-forecasts", type=int)
    p.add_argument("--threads", type=int)


def _add_benchmark(sub: Any) -> None:
    p = sub.add_parser("benchmark", help="step time, TFLOP/s, memory and bytes per rank")
    p.add_argument("--preset", choices=["small", "large"], default="small")
    p.add_argument("--grid", default="1x1")
    p.add_argument("--nlat", type=int, help="override the preset's latitude rows (lon = 2×)")
    for name in ("patch", "embed-dim", "token-hidden", "channel-hidden", "depth", "channels"):
        p.add_argument(f"--{name}", type=int)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--peak-tflops", type=float, help="peak of the device, for MFU")
    p.add_argument("--output", type=Path, help="write all ranks' results as JSON")
    p.add_argument("--threads", type=int)


def _add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="generate, train, evaluate end to end (about a minute)")
    p.add_argument("--output", type=Path, default=Path("weathermixer-demo"))
    p.add_argument("--threads", type=int)
    p.add_argument("--quick", action="store_true", help="tiny version for tests (seconds)")


def _train_config(args: argparse.Namespace) -> Any:
    from weathermixer.config import RunConfig

    overrides: dict[str, Any] = {"data": {}, "model": {}, "train": {}}
    data = {
        "path": args.data,
        "static_path": args.static,
        "lead_time_h": args.lead_time_h,
        "train_period": args.train_period,
        "valid_period": args.valid_period,
        "test_period": args.test_period,
        "preload": args.preload or None,
    }
    model = {
        k: getattr(args, k)
        for k in ("patch", "embed_dim", "token_hidden", "channel_hidden", "depth")
    }
    train = {
        "steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "warmup_steps": args.warmup_steps,
        "finetune_steps": args.finetune_steps,
        "max_rollout": args.max_rollout,
        "rollout_grad_steps": args.rollout_grad_steps,
        "precision": args.precision,
        "checkpoint_every": args.checkpoint_every,
        "log_every": args.log_every,
        "val_every": args.val_every,
        "roll_longitude": args.roll_longitude or None,
    }
    for section, values in (("data", data), ("model", model), ("train", train)):
        overrides[section] = {k: v for k, v in values.items() if v is not None}
    top = {k: v for k, v in (("grid", args.grid), ("output", args.output)) if v is not None}
    return load_config(RunConfig, args.config, **overrides, **top)


def _benchmark_config(args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from weathermixer.benchmark import PRESETS

    cfg = PRESETS[args.preset]
    changes: dict[str, Any] = {}
    if args.nlat:
        changes["grid"] = (args.nlat, 2 * args.nlat)
    if args.channels:
        changes["state_channels"] = args.channels
    for name in ("patch", "embed_dim", "token_hidden", "channel_hidden", "depth"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    return replace(cfg, **changes)


def run(args: argparse.Namespace) -> int:
    comm = get_comm()
    if args.command == "generate":
        from weathermixer.simulate import SimulationConfig, generate

        sim = SimulationConfig(
            nlat=args.nlat,
            days=args.days,
            spinup_days=args.spinup_days,
            output_interval_h=args.interval_h,
            start=args.start,
            seed=args.seed,
        )
        sim.check()
        if comm.Get_rank() == 0:
            path = generate(args.output, sim, progress=print)
            print(f"wrote {path}")
        return 0
    from weathermixer.train import set_threads

    if args.command == "train":
        from weathermixer.train import train

        cfg = _train_config(args)
        set_threads(args.threads, comm)
        record = train(cfg, comm)
        if record is not None:
            print(f"wrote {Path(cfg.output) / 'results.json'}")
        return 0
    if args.command == "evaluate":
        from weathermixer.evaluate import evaluate

        set_threads(args.threads, comm)
        table = evaluate(
            args.run,
            args.output,
            args.leads,
            args.stride_h,
            args.grid,
            args.batch_size,
            args.max_forecasts,
            comm,
        )
        if table is not None:
            _print_skill(table)
        return 0
    if args.command == "benchmark":
        from weathermixer.benchmark import run_benchmark
        from weathermixer.grid import GridSpec, check_grid

        cfg = _benchmark_config(args)
        check_grid(GridSpec.parse(args.grid), comm.Get_size(), cfg)
        set_threads(args.threads, comm)
        results = run_benchmark(
            cfg,
            args.grid,
            args.batch_size,
            args.steps,
            args.warmup,
            args.precision,
            args.compile,
            args.peak_tflops,
            comm,
        )
        if comm.Get_rank() == 0:
            _print_bench(results)
            if args.output:
                from shared_hpc import write_json_atomic

                write_json_atomic(args.output, {"config": cfg.__dict__, "ranks": results})
        return 0
    if args.command == "demo":
        from weathermixer.demo import demo

        set_threads(args.threads, comm)
        demo(args.output, comm, quick=args.quick)
        return 0
    raise AssertionError(args.command)


def _print_skill(table: dict[str, Any]) -> None:
    print(f"lead times [h]: {table['leads_h']}  ({table['n_forecasts']} forecasts)")
    for name in table["channels"]:
        for score, kinds in (
            ("rmse", ("model", "persistence", "climatology")),
            ("acc", ("model", "persistence")),
        ):
            cells = [
                f"{kind} {' '.join(f'{x:.3g}' for x in table[kind][name][score])}" for kind in kinds
            ]
            print(f"{name:>6} {score.upper():<4} " + " | ".join(cells))


def _print_bench(results: list[dict[str, Any]]) -> None:
    r0 = results[0]
    print(
        f"grid {r0['grid']} × {r0['replicas']} replicas on {r0['device']}: "
        f"{r0['step_s'] * 1e3:.1f} ms/step, {r0['samples_per_s']:.2f} samples/s"
    )
    for r in results:
        mfu = f" MFU {100 * r['mfu']:.1f} %" if r["mfu"] is not None else ""
        print(
            f"  rank {r['rank']}: {r['tflops_per_rank']:.3f} TFLOP/s{mfu}, "
            f"params {r['parameters_rank']:,} of {r['parameters_total']:,}, "
            f"activations {r['activation_bytes'] / 2**20:.1f} MiB, "
            f"peak {r['peak_memory_bytes'] / 2**20:.0f} MiB, "
            f"sent {r['comm_bytes_counted'] / 2**20:.2f} MiB/step"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="weathermixer",
        description="WeatherMixer global weather model with Jigsaw domain × tensor parallelism.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_generate, _add_train, _add_evaluate, _add_benchmark, _add_demo):
        add(sub)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"weathermixer {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
