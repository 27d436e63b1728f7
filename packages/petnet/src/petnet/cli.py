"""Command line of petnet: the parser and one short handler per command.

petnet simulate --scanner small --activity-mbq 50 --duration-ms 4 --output data.h5
petnet convert Singles.root --system scanner.toml --output data.h5   (GATE output in)
petnet sort data.h5 --method gate --policy takeWinnerOfGoods --output pairs.npz
petnet train data.h5 --output run/ --train.epochs 4   (mpiexec -n 4 petnet train ... for DDP)
petnet evaluate test.h5 --model run/best.pt --output eval/
petnet demo --output demo/
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import nullcontext
from functools import partial
from pathlib import Path

from petnet.__about__ import __version__
from petnet.config import AcquisitionConfig, CompareConfig, PETNetConfig, SortConfig
from petnet.sim import simulate
from petnet.singles import Singles, check_singles_path
from petnet.sorting import sort_coincidences
from shared_hpc import (
    Recorder,
    UserError,
    add_config_flags,
    check_output_file,
    config_from_args,
    get_comm,
    lock_folder,
    rank0_print,
    resolve_device,
    run_main,
    write_json_atomic,
    write_text_atomic,
)

PACKAGE = "petnet"
RECORD = "results.json"
COMPARISON_FILES = ("comparison.md", "comparison.json", "comparison.png")


def _simulate(args: argparse.Namespace) -> None:
    config = config_from_args(args).to_simulation()
    output = check_singles_path(args.output)
    tic = time.perf_counter()
    singles = simulate(config)
    singles.save(output)
    rate = len(singles) / config.duration_s
    rank0_print(
        f"{len(singles)} singles ({rate / 1e6:.2f} Mcps) from {singles.meta['n_decays']} decays "
        f"in {time.perf_counter() - tic:.1f} s → {output}"
    )


def _convert(args: argparse.Namespace) -> None:
    from petnet.gate import load_gate_system, read_gate

    system = load_gate_system(args.system)
    output = check_singles_path(args.output)
    tic = time.perf_counter()
    singles = read_gate(args.data, system)
    singles.save(output)
    truth = "with" if singles.has_truth else "without"
    rank0_print(
        f"{len(singles)} singles ({truth} ground truth) on {system.scanner.n_rings} × "
        f"{system.scanner.crystals_per_ring} crystals in {time.perf_counter() - tic:.1f} s "
        f"→ {output}"
    )


def _sort(args: argparse.Namespace) -> None:
    config = config_from_args(args)
    if args.output:
        check_output_file(args.output)
    if config.method == "petnet":
        resolve_device(args.device)
    singles = Singles.load(args.data, sort=args.sort)
    tic = time.perf_counter()
    pairs = sort_coincidences(singles, config, args.model, args.device)
    seconds = time.perf_counter() - tic
    rank0_print(f"{len(pairs)} coincidences from {len(singles)} singles in {seconds:.3f} s")
    if pairs.delayed is not None:
        rank0_print(f"delayed window (randoms estimate): {pairs.delayed}")
    if singles.has_truth:
        rank0_print("truth: " + ", ".join(f"{k} {v}" for k, v in pairs.classify(singles).items()))
    if args.output:
        pairs.save(args.output, singles)


def _train(args: argparse.Namespace) -> None:
    from petnet.train import (  # torch and norse
        BEST_CHECKPOINT,
        LAST_CHECKPOINT,
        data_fingerprints,
        train,
    )

    config = config_from_args(args)
    if args.force_resume and args.resume is None:
        raise UserError("--force-resume needs --resume")
    comm = get_comm()
    log = partial(rank0_print, comm=comm)
    with lock_folder(args.output, comm) as output:
        record = check_output_file(output / RECORD)
        parts = [Singles.load(path) for path in args.data]
        singles = parts[0] if len(parts) == 1 else Singles.concatenate(parts)
        validation = Singles.load(args.validation) if args.validation else None
        fingerprints = data_fingerprints(args.data, args.validation)
        with Recorder(PACKAGE, __version__, comm) as run:
            result = train(
                singles,
                config,
                output,
                validation,
                args.resume,
                comm=comm,
                log=log,
                fingerprints=fingerprints,
                force_resume=args.force_resume,
            )
        run.write(
            record,
            config={"petnet": config, "data": args.data, "validation": args.validation},
            metrics=result.metrics(),
            headline=result.headline(),
            artifacts=[BEST_CHECKPOINT, LAST_CHECKPOINT],
        )
    log(f"best validation F1 {result.best_f1:.4f} (epoch {result.best_epoch})")


def _evaluate(args: argparse.Namespace) -> None:
    from petnet.evaluate import compare, load_sorters  # torch and norse
    from petnet.plots import comparison

    config = config_from_args(args)
    device = resolve_device(args.device)
    comm = get_comm()
    with lock_folder(args.output, comm) if args.output else nullcontext() as output:
        if output is not None:
            for name in (*COMPARISON_FILES, RECORD):
                check_output_file(output / name)
        singles = Singles.load(args.data)
        sorters = load_sorters(args.model, device)
        with Recorder(PACKAGE, __version__, comm) as run:
            result = compare(singles, sorters, config)
        table = result.markdown()
        rank0_print(table, comm=comm)
        if output is None:
            return
        markdown, rows, plot = (output / name for name in COMPARISON_FILES)
        if run.is_writer:
            write_text_atomic(markdown, table)
            write_json_atomic(rows, [r.as_dict() for r in result.methods])
            comparison(result.methods, None, plot)
        run.write(
            output / RECORD,
            config={"compare": config, "data": args.data, "models": args.model},
            metrics=result.metrics(),
            headline=result.headline(),
            artifacts=list(COMPARISON_FILES),
        )


def _demo(args: argparse.Namespace) -> None:
    from petnet.demo import run_demo  # torch and norse

    record = run_demo(args.output, quick=args.quick)
    rank0_print(json.dumps(record.headline))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="petnet",
        description="Spiking-network coincidence processing for PET (PETNet), a Monte-Carlo "
        "simulator and classical coincidence sorters.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser(
        "simulate",
        help="simulate an acquisition into a singles file",
        description="Simulate one source in a preset scanner (the flags), or a full "
        "simulation from the [simulation] table of a TOML file.",
    )
    sim.add_argument("--output", required=True, type=Path, help="singles file (.h5 or .npz)")
    add_config_flags(sim, AcquisitionConfig)
    sim.set_defaults(run=_simulate)

    conv = commands.add_parser(
        "convert",
        help="GATE singles (ROOT or ASCII) into a petnet singles file",
        description="Read the Singles tree of a GATE ROOT file (needs petnet[gate]) or a GATE "
        "ASCII Singles.dat file, map the cylindricalPET volume IDs to petnet's crystals as the "
        "system TOML describes, and write time-sorted singles.",
    )
    conv.add_argument("data", type=Path, help="GATE file: .root, or ASCII (e.g. Singles.dat)")
    conv.add_argument(
        "--system", required=True, type=Path, help="TOML: the GATE hierarchy and scanner"
    )
    conv.add_argument("--output", required=True, type=Path, help="singles file (.h5 or .npz)")
    conv.set_defaults(run=_convert)

    sort = commands.add_parser("sort", help="find coincidences in a singles file")
    sort.add_argument("data", type=Path, help="singles file")
    sort.add_argument("--sort", action="store_true", help="sort unsorted singles by time first")
    sort.add_argument("--model", type=Path, help="checkpoint for --method petnet")
    sort.add_argument("--device", default="cpu", help="where the network runs: cpu or cuda")
    sort.add_argument("--output", type=Path, help="coincidences (.npz)")
    add_config_flags(sort, SortConfig)
    sort.set_defaults(run=_sort)

    tr = commands.add_parser("train", help="train PETNet (under mpiexec: data parallel)")
    tr.add_argument("data", type=Path, nargs="+", help="singles with ground truth (1 or more)")
    tr.add_argument("--output", required=True, type=Path, help="folder for checkpoints")
    tr.add_argument("--validation", type=Path, help="default: the last part of the data")
    tr.add_argument("--resume", type=Path, help="continue from a last.pt checkpoint")
    tr.add_argument(
        "--force-resume",
        action="store_true",
        help="resume even though the checkpoint was trained on other data files",
    )
    add_config_flags(tr, PETNetConfig)
    tr.set_defaults(run=_train)

    ev = commands.add_parser("evaluate", help="compare PETNet and classical sorters on a file")
    ev.add_argument("data", type=Path, help="singles with ground truth")
    ev.add_argument("--model", type=Path, action="append", default=[], help="repeatable")
    ev.add_argument("--device", default="cpu", help="where the networks run: cpu or cuda")
    ev.add_argument("--output", type=Path, help="folder for table, JSON, plot, run record")
    add_config_flags(ev, CompareConfig)
    ev.set_defaults(run=_evaluate)

    demo = commands.add_parser("demo", help="simulate, train briefly, compare (about a minute)")
    demo.add_argument("--output", type=Path, default=Path("petnet-demo"))
    demo.add_argument("--quick", action="store_true", help="even shorter training (tests)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``petnet`` and ``python -m petnet``; returns the exit code.

    Args:
        argv: The arguments; ``None`` reads the command line.
    """
    return run_main(_parser(), argv)
