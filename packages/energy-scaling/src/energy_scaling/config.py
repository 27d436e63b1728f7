"""Settings of energy-scaling: one sweep in one TOML file, validated before anything runs.

A sweep is the grid ``ranks × global_batch × local_batch`` over one model, one data set and
one training recipe. ``SweepConfig`` holds the grid and the three nested tables; the points
themselves come from ``energy_scaling.sweep.expand``, which refuses a grid with an impossible
point (a global batch that ``ranks × local_batch`` does not divide) before any point runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from shared_hpc import UserError

MODELS = ("resnet18", "resnet50", "afno")
SOURCES = ("digits", "imagefolder", "era5", "weather")
IMAGE_SOURCES = ("digits", "imagefolder")
WEATHER_SOURCES = ("era5", "weather")


@dataclass(frozen=True)
class ModelConfig:
    """The network trained at every point.

    Attributes:
        name: ``resnet18`` or ``resnet50`` (torchvision, for image data) or ``afno``
            (FourCastNet's Adaptive Fourier Neural Operator, for weather data).
        patch: AFNO's patch side in grid points.
        embed_dim: AFNO's token width.
        depth: AFNO's number of blocks.
        blocks: Diagonal blocks of AFNO's Fourier-domain MLP; divides ``embed_dim``.
        sparsity: AFNO's soft-threshold (lambda of the soft shrinkage) in the Fourier domain.
        mlp_ratio: Hidden width of AFNO's channel MLPs relative to ``embed_dim``.
    """

    name: str = "resnet18"
    patch: int = 4
    embed_dim: int = 64
    depth: int = 4
    blocks: int = 8
    sparsity: float = 0.01
    mlp_ratio: float = 2.0

    def __post_init__(self) -> None:
        if self.name not in MODELS:
            raise UserError(f"model.name must be one of {list(MODELS)}, got {self.name!r}")
        for name in ("patch", "embed_dim", "depth", "blocks"):
            if getattr(self, name) < 1:
                raise UserError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.embed_dim % self.blocks:
            raise UserError(
                f"model.blocks ({self.blocks}) must divide model.embed_dim ({self.embed_dim})"
            )
        if not self.sparsity >= 0:
            raise UserError(f"model.sparsity must be >= 0, got {self.sparsity}")
        if not self.mlp_ratio > 0:
            raise UserError(f"model.mlp_ratio must be > 0, got {self.mlp_ratio}")


@dataclass(frozen=True)
class DataConfig:
    """Where the samples come from.

    Attributes:
        source: ``digits`` (scikit-learn's 8 x 8 digits, upscaled; embedded), ``imagefolder``
            (a torchvision ImageFolder at ``path``), ``era5`` (ERA5-style netCDF at ``path``)
            or ``weather`` (weathermixer's generated atmosphere; needs the ``[weather]`` extra).
        path: Folder (ImageFolder) or netCDF file(s, a glob) (ERA5); empty for embedded data.
        image_size: Side the images are resized to.
        variables: ERA5 variables to use (all of the file's when empty); a variable on
            pressure levels gives one channel per level.
        lead_steps: ERA5: time steps between input and target.
        validation: Share of the samples held out for validation (the last ones in time for
            ERA5, a seeded draw for images).
        limit: Use at most this many samples (0: all).
        weather_days: ``weather``: simulated days generated (cached beside the sweep).
        weather_nlat: ``weather``: latitude rows of the generated grid.
    """

    source: str = "digits"
    path: str = ""
    image_size: int = 32
    variables: list[str] = field(default_factory=list)
    lead_steps: int = 1
    validation: float = 0.2
    limit: int = 0
    weather_days: float = 60.0
    weather_nlat: int = 32

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise UserError(f"data.source must be one of {list(SOURCES)}, got {self.source!r}")
        if self.source in ("imagefolder", "era5") and not self.path:
            raise UserError(f"data.source {self.source!r} needs data.path")
        for name in ("image_size", "lead_steps", "weather_nlat"):
            if getattr(self, name) < 1:
                raise UserError(f"data.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.validation < 1:
            raise UserError(f"data.validation must lie in (0, 1), got {self.validation}")
        if self.limit < 0:
            raise UserError(f"data.limit must be >= 0, got {self.limit}")
        if not self.weather_days > 0:
            raise UserError(f"data.weather_days must be > 0, got {self.weather_days}")


@dataclass(frozen=True)
class TrainConfig:
    """How every point trains; the learning rate follows the global batch by ``lr_rule``.

    Attributes:
        epochs: Passes over the training data.
        max_steps: Stop after this many optimizer updates (0: after ``epochs``).
        evals_per_epoch: Validations per epoch (time and energy to target are read there).
        lr_rule: ``linear`` (lr grows with the global batch, Goyal et al.) or ``sqrt`` (with
            its square root, Krizhevsky; Hoffer et al.).
        base_lr: Learning rate at ``base_batch``.
        base_batch: Global batch at which ``base_lr`` holds.
        warmup_epochs: Epochs of linear learning-rate warm-up from ~0 to the scaled rate.
        schedule: After warm-up: ``cosine`` decay to zero or ``constant``.
        optimizer: ``sgd`` (Nesterov momentum) or ``adamw``.
        momentum: SGD's momentum.
        weight_decay: Weight decay.
        precision: ``fp32``, or ``bf16`` (forward and backward passes under bfloat16 autocast,
            weights and optimizer in float32, as mixed-precision GPU training runs).
        target: Validation metric that counts as reached (accuracy for images, at most this
            latitude-weighted RMSE for weather); none: time and energy to target stay empty.
        seed: Seed of the initialisation and of the batch order.
    """

    epochs: int = 3
    max_steps: int = 0
    evals_per_epoch: int = 1
    lr_rule: str = "linear"
    base_lr: float = 0.05
    base_batch: int = 32
    warmup_epochs: float = 0.5
    schedule: str = "cosine"
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    precision: str = "fp32"
    target: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "evals_per_epoch", "base_batch"):
            if getattr(self, name) < 1:
                raise UserError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_steps < 0:
            raise UserError(f"train.max_steps must be >= 0, got {self.max_steps}")
        if self.lr_rule not in ("linear", "sqrt"):
            raise UserError(f"train.lr_rule must be 'linear' or 'sqrt', got {self.lr_rule!r}")
        if not (math.isfinite(self.base_lr) and self.base_lr > 0):
            raise UserError(f"train.base_lr must be a positive number, got {self.base_lr}")
        if not self.warmup_epochs >= 0:
            raise UserError(f"train.warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if self.schedule not in ("cosine", "constant"):
            raise UserError(f"train.schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if self.optimizer not in ("sgd", "adamw"):
            raise UserError(f"train.optimizer must be 'sgd' or 'adamw', got {self.optimizer!r}")
        if not 0 <= self.momentum < 1:
            raise UserError(f"train.momentum must lie in [0, 1), got {self.momentum}")
        if not self.weight_decay >= 0:
            raise UserError(f"train.weight_decay must be >= 0, got {self.weight_decay}")
        if self.precision not in ("fp32", "bf16"):
            raise UserError(f"train.precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if self.target is not None and not math.isfinite(self.target):
            raise UserError(f"train.target must be a number, got {self.target}")

    def scaled_lr(self, global_batch: int) -> float:
        """The peak learning rate for ``global_batch`` under ``lr_rule``."""
        ratio = global_batch / self.base_batch
        return self.base_lr * (ratio if self.lr_rule == "linear" else math.sqrt(ratio))


@dataclass(frozen=True)
class SweepConfig:
    """A sweep: every combination of rank count, global batch and local batch.

    Attributes:
        name: The sweep's name (job names, report title).
        ranks: Rank counts (one device each: a GPU with ``device = "cuda"``, else CPU cores).
        global_batch: Samples per optimizer update over all ranks.
        local_batch: Samples per forward pass on one rank; where ``global > local × ranks``
            the gradients of ``global / (local × ranks)`` passes are accumulated. Empty:
            ``global / ranks`` (no accumulation).
        device: ``cpu``, ``cuda`` (one GPU per rank) or ``auto`` (cuda where available).
        hardware: Label of the hardware in the analysis (fits are per model and hardware);
            empty: the CPU or GPU model found at run time.
        threads: Torch CPU threads per rank (0: the rank's share of its node's cores).
        model: The network.
        data: The samples.
        train: The training recipe.
    """

    name: str = "sweep"
    ranks: list[int] = field(default_factory=lambda: [1, 2])
    global_batch: list[int] = field(default_factory=lambda: [32, 128])
    local_batch: list[int] = field(default_factory=list)
    device: str = "cpu"
    hardware: str = ""
    threads: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        for name in ("ranks", "global_batch", "local_batch"):
            values = getattr(self, name)
            if any(v < 1 for v in values):
                raise UserError(f"{name} must hold numbers >= 1, got {values}")
            if len(set(values)) != len(values):
                raise UserError(f"{name} repeats a value: {values}")
        if not self.ranks or not self.global_batch:
            raise UserError("ranks and global_batch need at least one value each")
        if self.threads < 0:
            raise UserError(f"threads must be >= 0, got {self.threads}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise UserError(f"device must be 'cpu', 'cuda' or 'auto', got {self.device!r}")
        image_model = self.model.name.startswith("resnet")
        if image_model != (self.data.source in IMAGE_SOURCES):
            kind = "image" if image_model else "weather"
            raise UserError(
                f"model {self.model.name!r} needs {kind} data, but data.source is "
                f"{self.data.source!r}"
            )
