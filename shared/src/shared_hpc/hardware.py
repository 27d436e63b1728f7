"""What this node has: CPU model, sockets and free memory, read cheaply from the OS."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path

from shared_hpc.errors import UserError

__all__ = ["available_memory", "cpu_count", "cpu_model", "cpu_sockets", "require_memory"]


@functools.cache
def cpu_model() -> str:
    """The CPU's marketing name, e.g. ``Intel(R) Xeon(R) Platinum 8368 CPU @ 2.40GHz``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            )
            return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or "unknown"


@functools.cache
def cpu_sockets() -> int:
    """Number of CPU packages (sockets); 1 where the OS does not say."""
    ids = set()
    for path in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology/physical_package_id"):
        try:
            ids.add(path.read_text().strip())
        except OSError:
            continue
    return max(len(ids), 1)


def cpu_count() -> int:
    """Logical CPUs of the node (not only those this process may use)."""
    return os.cpu_count() or 1


def _cgroup_memory_left() -> int | None:
    """Bytes this process's cgroup (v2) may still allocate, where a limit is set (SLURM jobs)."""
    try:
        group = Path("/proc/self/cgroup").read_text().split("::", 1)[1].strip()
        folder = Path("/sys/fs/cgroup") / group.lstrip("/")
        limit = (folder / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((folder / "memory.current").read_text())
    except (OSError, IndexError, ValueError):
        return None


def available_memory() -> int:
    """Bytes of memory this process can still use: the node's available memory, or less where
    a cgroup (a SLURM job's allocation) limits it."""
    import psutil

    free = psutil.virtual_memory().available
    left = _cgroup_memory_left()
    return free if left is None else max(0, min(free, left))


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.1f} GiB"


def require_memory(nbytes: float, what: str) -> None:
    """Refuse, before any work, a size that cannot fit in memory.

    A run that allocates more than the node has either dies in ``MemoryError`` after its
    setup or makes the node swap until it is killed; an estimate up front costs one line.

    Args:
        nbytes: The estimated need of this process in bytes.
        what: What needs it, e.g. ``"a 100000 x 200000 grid"``, for the message.

    Raises:
        UserError: ``nbytes`` exceeds ``available_memory()``.
    """
    free = available_memory()
    if nbytes > free:
        raise UserError(
            f"{what} needs about {_gib(nbytes)} of memory, but only {_gib(free)} is available "
            "here; choose smaller sizes"
        )
