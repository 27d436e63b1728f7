"""Ensembles and fused models on disk: torch checkpoints of tensors, strings and numbers only.

Each file names the architecture (so the model is rebuilt from ``ModelSpec``, never unpickled),
the data it was trained on (name, split and a SHA-256 of the arrays, so that fusing or
fine-tuning on other data is refused) and the weights. Files are written atomically and read
with ``weights_only=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from neuron_transplantation.data import Split, load_split
from neuron_transplantation.models import ModelSpec, build_model
from shared_hpc import UserError, atomic_path

__all__ = [
    "CheckpointError",
    "DataInfo",
    "load_ensemble",
    "load_model",
    "save_ensemble",
    "save_model",
]

ENSEMBLE = "neuron-transplantation/ensemble/1"
MODEL = "neuron-transplantation/model/1"


class CheckpointError(UserError):
    """A checkpoint is missing, unreadable or of another kind."""


@dataclass(frozen=True)
class DataInfo:
    """Which data a checkpoint's models were trained on.

    Attributes:
        dataset: The dataset's name.
        validation: Held-out share of its training part.
        seed: Seed of the split.
        digest: SHA-256 of the split's arrays.
        source: Folder or file the data were read from (empty for digits and mnist1d).
        label: The CSV's label column.
    """

    dataset: str
    validation: float
    seed: int
    digest: str
    source: str = ""
    label: str = "label"

    @classmethod
    def of(
        cls, split: Split, validation: float, seed: int, source: str = "", label: str = "label"
    ) -> DataInfo:
        """The description of ``split``, made with ``validation`` and ``seed`` from ``source``."""
        where = str(Path(source).resolve()) if source else ""
        return cls(split.name, validation, seed, split.digest, where, label)

    def load(self) -> Split:
        """The split again; refused if its arrays differ from those the models saw.

        Raises:
            CheckpointError: The data now differ (e.g. another version of the generator).
        """
        split = load_split(self.dataset, self.validation, self.seed, self.source, self.label)
        if split.digest != self.digest:
            raise CheckpointError(
                f"the {self.dataset} data differ from those the checkpoint was trained on "
                f"(SHA-256 {split.digest[:12]} instead of {self.digest[:12]})"
            )
        return split


def _save(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _load(path: Path, kind: str) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"{path} is not a readable checkpoint: {str(err).splitlines()[0]}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != kind:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path} is not a {kind.split('/')[1]} checkpoint (found {found})")
    return payload


def _build(path: Path, spec: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    model = build_model(ModelSpec(**spec))
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit {spec['arch']}: {err}") from None
    return model.eval()


def save_ensemble(
    path: Path,
    spec: ModelSpec,
    models: list[nn.Module],
    data: DataInfo,
    seeds: list[int],
    validation: list[float],
) -> None:
    """Write an ensemble's members with their architecture, data and validation accuracy."""
    _save(
        path,
        {
            "format": ENSEMBLE,
            "spec": spec.to_dict(),
            "data": vars(data),
            "seeds": list(seeds),
            "validation": list(validation),
            "members": [m.state_dict() for m in models],
        },
    )


def load_ensemble(path: Path) -> tuple[ModelSpec, list[nn.Module], DataInfo, list[float]]:
    """Read an ensemble: its architecture, members, data and members' validation accuracy.

    Raises:
        CheckpointError: Missing, unreadable, of another kind, or weights that do not fit.
    """
    payload = _load(path, ENSEMBLE)
    models = [_build(path, payload["spec"], state) for state in payload["members"]]
    return ModelSpec(**payload["spec"]), models, DataInfo(**payload["data"]), payload["validation"]


def save_model(
    path: Path, spec: ModelSpec, model: nn.Module, data: DataInfo, origin: dict[str, Any]
) -> None:
    """Write one (fused or fine-tuned) model; ``origin`` says how it was made."""
    _save(
        path,
        {
            "format": MODEL,
            "spec": spec.to_dict(),
            "data": vars(data),
            "origin": origin,
            "state": model.state_dict(),
        },
    )


def load_model(path: Path) -> tuple[ModelSpec, nn.Module, DataInfo, dict[str, Any]]:
    """Read one model: its architecture, the model, its data and how it was made.

    Raises:
        CheckpointError: Missing, unreadable, of another kind, or weights that do not fit.
    """
    payload = _load(path, MODEL)
    model = _build(path, payload["spec"], payload["state"])
    return ModelSpec(**payload["spec"]), model, DataInfo(**payload["data"]), payload["origin"]
