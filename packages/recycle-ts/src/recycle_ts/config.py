"""Settings of recycle-ts: one dataclass, validated when built, loaded from TOML and flags.

The defaults are the authors' (21 cycles of history, 7 cycles ahead, a 1+1 layer Transformer,
Adam 1e-3, batch 32, L1 loss, early stopping, profiles over the last 3 cycles); the residual's
reference is by default the profile that forecasts the windows before the test span best.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from shared_hpc import UserError

MODELS = ("recycle", "mlp", "lstm", "transformer", "dlinear")
"""``recycle``: the Transformer over one token per cycle; ``mlp``/``lstm``: other backbones
under the same residual scheme; ``transformer``: one token per time step (uncompressed);
``dlinear``: the decomposition-linear model on the raw history."""

BASELINES = ("persistence", "mean", "day_type", "seasonal_naive")
"""The cycle profiles that serve as forecasters of their own and as residual references."""


@dataclass(frozen=True)
class ForecastConfig:
    """What is forecast from which data, by which model, trained how.

    Attributes:
        date_column: Column of the time stamps.
        target: Column(s) to forecast.
        covariates: Columns known in advance for the forecast cycles (e.g. a temperature
            forecast); the model sees them for history and horizon.
        series_column: Column of a series id: one model across all series (compared with one
            model per series); empty for a single series.
        cycle: Time steps per primary cycle, or ``auto`` to detect it from the data.
        timezone: IANA zone of local days (e.g. ``Europe/Berlin``): naive time stamps are read
            as its wall-clock times, and daylight-saving days are resampled to whole cycles.
        country: Country code for holidays (``holidays`` package, e.g. ``DE``); empty: none.
        history: Cycles the model sees before the forecast origin.
        horizon: Cycles forecast at once.
        validation: Share of the cycles held out for validation (early stopping).
        test: Share of the last cycles held out for testing.
        model: One of ``recycle``, ``mlp``, ``lstm``, ``transformer``, ``dlinear``.
        baseline: Reference of the residual: ``persistence``, ``mean``, ``day_type``,
            ``seasonal_naive``, or ``auto`` for the one with the lowest MAE over the training
            and validation windows.
        profile_cycles: Cycles averaged by the ``mean`` and ``day_type`` profiles.
        season: Cycles per season of ``seasonal_naive`` (7 for daily cycles: last week).
        width: Embedding size (Transformers), hidden units (MLP, LSTM).
        heads: Attention heads.
        layers: Encoder and decoder layers each (Transformers), layers (MLP, LSTM).
        dropout: Dropout probability.
        quantiles: Quantiles to forecast with the pinball loss, 0.5 among them (e.g.
            ``0.1,0.5,0.9``); empty: a point forecast with the L1 loss.
        epochs: Most passes over the training windows.
        patience: Epochs without a better validation loss before training stops.
        batch_size: Windows per optimizer step.
        lr: Adam's learning rate.
        seed: Seed of the initialisation and the batches.
    """

    date_column: str = "date"
    target: list[str] = field(default_factory=lambda: ["load"])
    covariates: list[str] = field(default_factory=list)
    series_column: str = ""
    cycle: str = "auto"
    timezone: str = ""
    country: str = ""
    history: int = 21
    horizon: int = 7
    validation: float = 0.15
    test: float = 0.15
    model: str = "recycle"
    baseline: str = "auto"
    profile_cycles: int = 3
    season: int = 7
    width: int = 64
    heads: int = 4
    layers: int = 1
    dropout: float = 0.1
    quantiles: list[float] = field(default_factory=list)
    epochs: int = 100
    patience: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.target:
            raise UserError("name at least one target column (--target)")
        overlap = set(self.target) & set(self.covariates)
        used = {*self.target, *self.covariates}
        if overlap or self.date_column in used or (self.series_column in used):
            raise UserError(f"a column is used twice: {sorted(overlap) or self.date_column}")
        if self.cycle != "auto" and not (self.cycle.isdigit() and int(self.cycle) >= 2):
            raise UserError(f"cycle must be an integer >= 2 or 'auto', got {self.cycle!r}")
        for name in ("history", "horizon", "profile_cycles", "season", "width", "heads"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("layers", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.patience < 0:
            raise UserError(f"patience must be >= 0, got {self.patience}")
        for name in ("validation", "test"):
            if not 0 < getattr(self, name) < 0.5:
                raise UserError(f"{name} must lie in (0, 0.5), got {getattr(self, name)}")
        if self.model not in MODELS:
            raise UserError(f"model must be one of {', '.join(MODELS)}; got {self.model!r}")
        if self.baseline not in (*BASELINES, "auto"):
            raise UserError(
                f"baseline must be auto or one of {', '.join(BASELINES)}; got {self.baseline!r}"
            )
        if self.model in ("recycle", "transformer") and self.width % self.heads:
            raise UserError(f"width ({self.width}) must be a multiple of heads ({self.heads})")
        if not 0 <= self.dropout < 1:
            raise UserError(f"dropout must lie in [0, 1), got {self.dropout}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise UserError(f"lr must be a positive number, got {self.lr}")
        if self.quantiles:
            if any(not 0 < q < 1 for q in self.quantiles) or 0.5 not in self.quantiles:
                raise UserError(
                    f"quantiles must lie in (0, 1) and include 0.5, got {self.quantiles}"
                )
            if len(set(self.quantiles)) != len(self.quantiles):
                raise UserError(f"quantiles repeat: {self.quantiles}")

    @property
    def cycle_length(self) -> int | None:
        """The given cycle length, ``None`` for ``auto``."""
        return None if self.cycle == "auto" else int(self.cycle)

    @property
    def levels(self) -> list[float]:
        """The quantiles in increasing order; ``[0.5]`` for a point forecast."""
        return sorted(self.quantiles) if self.quantiles else [0.5]
