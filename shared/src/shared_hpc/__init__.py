"""shared-hpc: what every package of the Helmholtz AI energy group shares.

- MPI: :func:`get_comm` (mpi4py's ``COMM_WORLD`` under mpiexec/srun, a serial stand-in
  otherwise), :func:`rank_info`, communicator splitting, rank-0 printing and logging, seeding.
- ``torch.distributed`` from MPI, torchrun or SLURM: :func:`torch_distributed`.
- Energy: :class:`EnergyMeter` (RAPL, NVML, codecarbon estimate) and its :class:`EnergyReport`.
- Results: :class:`RunRecord`, atomic JSON writes, :func:`load_config` for dataclass configs.

torch, mpi4py and codecarbon are imported only when used, so ``import shared_hpc`` stays fast.
"""

from shared_hpc.__about__ import __version__
from shared_hpc.config import config_to_dict, load_config
from shared_hpc.demos import run_demos
from shared_hpc.distributed import DistInfo, init_torch_distributed, torch_distributed
from shared_hpc.energy import EnergyMeter, EnergyReport, EnergyWarning
from shared_hpc.mpi import (
    Comm,
    RankInfo,
    SerialComm,
    get_comm,
    get_logger,
    rank0_print,
    rank_info,
    seed_everything,
    split_by_color,
    split_by_node,
)
from shared_hpc.records import (
    RunRecord,
    environment_info,
    replace_marked_block,
    write_json_atomic,
    write_text_atomic,
)

__all__ = [
    "Comm",
    "DistInfo",
    "EnergyMeter",
    "EnergyReport",
    "EnergyWarning",
    "RankInfo",
    "RunRecord",
    "SerialComm",
    "__version__",
    "config_to_dict",
    "environment_info",
    "get_comm",
    "get_logger",
    "init_torch_distributed",
    "load_config",
    "rank0_print",
    "rank_info",
    "replace_marked_block",
    "run_demos",
    "seed_everything",
    "split_by_color",
    "split_by_node",
    "torch_distributed",
    "write_json_atomic",
    "write_text_atomic",
]
