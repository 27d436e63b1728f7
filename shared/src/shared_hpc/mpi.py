"""One communicator for every package: mpi4py's ``COMM_WORLD`` under a launcher, else a stand-in.

Packages call ``get_comm`` and use the mpi4py calls they need. When the process was not
started by ``mpiexec``/``srun`` they get a ``SerialComm``, which answers the same calls for a
single rank, so every command also runs as a plain ``python`` process, without MPI installed.
mpi4py is imported only when a launcher is detected: importing it initialises MPI, which on some
clusters is slow or not allowed on a login node. With more than one rank, an exception that
ends the script on one rank aborts the whole job, so that the others do not wait for it.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Comm",
    "RankInfo",
    "SerialComm",
    "find_mpiexec",
    "get_comm",
    "get_logger",
    "launched_under_mpi",
    "rank0_print",
    "rank_info",
    "serial_environ",
    "split_by_color",
    "split_by_node",
]

# Variables a launcher sets in each process it starts: MPICH/Intel MPI (PMI), Open MPI, PMIx.
_LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")
# Prefixes of every variable a launcher or a SLURM step hands to its processes.
_LAUNCHER_PREFIXES = ("PMI_", "PMIX_", "OMPI_", "HYDRA_", "MPI_LOCAL", "SLURM_STEP_")


@runtime_checkable
class Comm(Protocol):
    """The subset of mpi4py's ``Intracomm`` that both real and serial communicators offer."""

    @property
    def rank(self) -> int: ...

    @property
    def size(self) -> int: ...

    def Get_rank(self) -> int: ...

    def Get_size(self) -> int: ...

    def bcast(self, obj: Any, root: int = 0) -> Any: ...

    def allgather(self, sendobj: Any) -> list[Any]: ...

    def gather(self, sendobj: Any, root: int = 0) -> list[Any] | None: ...

    def allreduce(self, sendobj: Any, op: Any = None) -> Any: ...

    def Allreduce(self, sendbuf: Any, recvbuf: Any, op: Any = ...) -> None: ...

    def Bcast(self, buf: Any, root: int = 0) -> None: ...

    def barrier(self) -> None: ...

    def Split(self, color: int = 0, key: int = 0) -> Any: ...

    def Dup(self) -> Any: ...

    def Abort(self, errorcode: int = 0) -> None: ...


def launched_under_mpi(environ: dict[str, str] | None = None) -> str | None:
    """Name the launcher variable that shows this process was started by an MPI launcher.

    A SLURM step counts only with more than one task, so a batch script's own shell
    (``SLURM_PROCID=0`` with one task) stays serial.

    Args:
        environ: The environment to look at (default: ``os.environ``).

    Returns:
        The variable's name, or ``None`` for a plain process.
    """
    env = os.environ if environ is None else environ
    for name in _LAUNCHER_VARS:
        if name in env:
            return name
    if "SLURM_PROCID" in env and int(env.get("SLURM_STEP_NUM_TASKS", "1") or 1) > 1:
        return "SLURM_STEP_NUM_TASKS"
    return None


