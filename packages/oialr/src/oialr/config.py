"""Settings of oialr: dataclasses, validated when built, loaded from TOML and flags.

A recipe (``oialr.recipes``) supplies the settings that suit its model and data; a TOML file
and the flags change them (``oialr train --recipe vit-cifar10 --epochs 50``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from shared_hpc import UserError


@dataclass(frozen=True)
class ScheduleConfig:
    """When layers switch to low rank and how their rank is cut (the authors' defaults).

    Attributes:
        beta: Singular values below ``beta`` times the largest are cut, in (0, 1).
        frequency: Steps between two SVDs of S in a low-rank layer (rotation and cut).
        check_every: Steps between two measurements of a full-rank layer's bases.
        switch: ``"stable"`` switches a layer once its bases are stable; ``"delay"`` switches
            every layer after ``delay`` steps, as the authors' released code does.
        stability: Cosine similarity of a layer's bases between two checks that counts as
            stable, in (0, 1].
        min_steps: No layer switches before this many steps (``"stable"``).
        delay: Steps of full-rank training before the switch (``"delay"``).
        max_cut: The largest share of a layer's rank dropped at one cut, in (0, 1).
        min_rank: A layer keeps at least this share of its full rank, in [0, 1).
        skip_ratio: Layers whose weight matrix has a smaller side of at most ``1/skip_ratio``
            of the larger stay dense (a low-rank form saves nothing there).
        keep_first_last: Keep the first and the last eligible layer dense.
    """

    beta: float = 0.1
    frequency: int = 100
    check_every: int = 100
    switch: str = "stable"
    stability: float = 0.99
    min_steps: int = 0
    delay: int = 1000
    max_cut: float = 0.5
    min_rank: float = 0.01
    skip_ratio: float = 10.0
    keep_first_last: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.beta < 1:
            raise UserError(f"beta must lie in (0, 1), got {self.beta}")
        for name in ("frequency", "check_every"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("min_steps", "delay"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.switch not in ("stable", "delay"):
            raise UserError(f"switch must be 'stable' or 'delay', got {self.switch!r}")
        if not 0 < self.stability <= 1:
            raise UserError(f"stability must lie in (0, 1], got {self.stability}")
        if not 0 < self.max_cut < 1:
            raise UserError(f"max_cut must lie in (0, 1), got {self.max_cut}")
        if not 0 <= self.min_rank < 1:
            raise UserError(f"min_rank must lie in [0, 1), got {self.min_rank}")
        if not self.skip_ratio > 1:
            raise UserError(f"skip_ratio must be > 1, got {self.skip_ratio}")


@dataclass(frozen=True)
class ModelConfig:
    """The size of a recipe's network (each recipe names what the numbers mean for it).

    Attributes:
        width: Hidden units (MLP), channels of the first stage (CNN, ResNet18), embedding
            size (ViT, Transformer).
        depth: Hidden layers (MLP), blocks (ViT, Transformer); ResNet18's depth is fixed.
        heads: Attention heads (ViT, Transformer).
        patch: Patch side in pixels (ViT), or time steps per token (forecasters).
        dropout: Dropout probability.
    """

    width: int = 256
    depth: int = 3
    heads: int = 4
    patch: int = 4
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("width", "depth", "heads", "patch"):
            if getattr(self, name) < 1:
                raise UserError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.width % self.heads:
            raise UserError(f"model.width ({self.width}) must be a multiple of model.heads")
        if not 0 <= self.dropout < 1:
            raise UserError(f"model.dropout must lie in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class TrainConfig:
    """How a recipe trains: optimizer, schedule of the learning rate, OIALR or full rank.

    Attributes:
        epochs: Passes over the training data.
        batch_size: Samples per step over all ranks together (split evenly between them).
        lr: Peak learning rate.
        optimizer: ``adamw`` or ``sgd`` (with Nesterov momentum).
        momentum: SGD's momentum.
        weight_decay: Decoupled weight decay (AdamW) or L2 penalty (SGD).
        warmup_steps: Steps of linear learning-rate warm-up.
        lr_schedule: ``cosine`` (decay to zero over the run) or ``constant``.
        full_rank: Train the dense model only, without OIALR (the baseline).
        seed: Seed of the model's initialisation, the split and the batches.
        data: Folder or file of data the recipe reads from disk (CIFAR-10's folder); empty for
            the recipe's default.
        validation: Share of the training data held out for validation.
        checkpoint_every: Epochs between checkpoints (0: none).
        model: The network's size.
        schedule: OIALR's schedule.
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adamw"
    momentum: float = 0.9
    weight_decay: float = 0.01
    warmup_steps: int = 0
    lr_schedule: str = "cosine"
    full_rank: bool = False
    seed: int = 0
    data: str = ""
    validation: float = 0.15
    checkpoint_every: int = 1
    model: ModelConfig = field(default_factory=ModelConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise UserError(f"lr must be a positive number, got {self.lr}")
        if self.optimizer not in ("adamw", "sgd"):
            raise UserError(f"optimizer must be 'adamw' or 'sgd', got {self.optimizer!r}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise UserError(f"lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}")
        if not 0 <= self.momentum < 1:
            raise UserError(f"momentum must lie in [0, 1), got {self.momentum}")
        if not self.weight_decay >= 0:
            raise UserError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 < self.validation < 1:
            raise UserError(f"validation must lie in (0, 1), got {self.validation}")
