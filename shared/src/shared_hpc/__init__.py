"""shared-hpc: what every package of the Helmholtz AI energy group shares.

- MPI: ``get_comm`` (mpi4py's ``COMM_WORLD`` under mpiexec/srun, a serial stand-in otherwise),
  ``rank_info``, communicator splitting, rank-0 printing and logging.
- ``torch.distributed`` from MPI, torchrun or SLURM: ``torch_distributed``; threads per rank.
- Energy: ``EnergyMeter`` (RAPL, NVML, codecarbon estimate) and its ``EnergyReport``.
- Running a command: ``run_main`` and ``UserError`` (one line and exit code 2 for bad input),
  configs from TOML and flags (``load_config``, ``add_config_flags``), the ``Recorder`` that
  measures a run and writes its ``RunRecord``, atomic file writes (``atomic_path``).
- Reliability: a failing rank ends the whole MPI job (``run_main``), output paths checked before
  work (``prepare_output_dir``), one run per folder (``lock_folder``), resume only with the same
  inputs (``file_fingerprint``, ``check_resume``), sizes that fit (``require_memory``),
  devices that exist (``resolve_device``), data sets shipped as pickles loaded without running
  code (``load_array_pickle``).

Every name is imported when first used (and torch, mpi4py and codecarbon only when a function
needs them), so ``import shared_hpc``, or a package's ``from shared_hpc import UserError``,
costs almost nothing.
"""

from __future__ import annotations

from shared_hpc.__about__ import __version__
from shared_hpc.lazy import lazy_exports

# name -> the module that defines it
_HOMES = {
    "run_main": "shared_hpc.command",
    "ConfigError": "shared_hpc.config",
    "add_config_flags": "shared_hpc.config",
    "config_from_args": "shared_hpc.config",
    "config_to_dict": "shared_hpc.config",
    "load_config": "shared_hpc.config",
    "read_toml": "shared_hpc.config",
    "run_demos": "shared_hpc.demos",
    "DistInfo": "shared_hpc.distributed",
    "resolve_device": "shared_hpc.distributed",
    "set_torch_threads": "shared_hpc.distributed",
    "torch_distributed": "shared_hpc.distributed",
    "EnergyMeter": "shared_hpc.energy",
    "EnergyReport": "shared_hpc.energy",
    "EnergyWarning": "shared_hpc.energy",
    "UserError": "shared_hpc.errors",
    "check_resume": "shared_hpc.fingerprint",
    "file_fingerprint": "shared_hpc.fingerprint",
    "available_memory": "shared_hpc.hardware",
    "require_memory": "shared_hpc.hardware",
    "atomic_path": "shared_hpc.files",
    "check_output_file": "shared_hpc.files",
    "lock_folder": "shared_hpc.files",
    "prepare_output_dir": "shared_hpc.files",
    "write_json_atomic": "shared_hpc.files",
    "write_text_atomic": "shared_hpc.files",
    "Comm": "shared_hpc.mpi",
    "RankInfo": "shared_hpc.mpi",
    "SerialComm": "shared_hpc.mpi",
    "find_mpiexec": "shared_hpc.mpi",
    "get_comm": "shared_hpc.mpi",
    "get_logger": "shared_hpc.mpi",
    "rank0_print": "shared_hpc.mpi",
    "rank_info": "shared_hpc.mpi",
    "serial_environ": "shared_hpc.mpi",
    "split_by_color": "shared_hpc.mpi",
    "split_by_node": "shared_hpc.mpi",
    "Recorder": "shared_hpc.recorder",
    "Headline": "shared_hpc.records",
    "RunRecord": "shared_hpc.records",
    "environment_info": "shared_hpc.records",
    "load_array_pickle": "shared_hpc.safe_pickle",
}

__all__ = ["__version__", *sorted(_HOMES)]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
