"""Set up ``torch.distributed`` from whatever started the processes: torchrun, MPI or SLURM.

Under ``mpiexec`` no launcher hands out a rendezvous address, so rank 0 of the communicator
picks a free TCP port and broadcasts ``(address, port)``; every rank then joins with
``tcp://address:port``. This needs no shared file system and no fixed port, and it works for a
sub-communicator too (each part gets its own process group).
"""

from __future__ import annotations

import datetime
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from shared_hpc.errors import UserError
from shared_hpc.mpi import Comm, SerialComm, get_comm, rank_info

if TYPE_CHECKING:
    import torch

__all__ = [
    "DistInfo",
    "free_port",
    "init_torch_distributed",
    "resolve_device",
    "set_torch_threads",
    "torch_distributed",
]

Source = Literal["torchrun", "mpi", "slurm", "single"]
_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistInfo:
    """The process group this rank joined and where its tensors should live.

    ``group`` is false for a single process that was not asked for a process group: there is
    nobody to talk to, so ``torch.distributed`` is not initialised and DDP is not needed.
    """

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device
    master_addr: str
    master_port: int
    source: Source
    group: bool = True


def free_port() -> int:
    """A TCP port that is free on this host right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def _routable_address() -> str:
    """This host's address as other nodes can reach it: its IP, else its name."""
    host = socket.gethostname()
    try:
        address = socket.gethostbyname(host)
    except OSError:
        return host
    return host if address.startswith("127.") else address


def _first_slurm_host(nodelist: str) -> str:
    """First host of a SLURM node list such as ``gpu[007-010,012],cpu01`` (here ``gpu007``)."""
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if match is None:
        raise ValueError(f"cannot read SLURM node list {nodelist!r}")
    prefix, ranges = match.groups()
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def _rendezvous(comm: Comm | None) -> tuple[int, int, int, str, int, Source]:
    """(rank, world size, local rank, address, port, source) from the first launcher found."""
    if all(name in os.environ for name in _TORCHRUN_VARS):
        local_rank = _env_int("LOCAL_RANK") if "LOCAL_RANK" in os.environ else 0
        return (
            _env_int("RANK"),
            _env_int("WORLD_SIZE"),
            local_rank,
            os.environ["MASTER_ADDR"],
            _env_int("MASTER_PORT"),
            "torchrun",
        )
    explicit = comm is not None
    if comm is None:
        try:
            comm = get_comm()
        except RuntimeError:  # srun without mpi4py: the SLURM variables below still work
            comm = SerialComm()
    if explicit or comm.Get_size() > 1:
        info = rank_info(comm)
        endpoint = None
        if comm.Get_rank() == 0:
            if info.num_nodes == 1:
                host = "127.0.0.1"
            else:
                host = os.environ.get("MASTER_ADDR") or _routable_address()
            endpoint = (host, free_port())
        addr, port = comm.bcast(endpoint, root=0)
        source: Source = "single" if isinstance(comm, SerialComm) else "mpi"
        return info.rank, info.size, info.local_rank, addr, port, source
    if "SLURM_PROCID" in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        # No communication is possible yet, so every task derives the same address and port.
        job = int(os.environ.get("SLURM_JOB_ID", "0")) + int(os.environ.get("SLURM_STEP_ID", "0"))
        addr = os.environ.get("MASTER_ADDR") or _first_slurm_host(
            os.environ.get("SLURM_STEP_NODELIST") or os.environ["SLURM_JOB_NODELIST"]
        )
        port = _env_int("MASTER_PORT") if "MASTER_PORT" in os.environ else 20000 + job % 20000
        return (
            _env_int("SLURM_PROCID"),
            _env_int("SLURM_NTASKS"),
            _env_int("SLURM_LOCALID") if "SLURM_LOCALID" in os.environ else 0,
            addr,
            port,
            "slurm",
        )
    return 0, 1, 0, "127.0.0.1", free_port(), "single"


