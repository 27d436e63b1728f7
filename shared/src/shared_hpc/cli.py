"""``shared-hpc`` command line: info, energy -- COMMAND, demo, run-demos."""

from __future__ import annotations

import argparse
import json
import os
import platform
import runpy
import shutil
import subprocess
import sys
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

from shared_hpc.__about__ import __version__
from shared_hpc.command import run_main
from shared_hpc.config import add_config_flags, config_from_args
from shared_hpc.demo import DemoConfig
from shared_hpc.errors import UserError

__all__ = ["main"]


# --- info ------------------------------------------------------------------------------------
def _mpi_info() -> dict[str, Any]:
    from shared_hpc.mpi import get_comm, launched_under_mpi

    found: dict[str, Any] = {"launched_by": launched_under_mpi(), "mpi4py": None, "library": None}
    try:
        found["mpi4py"] = metadata.version("mpi4py")
    except metadata.PackageNotFoundError:
        return found
    if found["launched_by"]:
        comm = get_comm()
        found["size"] = comm.Get_size()
    else:
        import mpi4py

        mpi4py.rc.initialize = False  # the library version can be asked without starting MPI
        mpi4py.rc.finalize = False
    from mpi4py import MPI

    found["library"] = " ".join(
        MPI.Get_library_version().replace("\x00", "").splitlines()[0].split()
    )
    return found


def _torch_info() -> dict[str, Any]:
    try:
        import torch
        import torch.distributed as dist
    except ImportError:
        return {"version": None}
    cuda = torch.cuda.is_available()
    return {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": cuda,
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if cuda
        else [],
        "backends": [
            name
            for name, ok in (
                ("gloo", dist.is_gloo_available()),
                ("nccl", dist.is_nccl_available()),
                ("mpi", dist.is_mpi_available()),
            )
            if ok
        ],
        "default_backend": "nccl" if cuda else "gloo",
    }