def serial_environ(environ: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment without MPI launcher variables.

    A child process started with it begins as a plain process (or as a fresh ``mpiexec``
    launch) instead of believing it is a rank of the parent's job.

    Args:
        environ: The environment to copy (default: ``os.environ``).
    """
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if not k.startswith(_LAUNCHER_PREFIXES)}


def find_mpiexec() -> str | None:
    """``mpiexec`` of this Python environment (e.g. the ``mpich`` wheel's), else on ``PATH``."""
    beside = Path(sys.executable).with_name("mpiexec")
    if beside.exists():
        return str(beside)
    return shutil.which("mpiexec")


_WORLD: Any = None


def get_comm() -> Comm:
    """Return mpi4py's ``COMM_WORLD`` when launched by mpiexec/srun, else a ``SerialComm``.

    Raises:
        RuntimeError: launched under MPI but mpi4py cannot be imported (the ranks would otherwise
            silently run as N independent copies of the program).
    """
    global _WORLD
    if _WORLD is not None:
        return _WORLD
    launcher_var = launched_under_mpi()
    if launcher_var is None:
        _WORLD = SerialComm()
        return _WORLD
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise RuntimeError(
            f"this process was started by an MPI launcher ({launcher_var} is set) but mpi4py "
            "cannot be imported; install it with `pip install shared-hpc[mpi]` (or "
            "`shared-hpc[mpich]` where no system MPI exists), or run without mpiexec/srun"
        ) from err
    _WORLD = MPI.COMM_WORLD
    if _WORLD.Get_size() > 1:
        _abort_on_uncaught_exception(_WORLD)
    return _WORLD


def _abort_on_uncaught_exception(world: Any) -> None:
    """Make an exception that ends a script on one rank end the whole job (``MPI_Abort``).

    Without this, the failed rank's interpreter exits while the others wait for it in a
    collective for ever. The command lines of the packages handle failures in ``run_main``;
    this hook covers scripts that call the libraries directly, as ``python -m mpi4py`` does.
    """
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        previous(exc_type, exc, tb)
        sys.stderr.write(
            f"rank {world.Get_rank()} of {world.Get_size()}: uncaught {exc_type.__name__}; "
            "aborting the MPI job\n"
        )
        sys.stderr.flush()
        time.sleep(0.5)  # let the launcher forward these lines before the job is torn down
        world.Abort(130 if issubclass(exc_type, KeyboardInterrupt) else 1)

    sys.excepthook = hook


def _is_in_place(buf: Any) -> bool:
    return buf is None or type(buf).__name__ == "InPlaceType"


def _array(buf: Any) -> Any:
    """The array of an mpi4py buffer specification (``arr`` or ``[arr, MPI.DOUBLE]``)."""
    import numpy as np

    if isinstance(buf, (list, tuple)):
        buf = buf[0]
    return np.asarray(buf)


class SerialComm:
    """A one-rank communicator with the mpi4py calls packages use; for runs without ``mpiexec``.

    Collectives return what a single-rank MPI run would return. Point-to-point messages to self
    would deadlock under real MPI with blocking calls, so they raise instead of pretending.
    """

    rank = 0
    size = 1

    def Get_rank(self) -> int:
        return 0

    def Get_size(self) -> int:
        return 1

    def Get_processor_name(self) -> str:
        return socket.gethostname()

    # Lower-case (pickle-based) collectives.
    def bcast(self, obj: Any, root: int = 0) -> Any:
        self._check_root(root)
        return obj

    def gather(self, sendobj: Any, root: int = 0) -> list[Any]:
        self._check_root(root)
        return [sendobj]

    def allgather(self, sendobj: Any) -> list[Any]:
        return [sendobj]

    def allreduce(self, sendobj: Any, op: Any = None) -> Any:
        return sendobj

    def reduce(self, sendobj: Any, op: Any = None, root: int = 0) -> Any:
        self._check_root(root)
        return sendobj

    def scatter(self, sendobj: Any, root: int = 0) -> Any:
        self._check_root(root)
        if sendobj is None or len(sendobj) != 1:
            raise ValueError("scatter on one rank needs a sequence of exactly one item")
        return sendobj[0]

    def alltoall(self, sendobj: Any) -> list[Any]:
        if len(sendobj) != 1:
            raise ValueError("alltoall on one rank needs a sequence of exactly one item")
        return list(sendobj)

    def barrier(self) -> None:
        return None

    Barrier = barrier

    # Upper-case (buffer) collectives: copy send into receive, as one rank would.
    def Allreduce(self, sendbuf: Any, recvbuf: Any, op: Any = None) -> None:
        if not _is_in_place(sendbuf):
            _array(recvbuf)[...] = _array(sendbuf)

    def Reduce(self, sendbuf: Any, recvbuf: Any, op: Any = None, root: int = 0) -> None:
        self._check_root(root)
        self.Allreduce(sendbuf, recvbuf)

    def Bcast(self, buf: Any, root: int = 0) -> None:
        self._check_root(root)

    def Allgather(self, sendbuf: Any, recvbuf: Any) -> None:
        if not _is_in_place(sendbuf):
            recv = _array(recvbuf)
            recv[...] = _array(sendbuf).reshape(recv.shape)

    def Gather(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> None:
        self._check_root(root)
        self.Allgather(sendbuf, recvbuf)

    # Communicator management.
    def Split(self, color: int = 0, key: int = 0) -> SerialComm:
        return SerialComm()

    def Split_type(self, split_type: int = 0, key: int = 0, info: Any = None) -> SerialComm:
        return SerialComm()

    def Dup(self) -> SerialComm:
        return SerialComm()

    Clone = Dup

    def Free(self) -> None:
        return None

    def Abort(self, errorcode: int = 1) -> None:
        """End the process at once, like ``MPI_Abort`` (no cleanup handlers run)."""
        sys.stderr.flush()
        os._exit(errorcode)

    def Iprobe(self, source: int = -1, tag: int = -1, status: Any = None) -> bool:
        return False

    # Point-to-point: a single rank has nobody to talk to.
    def _no_peer(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            "point-to-point messages need a second rank; this is a serial run "
            "(start it with mpiexec -n N to use send/recv)"
        )

    send = recv = isend = irecv = sendrecv = Send = Recv = Isend = Irecv = _no_peer

    @staticmethod
    def _check_root(root: int) -> None:
        if root != 0:
            raise ValueError(f"root={root} does not exist in a one-rank communicator")

    def __repr__(self) -> str:
        return "SerialComm(rank=0, size=1)"


def _comm(comm: Comm | None) -> Comm:
    return get_comm() if comm is None else comm


def _is_mpi4py(comm: Any) -> bool:
    return type(comm).__module__.startswith("mpi4py")


def _processor_name(comm: Any) -> str:
    """The node name MPI reports (mpi4py has it as a module function, the stand-in as a method)."""
    if _is_mpi4py(comm):
        from mpi4py import MPI

        return MPI.Get_processor_name()
    if hasattr(comm, "Get_processor_name"):
        return comm.Get_processor_name()
    return socket.gethostname()


@dataclass(frozen=True)
class RankInfo:
    """Where this process sits: its rank, its rank on the node, and the node's index."""

    rank: int
    size: int
    local_rank: int
    local_size: int
    node_index: int
    num_nodes: int
    hostname: str


def rank_info(comm: Comm | None = None) -> RankInfo:
    """Describe this rank's place in ``comm`` (collective: every rank must call it).

    Nodes are told apart by processor name and numbered in sorted name order, so the numbering
    is the same on every rank; local ranks follow the global rank order within a node.

    Args:
        comm: The communicator (default: ``get_comm()``).
    """
    comm = _comm(comm)
    host = _processor_name(comm)
    hosts = comm.allgather(host)
    nodes = sorted(set(hosts))
    same_node = [r for r, h in enumerate(hosts) if h == host]
    return RankInfo(
        rank=comm.Get_rank(),
        size=comm.Get_size(),
        local_rank=same_node.index(comm.Get_rank()),
        local_size=len(same_node),
        node_index=nodes.index(host),
        num_nodes=len(nodes),
        hostname=host,
    )


def split_by_color(comm: Comm, color: int | None, key: int | None = None) -> Comm | None:
    """Split ``comm`` into sub-communicators of the ranks that pass the same ``color``.

    Collective: every rank of ``comm`` calls it.

    Args:
        comm: The communicator to split.
        color: This rank's part, a non-negative int; ``None`` joins no part
            (``MPI_UNDEFINED``) and returns ``None``.
        key: Orders the ranks inside each part (default: their rank in ``comm``).
    """
    if color is not None and (not isinstance(color, int) or color < 0):
        raise ValueError(f"color must be a non-negative int or None, got {color!r}")
    key = comm.Get_rank() if key is None else key
    if color is not None:
        return comm.Split(color, key)
    if isinstance(comm, SerialComm):
        return None
    from mpi4py import MPI

    comm.Split(MPI.UNDEFINED, key)  # returns COMM_NULL; the part exists for the others
    return None


def split_by_node(comm: Comm | None = None) -> Comm:
    """One sub-communicator per node (shared-memory domain) of ``comm``. Collective.

    Args:
        comm: The communicator to split (default: ``get_comm()``).
    """
    comm = _comm(comm)
    if isinstance(comm, SerialComm):
        return SerialComm()
    if _is_mpi4py(comm):
        from mpi4py import MPI

        return comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
    return split_by_color(comm, rank_info(comm).node_index)


def rank0_print(*args: Any, comm: Comm | None = None, **kwargs: Any) -> None:
    """``print`` on rank 0 of ``comm`` only (flushed, so output under mpiexec keeps its order).

    Args:
        *args: What to print.
        comm: The communicator whose rank 0 prints (default: ``get_comm()``).
        **kwargs: Passed to ``print``.
    """
    if _comm(comm).Get_rank() == 0:
        kwargs.setdefault("flush", True)
        print(*args, **kwargs)


class _RankFilter(logging.Filter):
    def __init__(self, rank: int, size: int) -> None:
        super().__init__()
        self.rank_tag = f"[rank {rank}/{size}]"

    def filter(self, record: logging.LogRecord) -> bool:
        record.rank_tag = self.rank_tag
        return True


def get_logger(name: str, comm: Comm | None = None) -> logging.Logger:
    """A logger whose lines carry ``[rank r/size]``; ranks other than 0 log warnings and up only.

    The handler is added once per logger name; calling again returns the same logger.

    Args:
        name: The logger's name (usually the package's).
        comm: The communicator that gives the rank (default: ``get_comm()``).
    """
    comm = _comm(comm)
    rank, size = comm.Get_rank(), comm.Get_size()
    logger = logging.getLogger(name)
    if not any(getattr(h, "_shared_hpc", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler._shared_hpc = True  # type: ignore[attr-defined]
        handler.addFilter(_RankFilter(rank, size))
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(rank_tag)s %(levelname)s %(name)s: %(message)s")
        )
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    return logger
