"""What this node has: CPU model and sockets, read cheaply from the OS (no subprocess on Linux)."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path

__all__ = ["cpu_count", "cpu_model", "cpu_sockets"]


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
