"""Fingerprints of what a checkpoint was made with, so that a resume with something else is refused.

Resuming a search with another loss function, or a training with another data file, mixes two
experiments without a word. A checkpoint therefore stores a fingerprint of its inputs: for a
file its size and a SHA-256 of its content (of its first and last 8 MiB beyond 64 MiB, so that
terabyte archives cost milliseconds), for anything else its name. On resume the package compares
the stored and the current fingerprint with ``check_resume``: a mismatch is refused in one line
naming both, unless the user asks to force it. The path is kept only to name the file: a data
file copied to scratch is the same data.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared_hpc.errors import UserError

__all__ = ["check_resume", "file_fingerprint"]

_WHOLE_LIMIT = 64 * 2**20
_SAMPLE = 8 * 2**20
_BLOCK = 2**20


def _sha256(path: Path, size: int) -> tuple[str, bool]:
    """SHA-256 of the content, or of its head, tail and size for a large file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if size <= _WHOLE_LIMIT:
            while block := handle.read(_BLOCK):
                digest.update(block)
            return digest.hexdigest(), False
        digest.update(handle.read(_SAMPLE))
        handle.seek(size - _SAMPLE)
        digest.update(handle.read(_SAMPLE))
        digest.update(str(size).encode())
        return digest.hexdigest(), True


def file_fingerprint(path: str | os.PathLike[str], **extra: Any) -> dict[str, Any]:
    """The identity of a data or source file, as JSON-ready values.

    Args:
        path: The file.
        **extra: More that identifies the input, e.g. ``function="loss"`` for ``loss.py:loss``.

    Returns:
        ``{"path", "size", "sha256", "sampled", **extra}``; ``sampled`` says whether the hash
        covers only the head and tail of a large file.
    """
    path = Path(path)
    size = path.stat().st_size
    sha256, sampled = _sha256(path, size)
    return {
        "path": str(path.resolve()),
        "size": size,
        "sha256": sha256,
        "sampled": sampled,
        **extra,
    }


def _identity(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fingerprint.items() if k != "path"}


def _describe(fingerprint: Mapping[str, Any]) -> str:
    name = fingerprint.get("name") or fingerprint.get("path") or "?"
    parts = [str(name)]
    if "function" in fingerprint:
        parts[0] += f":{fingerprint['function']}"
    if "sha256" in fingerprint:
        parts.append(f"(sha256 {str(fingerprint['sha256'])[:12]}, {fingerprint.get('size')} bytes)")
    return " ".join(parts)


def check_resume(
    what: str,
    stored: Mapping[str, Any] | None,
    current: Mapping[str, Any],
    *,
    force: bool = False,
    force_flag: str = "--force-resume",
) -> None:
    """Refuse to resume when the checkpoint was made with another ``what`` (data, loss ...).

    Args:
        what: What the fingerprints identify, for the message (``"data"``, ``"loss"``).
        stored: The checkpoint's fingerprint; ``None`` for a checkpoint of an older version,
            which carries none and is accepted.
        current: This run's fingerprint.
        force: Resume even when they differ (the user said so).
        force_flag: The option that sets ``force``, named in the message.

    Raises:
        UserError: They differ and ``force`` is false.
    """
    if stored is None or force or _identity(stored) == _identity(current):
        return
    raise UserError(
        f"the checkpoint was made with the {what} {_describe(stored)}, this run has "
        f"{_describe(current)}; resume with the same {what}, start in a new folder, or pass "
        f"{force_flag} to mix them"
    )
