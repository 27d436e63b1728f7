"""Checkpoints of a training run: written atomically, read with ``weights_only`` and checked.

A checkpoint is a dict saved with ``torch.save``; its ``format`` key marks it as petnet's, so a
foreign or truncated file is refused with one clear line instead of a traceback from torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from shared_hpc import UserError, atomic_path

FORMAT = "petnet-checkpoint/1"


class CheckpointError(UserError):
    """A file that is not a readable PETNet checkpoint, or one that does not fit this run."""


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Save ``payload`` with its format mark; a crash leaves the old file or the new one.

    Args:
        path: Where the checkpoint goes (its folder is created).
        payload: What to store: tensors, state dicts and plain values.

    Returns:
        ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)
    return path


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint and check that it is a complete PETNet checkpoint.

    Args:
        path: The checkpoint file.
        map_location: Where its tensors are loaded.

    Returns:
        The stored dict.

    Raises:
        CheckpointError: The file does not exist, is corrupt, foreign or incomplete.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for truncated or foreign files
        raise CheckpointError(
            f"{path} is not a readable PETNet checkpoint ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no details'})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(
            f"{path} is not a PETNet checkpoint (format {found!r}, expected {FORMAT!r})"
        )
    missing = {"scanner", "model", "encoding", "state_dict"} - set(payload)
    if missing:
        raise CheckpointError(f"{path} lacks {sorted(missing)}; it is incomplete")
    return payload
