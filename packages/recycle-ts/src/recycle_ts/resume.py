"""The training state written after every epoch, so that an interrupted run continues exactly.

A training run on a long record or a large model takes hours; a crash must not lose the
epochs already done. After each epoch the network, the optimizer, the early stopping (best
weights, patience left), the random generators and the history are written to one file,
atomically (tensors and plain values only: ``torch.load(weights_only=True)`` reads it). A
resumed run continues from the next epoch and ends with the same weights as an uninterrupted
one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recycle_ts.config import ForecastConfig
from shared_hpc import UserError, atomic_path, check_resume

__all__ = ["TrainingState"]

_FREE = ("epochs",)
"""Settings that may change on resume: more epochs continue a run that stopped at the cap."""


def _settings(config: ForecastConfig) -> dict[str, Any]:
    """The settings a resumed run must share with the saved one."""
    return json.loads(json.dumps(vars(replace(config, epochs=1)), default=str))


@dataclass(frozen=True)
class TrainingState:
    """Where a run's training state lives and what it must match to be resumed.

    Attributes:
        path: The file (written after every epoch).
        config: The run's settings (with the residual reference resolved).
        data: Fingerprint of the data.
        force: Resume even when the data differ (``--force-resume``).
        writer: Whether this process writes the file (one rank of several training alike).
    """

    path: Path
    config: ForecastConfig
    data: dict[str, Any]
    force: bool = False
    writer: bool = True

    def save(self, parts: dict[str, Any]) -> None:
        """Write ``parts`` (network, optimizer, early stopping, generators, history) with the
        settings and the data fingerprint; the file is replaced only once complete."""
        if not self.writer:
            return
        state = {**parts, "settings": _settings(self.config), "data": self.data}
        with atomic_path(self.path) as tmp:
            torch.save(state, tmp)

    def load(self, network: nn.Module) -> dict[str, Any] | None:
        """The saved state, checked against this run; ``None`` when there is none.

        Raises:
            UserError: The file is unreadable, holds other settings, other data (unless
                ``force``) or a network of another shape.
        """
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many kinds for a damaged file
            raise UserError(f"cannot read the training state {self.path}: {err}") from None
        if not isinstance(state, dict) or "settings" not in state:
            raise UserError(f"{self.path} is not a recycle-ts training state")
        saved, current = state["settings"], _settings(self.config)
        changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        if changed:
            shown = ", ".join(f"{k}={saved.get(k)!r}" for k in changed)
            raise UserError(
                f"{self.path} was trained with {shown}; resume with the same settings (only "
                f"{', '.join(_FREE)} may change) or start in a new folder"
            )
        check_resume("data", state["data"], self.data, force=self.force)
        try:
            network.load_state_dict(state["network"])
        except RuntimeError:
            raise UserError(f"{self.path} holds a network of another shape") from None
        return state
