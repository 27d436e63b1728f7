"""shared-hpc: what every package of the Helmholtz AI energy group shares.

- MPI: ``get_comm`` (mpi4py's ``COMM_WORLD`` under mpiexec/srun, a serial stand-in otherwise),
  ``rank_info``, communicator splitting, rank-0 printing and logging.
- ``torch.distributed`` from MPI, torchrun or SLURM: ``torch_distributed``; threads per rank.
- Energy: ``EnergyMeter`` (RAPL, NVML, codecarbon estimate) and its ``EnergyReport``.
- Running a command: ``run_main`` and ``UserError`` (one line and exit code 2 for bad input),
  configs from TOML and flags (``load_config``, ``add_config_flags``), the ``Recorder`` that
  measures a run and writes its ``RunRecord``, atomic file writes (``atomic_path``).

torch, mpi4py and codecarbon are imported only when used, so ``import shared_hpc`` stays fast.
"""

from shared_hpc.__about__ import __version__
from shared_hpc.command import run_main
from shared_hpc.config import (
    ConfigError,
    add_config_flags,
    config_from_args,
    config_to_dict,
    load_config,
)
from shared_hpc.demos import run_demos
from shared_hpc.distributed import DistInfo, set_torch_threads, torch_distributed
from shared_hpc.energy import EnergyMeter, EnergyReport, EnergyWarning
from shared_hpc.errors import UserError
from shared_hpc.files import (
    atomic_path,
    check_output_file,
    prepare_output_dir,
    write_json_atomic,
    write_text_atomic,
)
from shared_hpc.mpi import (
    Comm,
    RankInfo,
    SerialComm,
    find_mpiexec,
    get_comm,
    get_logger,
    rank0_print,
    rank_info,
    serial_environ,
    split_by_color,
    split_by_node,
)
from shared_hpc.recorder import Recorder
from shared_hpc.records import Headline, RunRecord, environment_info

__all__ = [
    "Comm",
    "ConfigError",
    "DistInfo",
    "EnergyMeter",
    "EnergyReport",
    "EnergyWarning",
    "Headline",
    "RankInfo",
    "Recorder",
    "RunRecord",
    "SerialComm",
    "UserError",
    "__version__",
    "add_config_flags",
    "atomic_path",
    "check_output_file",
    "config_from_args",
    "config_to_dict",
    "environment_info",
    "find_mpiexec",
    "get_comm",
    "get_logger",
    "load_config",
    "prepare_output_dir",
    "rank0_print",
    "rank_info",
    "run_demos",
    "run_main",
    "serial_environ",
    "set_torch_threads",
    "split_by_color",
    "split_by_node",
    "torch_distributed",
    "write_json_atomic",
    "write_text_atomic",
]
