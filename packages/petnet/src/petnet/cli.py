"""Command line of petnet: a thin wrapper over the Python API.

petnet simulate --scanner small --activity-mbq 50 --duration-ms 4 --output data.h5
petnet sort data.h5 --method gate --policy takeWinnerOfGoods --output pairs.npz
petnet train data.h5 --output run/            (mpiexec -n 4 petnet train … for DDP)
petnet evaluate test.h5 --model run/best.pt --output eval/
petnet demo --output demo/
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from petnet.__about__ import __version__
from petnet.checkpoint import CheckpointError
from petnet.classical import POLICIES, gate_sorter, sliding_window
from petnet.sim import PRESETS, SimulationConfig, Source, WaterCylinder, preset, simulate
from petnet.singles import Singles
from shared_hpc import RunRecord, get_comm, load_config, write_json_atomic, write_text_atomic


def _simulate(args: argparse.Namespace) -> int:
    if args.config:
        config = load_config(SimulationConfig, args.config)
    else:
        scanner = preset(args.scanner)
        activity = args.activity_mbq * 1e6
        radius = args.phantom_radius_mm or 0.5 * scanner.fov_radius_mm
        length = args.phantom_length_mm or scanner.axial_length_mm
        if args.source == "cylinder":
            source = Source(
                kind="cylinder", activity_bq=activity, radius_mm=radius, length_mm=length
            )
        elif args.source == "line":
            half = scanner.axial_length_mm / 2
            source = Source(
                kind="line", activity_bq=activity, position_mm=(0, 0, -half), end_mm=(0, 0, half)
            )
        else:
            source = Source(kind="point", activity_bq=activity)
        water = None
        if args.water or (args.water is None and args.source == "cylinder"):
            water = WaterCylinder(radius_mm=radius, length_mm=length)
        config = SimulationConfig(
            scanner=scanner,
            sources=(source,),
            water=water,
            duration_s=args.duration_ms * 1e-3,
            seed=args.seed,
        )
    tic = time.perf_counter()
    singles = simulate(config)
    singles.save(args.output)
    rate = len(singles) / config.duration_s
    print(
        f"{len(singles)} singles ({rate / 1e6:.2f} Mcps) from {singles.meta['n_decays']} decays "
        f"in {time.perf_counter() - tic:.1f} s → {args.output}"
    )
    return 0


def _energy_window(args: argparse.Namespace) -> tuple[float, float] | None:
    return None if args.no_energy_window else tuple(args.energy_window)


def _sort(args: argparse.Namespace) -> int:
    singles = Singles.load(args.data, sort=args.sort)
    tic = time.perf_counter()
    if args.method == "sliding":
        pairs = sliding_window(singles, args.window_ns, _energy_window(args))
    elif args.method == "gate":
        pairs = gate_sorter(
            singles,
            args.window_ns,
            args.policy,
            _energy_window(args),
            multi_window=not args.single_window,
            delayed_offset_ns=args.delayed_offset_ns,
        )
    else:
        from petnet.evaluate import pair_flagged
        from petnet.inference import PETNetSorter

        if not args.model:
            raise ValueError("--method petnet needs --model CHECKPOINT")
        sorter = PETNetSorter.from_checkpoint(args.model, device=args.device)
        pairs = pair_flagged(singles, sorter.predict(singles).flags, args.window_ns)
    seconds = time.perf_counter() - tic
    print(f"{len(pairs)} coincidences from {len(singles)} singles in {seconds:.3f} s")
    if pairs.delayed is not None:
        print(f"delayed window (randoms estimate): {pairs.delayed}")
    if singles.has_truth:
        print("truth: " + ", ".join(f"{k} {v}" for k, v in pairs.classify(singles).items()))
    if args.output:
        pairs.save(args.output, singles)
    return 0


def _train(args: argparse.Namespace) -> int:
    from petnet.train import PETNetConfig, train

    overrides: dict = {"model": {}, "train": {}}
    for key, section, name in (
        ("architecture", "model", "architecture"),
        ("epochs", "train", "epochs"),
        ("batch_size", "train", "batch_size"),
        ("lr", "train", "lr"),
        ("max_steps", "train", "max_steps_per_epoch"),
        ("seed", "train", "seed"),
    ):
        if getattr(args, key) is not None:
            overrides[section][name] = getattr(args, key)
    config = load_config(PETNetConfig, args.config, **{k: v for k, v in overrides.items() if v})
    parts = [Singles.load(path) for path in args.data]
    singles = parts[0] if len(parts) == 1 else Singles.concatenate(parts)
    validation = Singles.load(args.validation) if args.validation else None
    comm = get_comm()
    log = print if comm.Get_rank() == 0 else None
    result = train(
        singles, config, args.output, validation=validation, resume=args.resume, comm=comm, log=log
    )
    if comm.Get_rank() == 0:
        record = RunRecord.create(
            "petnet",
            __version__,
            config={
                "petnet": config,
                "data": [str(p) for p in args.data],
                "world_size": result.world_size,
            },
            metrics={
                "best_val_f1": result.best_f1,
                "best_epoch": result.best_epoch,
                "history": result.history,
            },
            headline={
                "name": "validation coincidence F1",
                "value": round(result.best_f1, 4),
                "unit": "",
                "paper": 0.952,
                "higher_is_better": True,
            },
            energy=result.energy,
            wall_time_s=result.wall_time_s,
            artifacts=["best.pt", "last.pt"],
            comm=comm,
        )
        record.write(Path(args.output) / "results.json")
        print(f"best validation F1 {result.best_f1:.4f} (epoch {result.best_epoch})")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from petnet.evaluate import compare, markdown_table
    from petnet.inference import PETNetSorter
    from petnet.plots import comparison

    singles = Singles.load(args.data)
    sorters = {}
    for path in args.model:
        sorter = PETNetSorter.from_checkpoint(path, device=args.device)
        sorters[f"PETNet ({sorter.model.config.architecture}, {Path(path).name})"] = sorter
    tic = time.perf_counter()
    results = compare(
        singles,
        sorters,
        window_ns=args.window_ns,
        energy_window=_energy_window(args),
        policies=tuple(args.policies),
        repeats=args.repeats,
    )
    table = markdown_table(results)
    print(table)
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "comparison.md", table)
        write_json_atomic(out / "comparison.json", [r.as_dict() for r in results])
        comparison(results, None, out / "comparison.png")
        best = max(results, key=lambda r: r.scores.f1)
        RunRecord.create(
            "petnet",
            __version__,
            config={
                "data": str(args.data),
                "models": list(map(str, args.model)),
                "window_ns": args.window_ns,
                "energy_window": _energy_window(args),
            },
            metrics={"methods": [r.as_dict() for r in results]},
            headline={
                "name": f"coincidence F1, best method ({best.name})",
                "value": round(best.scores.f1, 4),
                "unit": "",
                "paper": 0.952,
                "higher_is_better": True,
            },
            wall_time_s=time.perf_counter() - tic,
            artifacts=["comparison.md", "comparison.json", "comparison.png"],
        ).write(out / "results.json")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from petnet.demo import run_demo

    record = run_demo(Path(args.output), quick=args.quick)
    print(json.dumps(record.headline))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="petnet",
        description="Spiking-network coincidence processing for PET (PETNet), a Monte-Carlo "
        "simulator and classical coincidence sorters.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser("simulate", help="simulate an acquisition into a singles file")
    sim.add_argument("--output", required=True, type=Path, help="singles file (.h5 or .npz)")
    sim.add_argument("--config", type=Path, help="TOML with a full SimulationConfig")
    sim.add_argument("--scanner", choices=sorted(PRESETS), default="small")
    sim.add_argument("--source", choices=("point", "line", "cylinder"), default="cylinder")
    sim.add_argument("--activity-mbq", type=float, default=50.0)
    sim.add_argument("--duration-ms", type=float, default=4.0)
    sim.add_argument("--phantom-radius-mm", type=float, help="default: half the FOV radius")
    sim.add_argument("--phantom-length-mm", type=float, help="default: the axial length")
    sim.add_argument(
        "--water",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="water cylinder for scatter (default: on for a cylinder source)",
    )
    sim.add_argument("--seed", type=int, default=0)
    sim.set_defaults(run=_simulate)

    def window_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--window-ns", type=float, default=4.0, help="coincidence window")
        p.add_argument(
            "--energy-window",
            type=float,
            nargs=2,
            default=(350.0, 650.0),
            metavar=("LOW", "HIGH"),
            help="keV",
        )
        p.add_argument("--no-energy-window", action="store_true")

    sort = commands.add_parser("sort", help="find coincidences in a singles file")
    sort.add_argument("data", type=Path)
    sort.add_argument("--method", choices=("sliding", "gate", "petnet"), default="gate")
    sort.add_argument("--policy", choices=POLICIES, default="takeWinnerOfGoods")
    window_options(sort)
    sort.add_argument(
        "--single-window",
        action="store_true",
        help="only singles outside an open window open one (GATE's old default)",
    )
    sort.add_argument("--delayed-offset-ns", type=float, help="delayed window for randoms")
    sort.add_argument("--model", type=Path, help="checkpoint for --method petnet")
    sort.add_argument("--device", default="cpu")
    sort.add_argument("--sort", action="store_true", help="sort unsorted singles by time first")
    sort.add_argument("--output", type=Path, help="coincidences (.npz)")
    sort.set_defaults(run=_sort)

    tr = commands.add_parser("train", help="train PETNet (under mpiexec: data parallel)")
    tr.add_argument("data", type=Path, nargs="+", help="singles with ground truth (1 or more)")
    tr.add_argument("--output", required=True, type=Path, help="folder for checkpoints")
    tr.add_argument("--validation", type=Path, help="default: the last 20%% of the data")
    tr.add_argument("--config", type=Path, help="TOML with [model], [encoding], [train]")
    tr.add_argument("--architecture", choices=("ring", "dense"))
    tr.add_argument("--epochs", type=int)
    tr.add_argument("--batch-size", type=int)
    tr.add_argument("--lr", type=float)
    tr.add_argument("--max-steps", type=int, help="at most this many steps per epoch")
    tr.add_argument("--seed", type=int)
    tr.add_argument("--resume", type=Path, help="continue from a last.pt checkpoint")
    tr.set_defaults(run=_train)

    ev = commands.add_parser("evaluate", help="compare PETNet and classical sorters on a file")
    ev.add_argument("data", type=Path, help="singles with ground truth")
    ev.add_argument("--model", type=Path, action="append", default=[], help="repeatable")
    ev.add_argument("--device", default="cpu", help="cpu or cuda")
    ev.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES))
    ev.add_argument("--repeats", type=int, default=3, help="timing runs per method (median)")
    window_options(ev)
    ev.add_argument("--output", type=Path, help="folder for table, JSON, plot, run record")
    ev.set_defaults(run=_evaluate)

    demo = commands.add_parser("demo", help="simulate, train briefly, compare (about a minute)")
    demo.add_argument("--output", type=Path, default=Path("petnet-demo"))
    demo.add_argument("--quick", action="store_true", help="even shorter training (tests)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, CheckpointError) as error:
        print(f"petnet {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
