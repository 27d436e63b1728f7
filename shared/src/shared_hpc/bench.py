"""What every package's benchmark scripts share: the machine line, tables, generated blocks.

Benchmark scripts write the figures of BENCHMARKS.md and of a README themselves, so that no
figure is ever typed by hand. Each table names the machine it was measured on
(``machine_line``), and a script replaces only the block it owns between
``<!-- name:start -->`` and ``<!-- name:end -->`` (``replace_marked_block``), keeping the prose
around it.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared_hpc.files import write_text_atomic
from shared_hpc.records import environment_info

__all__ = ["machine_line", "markdown_table", "replace_marked_block"]


def machine_line() -> str:
    """One line naming the machine: CPU, cores, GPU, OS, Python, torch, MPI, load average.

    The MPI library is named only if this process has started MPI; the load average is the
    one-minute average now, so a busy machine shows in every report.
    """
    info = environment_info()
    parts = [f"{info['cpu_model']}, {info['cpu_count']} logical CPUs"]
    parts.append(info["gpu_model"] or "no GPU")
    parts.append(f"{platform.system()} {platform.release()}, Python {info['python']}")
    if info["torch"]:
        parts.append(f"torch {info['torch']}")
    if info["mpi_library"]:
        parts.append(info["mpi_library"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return "; ".join(parts) + f"; load average {load:.2f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table of ``rows`` under ``header`` (cells as ``str``, pipes escaped).

    Args:
        header: The column titles.
        rows: The cells, row by row.
    """

    def line(cells: Sequence[Any]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *map(line, rows)]) + "\n"


def replace_marked_block(
    path: str | os.PathLike[str], name: str, text: str, *, append: bool = False
) -> Path:
    """Replace what stands between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path``.

    Written atomically.

    Args:
        path: The Markdown file.
        name: The block's name in its markers.
        text: The block's new content.
        append: Add the block at the end of a file that lacks it (or create the file) instead
            of raising.

    Raises:
        ValueError: The markers are missing and ``append`` is false.
    """
    path = Path(path)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text.strip()}\n{end}"
    old = path.read_text(encoding="utf-8") if path.exists() or not append else ""
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), flags=re.S)
    if pattern.search(old):
        new = pattern.sub(lambda _: block, old, count=1)
    elif append:
        new = (old.rstrip("\n") + "\n\n" if old.strip() else "") + block + "\n"
    else:
        raise ValueError(f"{path} lacks the markers {start} ... {end}")
    return write_text_atomic(path, new)