def _info(args: argparse.Namespace) -> int:
    from shared_hpc.energy import probe_sensors
    from shared_hpc.hardware import cpu_count, cpu_model, cpu_sockets

    energy = probe_sensors(powercap_root=args.powercap_root)
    used = sorted(set(energy["methods"].values()))
    info = {
        "shared_hpc": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": platform.node(),
        "cpu": {"model": cpu_model(), "sockets": cpu_sockets(), "logical_cpus": cpu_count()},
        "mpi": _mpi_info(),
        "torch": _torch_info(),
        "energy": {**energy, "method": "+".join(used) if used else "none"},
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    mpi, torch_, cpu = info["mpi"], info["torch"], info["cpu"]
    print(
        f"shared-hpc {__version__}, Python {info['python']} on {info['host']} ({info['platform']})"
    )
    print(
        f"CPU       {cpu['model']}: {cpu['sockets']} socket(s), {cpu['logical_cpus']} logical CPUs"
    )
    if mpi["mpi4py"]:
        launch = f"launched by mpiexec/srun ({mpi['launched_by']}), {mpi.get('size')} ranks"
        state = launch if mpi["launched_by"] else "not launched: serial stand-in"
        print(f"MPI       mpi4py {mpi['mpi4py']}, {mpi['library']}; {state}")
    else:
        print("MPI       mpi4py not installed (pip install shared-hpc[mpi]); serial stand-in")
    if torch_["version"]:
        gpus = ", ".join(torch_["devices"]) or "no CUDA device"
        print(
            f"torch     {torch_['version']}, {gpus}; torch.distributed backends "
            f"{', '.join(torch_['backends'])} (default {torch_['default_backend']})"
        )
    else:
        print("torch     not installed (pip install shared-hpc[torch])")
    for kind, method in energy["methods"].items():
        print(f"energy    {kind}: {method} ({energy['devices'][kind]} device(s))")
    if not energy["methods"]:
        print("energy    no sensor and no estimate available")
    for line in energy["absent"]:
        print(f"energy    absent: {line}")
    for problem in energy["problems"]:
        print(f"energy    unreadable: {problem}")
    if energy["estimate"]:
        est = energy["estimate"]
        print(
            f"energy    estimate inputs (codecarbon {est['codecarbon_version']}): CPU "
            f"{est['tdp_w']:.0f} W TDP x {est['sockets']} socket(s) ({est['tdp_source']}), "
            f"RAM {est['ram_w']:.1f} W"
        )
    print(f"energy    method used by EnergyMeter: {info['energy']['method']}")
    return 0


# --- energy -- COMMAND -----------------------------------------------------------------------
def _python_target(command: list[str]) -> list[str] | None:
    """The arguments after ``python`` if ``command`` runs this interpreter's kind of Python."""
    exe = os.path.basename(command[0])
    if exe not in ("python", "python3", f"python3.{sys.version_info.minor}") and os.path.realpath(
        command[0]
    ) != os.path.realpath(sys.executable):
        return None
    rest = command[1:]
    if rest and ((rest[0] in ("-c", "-m") and len(rest) > 1) or not rest[0].startswith("-")):
        return rest
    return None


def _run_in_process(rest: list[str]) -> int:
    """Run ``python ARGS`` inside this process, so an MPI program stays part of the MPI job."""
    saved_argv, saved_path = sys.argv, list(sys.path)
    try:
        if rest[0] == "-c":
            sys.argv = ["-c", *rest[2:]]
            exec(compile(rest[1], "<string>", "exec"), {"__name__": "__main__"})
        elif rest[0] == "-m":
            sys.argv = [rest[1], *rest[2:]]
            runpy.run_module(rest[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(rest)
            sys.path.insert(0, str(Path(rest[0]).resolve().parent))
            runpy.run_path(rest[0], run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
    return 0


def _energy(args: argparse.Namespace) -> int:
    from shared_hpc.energy import EnergyMeter
    from shared_hpc.files import check_output_file, write_json_atomic
    from shared_hpc.mpi import get_comm, launched_under_mpi
    from shared_hpc.records import environment_info

    command = args.command_line[1:] if args.command_line[:1] == ["--"] else args.command_line
    if not command:
        raise UserError("no command given; usage: shared-hpc energy [--output FILE] -- COMMAND ...")
    comm = get_comm()
    python_args = _python_target(command) if launched_under_mpi() else None
    if python_args is None and shutil.which(command[0]) is None:
        raise UserError(f"command not found: {command[0]!r}")
    if python_args and python_args[0] not in ("-c", "-m") and not Path(python_args[0]).is_file():
        raise UserError(f"script not found: {python_args[0]!r}")
    check_output_file(args.output)
    with EnergyMeter(comm, sample_interval_s=args.interval) as meter:
        if python_args is not None:
            code = _run_in_process(python_args)
        else:
            try:
                code = subprocess.call(command)
            except OSError as err:  # e.g. found but not executable
                print(f"shared-hpc energy: cannot run {command[0]!r}: {err}", file=sys.stderr)
                code = 126
    codes = comm.allgather(code)
    if comm.Get_rank() == 0:
        result = {
            "schema": "shared-hpc/energy/1",
            "command": command,
            "returncode": max(codes, key=abs),
            "energy": meter.report.to_dict(),
            "environment": environment_info(comm),
        }
        write_json_atomic(args.output, result)
        print(f"shared-hpc energy: {meter.report}; wrote {args.output}", file=sys.stderr)
    return code


# --- demo / run-demos ------------------------------------------------------------------------
def _demo(args: argparse.Namespace) -> int:
    from shared_hpc.demo import run_demo

    config = config_from_args(args)
    try:
        import matplotlib  # noqa: F401
        import torch  # noqa: F401
    except ImportError as err:
        raise UserError(
            f"the demo needs torch and matplotlib: pip install shared-hpc[demo] ({err})"
        ) from None
    run_demo(args.output, config)
    return 0


def _run_demos(args: argparse.Namespace) -> int:
    from shared_hpc.demos import run_demos

    code = run_demos(args.output, args.names or None, timeout_s=args.timeout)
    print(f"summary: {Path(args.output) / 'SUMMARY.md'}")
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shared-hpc", description="MPI, torch.distributed and energy helpers for HPC training."
    )
    parser.add_argument("--version", action="version", version=f"shared-hpc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser(
        "info", help="what MPI, torch, devices and energy sensors this machine offers"
    )
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.add_argument("--powercap-root", default="/sys/class/powercap", help=argparse.SUPPRESS)
    info.set_defaults(run=_info)

    energy = sub.add_parser(
        "energy",
        help="run a command and write its energy report as JSON",
        description="Run COMMAND and measure the energy of every node it runs on. Under "
        "mpiexec/srun a `python script.py`, `python -m mod` or `python -c CODE` command runs "
        "inside each rank (so it stays part of the MPI job); other commands run as a child "
        "process of each rank.",
    )
    energy.add_argument(
        "--output", type=Path, default=Path("energy.json"), help="JSON file (default energy.json)"
    )
    energy.add_argument("--interval", type=float, default=1.0, help="sampling interval in seconds")
    energy.add_argument(
        "command_line", nargs=argparse.REMAINDER, metavar="COMMAND", help="-- COMMAND [ARGS...]"
    )
    energy.set_defaults(run=_energy)

    demo = sub.add_parser("demo", help="measure a short torch training loop and write a run record")
    demo.add_argument(
        "--output", type=Path, required=True, help="directory for results.json and demo.png"
    )
    add_config_flags(demo, DemoConfig)
    demo.set_defaults(run=_demo)

    run = sub.add_parser(
        "run-demos", help="run every installed package's demo and write SUMMARY.md"
    )
    run.add_argument("--output", type=Path, required=True, help="directory for the demos' outputs")
    run.add_argument("--timeout", type=float, default=1800, help="seconds per demo (default 1800)")
    run.add_argument("names", nargs="*", help="demos to run (default: all installed)")
    run.set_defaults(run=_run_demos)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``shared-hpc`` and ``python -m shared_hpc``; returns the exit code."""
    return run_main(_parser(), argv)