def init_torch_distributed(
    comm: Comm | None = None,
    backend: str | None = None,
    timeout_s: float = 300,
    *,
    single_process_group: bool = False,
) -> DistInfo:
    """Initialise the default ``torch.distributed`` process group for this process.

    Order of precedence: torchrun variables (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
    ``MASTER_PORT``); an MPI communicator (``comm`` if given, else ``COMM_WORLD`` with more than
    one rank), whose rank 0 broadcasts a free port; SLURM variables (``SLURM_PROCID``,
    ``SLURM_NTASKS``); else a single process, which gets a process group only when
    ``single_process_group`` asks for one.

    Args:
        comm: Communicator whose ranks form the group (collective over it).
        backend: ``"nccl"`` when CUDA is available, else ``"gloo"`` unless given.
        timeout_s: How long collectives may wait before torch raises.
        single_process_group: Create a one-rank group for a single process too (for code that
            calls ``torch.distributed`` or DDP without checking the world size).

    Raises:
        RuntimeError: A process group already exists in this process.
        ValueError: ``backend="nccl"`` without CUDA, or a non-positive timeout.
    """
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        raise RuntimeError(
            "torch.distributed is already initialised in this process; "
            "destroy the old process group first (one group per process)"
        )
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    cuda = torch.cuda.is_available()
    backend = backend or ("nccl" if cuda else "gloo")
    if backend == "nccl" and not cuda:
        raise ValueError("backend 'nccl' needs a CUDA device; use 'gloo' on CPU")
    rank, world_size, local_rank, addr, port, source = _rendezvous(comm)
    if cuda:
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    group = source != "single" or single_process_group
    if group:
        dist.init_process_group(
            backend=backend,
            init_method=f"tcp://{addr}:{port}",
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    return DistInfo(rank, world_size, local_rank, backend, device, addr, port, source, group)


@contextmanager
def torch_distributed(
    comm: Comm | None = None,
    backend: str | None = None,
    timeout_s: float = 300,
    *,
    single_process_group: bool = False,
) -> Iterator[DistInfo]:
    """Context manager around ``init_torch_distributed`` that always destroys the group.

    The group is torn down also when the body raises, so a failed run does not leave sockets
    open or block the next ``init_process_group`` in the same process (e.g. in tests); only an
    NCCL group of several ranks is left to the job's abort after a failure, because its
    teardown can wait for ranks that sit in a collective. The arguments are those of
    ``init_torch_distributed``.
    """
    info = init_torch_distributed(
        comm, backend=backend, timeout_s=timeout_s, single_process_group=single_process_group
    )
    failed = False
    try:
        yield info
    except BaseException:
        failed = True
        raise
    finally:
        import torch.distributed as dist

        # After a failure other ranks may sit in a collective; NCCL's teardown can wait for
        # them, so it is left to the abort that follows (gloo's does not wait).
        if dist.is_initialized() and not (
            failed and info.world_size > 1 and info.backend == "nccl"
        ):
            dist.destroy_process_group()


def set_torch_threads(comm: Comm | None = None, threads: int | None = None) -> int:
    """Set torch's CPU threads of this rank: ``threads``, ``OMP_NUM_THREADS`` where the user or
    the job script set it, or else its share of the node's cores.

    OpenMP threads of ranks that share a node spin against each other (ten times slower on a
    busy two-core machine), so by default the ranks of a node split its cores; a machine
    shared with other jobs is told so by ``OMP_NUM_THREADS``, as every OpenMP program is.
    Collective over ``comm`` when ``threads`` is not given. Returns the number set.

    Raises:
        UserError: ``threads`` or ``OMP_NUM_THREADS`` is not a whole number >= 1.
    """
    import torch

    if threads is None:
        comm = get_comm() if comm is None else comm
        info = rank_info(comm)
        affinity = getattr(os, "sched_getaffinity", None)
        cores = len(affinity(0)) if affinity else (os.cpu_count() or 1)
        threads = max(1, cores // max(1, info.local_size))
        given = os.environ.get("OMP_NUM_THREADS", "").strip()
        if given:
            if not given.isdigit():
                raise UserError(f"OMP_NUM_THREADS must be a whole number >= 1, got {given!r}")
            threads = int(given)
    if threads < 1:
        raise UserError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    return threads


def resolve_device(name: str) -> torch.device:
    """The torch device a user named (``cpu``, ``cuda``, ``cuda:1``, ``mps``), checked.

    Raises:
        UserError: the name is not a device, or this machine does not have it (rather than a
            traceback from deep inside the first tensor moved there).
    """
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UserError(f"unknown device {name!r}; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {name!r}: no CUDA device is visible on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(
                f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {name!r}: Apple's MPS backend is not available here")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"device {name!r} is not supported; use cpu, cuda, cuda:N or mps")
    return device
