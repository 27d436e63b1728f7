"""Training a forecaster and scoring it beside every profile and Holt-Winters on the test span.

The loop is the authors': Adam, mini-batches of windows, L1 loss (pinball loss for quantiles),
early stopping on the validation loss. Early stopping keeps a deep copy of the best weights and
puts it back at the end (the authors' code kept a reference to the live weights, so it
"restored" the last epoch's).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from recycle_ts.config import BASELINES, ForecastConfig
from recycle_ts.data import CycleSeries, Scaler, Split, split_cycles, to_steps
from recycle_ts.ets import ets_forecasts
from recycle_ts.forecaster import Forecaster
from recycle_ts.metrics import coverage, naive_scale, pinball, point_metrics
from recycle_ts.model import Window, build_network
from recycle_ts.resume import TrainingState
from recycle_ts.windows import prepare, windows
from shared_hpc import Comm, EnergyMeter, Headline, SerialComm, UserError

__all__ = [
    "EarlyStopping",
    "EpochRecord",
    "FitResult",
    "SetUp",
    "choose_baseline",
    "fit",
    "score_model",
    "score_references",
    "set_up",
    "train_network",
]


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of training.

    Attributes:
        epoch: Epochs done.
        train_loss: Mean training loss of the epoch.
        validation_loss: Loss on the validation windows after it.
        seconds: Training time so far (validation excluded).
    """

    epoch: int
    train_loss: float
    validation_loss: float
    seconds: float


class EarlyStopping:
    """Stop after ``patience`` epochs without improvement; keep a copy of the best weights.

    Args:
        patience: Epochs without a lower validation loss before stopping.
    """

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = math.inf
        self.best_epoch = 0
        self.state: dict[str, torch.Tensor] | None = None
        self._waited = 0

    def update(self, loss: float, network: nn.Module, epoch: int) -> bool:
        """Record an epoch's validation loss; returns whether to stop."""
        if loss < self.best:
            self.best, self.best_epoch, self._waited = loss, epoch, 0
            self.state = copy.deepcopy(network.state_dict())  # a copy, not the live tensors
        else:
            self._waited += 1
        return self._waited > self.patience

    def restore(self, network: nn.Module) -> None:
        """Put the best weights back into ``network``."""
        if self.state is not None:
            network.load_state_dict(self.state)

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to stop where this one would have."""
        return {"best": self.best, "best_epoch": self.best_epoch, "waited": self._waited,
                "state": self.state}  # fmt: skip

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.best, self.best_epoch = saved["best"], saved["best_epoch"]
        self._waited, self.state = saved["waited"], saved["state"]


def _loss(network: nn.Module, batch: Window, levels: torch.Tensor) -> torch.Tensor:
    out = network(batch)
    if len(levels) == 1:
        return (out[..., 0] - batch.target).abs().mean()
    error = batch.target.unsqueeze(-1) - out
    return torch.maximum(levels * error, (levels - 1) * error).mean()


@torch.no_grad()
def _evaluate(network: nn.Module, data: Window, levels: torch.Tensor) -> float:
    network.eval()
    loss = float(_loss(network, data, levels))
    network.train()
    return loss


def train_network(
    network: nn.Module,
    train: Window,
    validation: Window,
    config: ForecastConfig,
    progress: Callable[[EpochRecord], None] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    state: TrainingState | None = None,
    resume: bool = False,
) -> tuple[list[EpochRecord], EarlyStopping]:
    """Train ``network`` in place and leave the best epoch's weights in it.

    Args:
        network: The network.
        train: Training windows.
        validation: Validation windows (early stopping).
        config: Loss, batch size, epochs, patience, learning rate, seed.
        progress: Called after every epoch (after the training state is written).
        optimizer: Adam over ``network`` with ``config.lr`` where not given.
        state: Where to write the training state after every epoch (``None``: nowhere).
        resume: Continue from ``state``'s file where it exists.

    Raises:
        UserError: The loss stops being finite (diverged), or the saved state belongs to
            another run.
    """
    levels = torch.tensor(config.levels)
    if optimizer is None:
        optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)
    stopper = EarlyStopping(config.patience)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[EpochRecord] = []
    seconds, stopped = 0.0, False
    saved = state.load(network) if state is not None and resume else None
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
        stopper.load_state_dict(saved["stopping"])
        generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])  # dropout draws from it
        history = [EpochRecord(**r) for r in saved["history"]]
        seconds, stopped = history[-1].seconds, saved["stopped"]
    network.train()
    last = len(history) if stopped else config.epochs
    for epoch in range(len(history) + 1, last + 1):
        began = time.perf_counter()
        order = torch.randperm(len(train), generator=generator)
        losses = []
        for start in range(0, len(train), config.batch_size):
            loss = _loss(network, train[order[start : start + config.batch_size]], levels)
            if not torch.isfinite(loss):
                raise UserError(f"training diverged in epoch {epoch}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        seconds += time.perf_counter() - began
        record = EpochRecord(epoch, float(np.mean(losses)), _evaluate(network, validation, levels),
                             seconds)  # fmt: skip
        history.append(record)
        stopped = stopper.update(record.validation_loss, network, epoch)
        if state is not None:
            state.save({"network": network.state_dict(), "optimizer": optimizer.state_dict(),
                        "stopping": stopper.state_dict(), "generator": generator.get_state(),
                        "torch_rng": torch.get_rng_state(), "stopped": stopped,
                        "history": [vars(r) for r in history]})  # fmt: skip
        if progress is not None:  # after the state is written: an interrupt here loses nothing
            progress(record)
        if stopped:
            break
    stopper.restore(network)
    network.eval()
    return history, stopper


@dataclass
class FitResult:
    """A trained forecaster and how it and every reference did on the test span.

    Attributes:
        forecaster: The trained model (best epoch's weights).
        history: One record per epoch.
        best_epoch: The epoch whose weights were kept.
        train_seconds: Time in the training loop (validation excluded).
        train_joules: Energy of the training loop in this process (validation included; a
            resumed run's epochs before the resume are not in it).
        energy_method: How it was obtained (``rapl``, ``estimated``, ...).
        parameters: Trainable parameters of the network.
        test: Per forecaster name (the model, each profile, ``ets``): MAE, MAPE, MASE, bias (and
            pinball loss and interval coverage for quantile models).
        test_forecasts: The model's test forecasts with time stamps.
        windows: Training, validation and test windows.
        ets_form: The Holt-Winters season and trend chosen on the validation span, per target.
        resumed_epochs: Epochs read from a saved training state rather than trained here.
    """

    forecaster: Forecaster
    history: list[EpochRecord]
    best_epoch: int
    train_seconds: float
    train_joules: float
    energy_method: str
    parameters: int
    test: dict[str, dict[str, float]]
    test_forecasts: pd.DataFrame
    windows: dict[str, int] = field(default_factory=dict)
    ets_form: dict[str, str] = field(default_factory=dict)
    resumed_epochs: int = 0

    @property
    def model(self) -> str:
        return self.forecaster.config.model

    def best_baseline(self) -> str | None:
        """The reference (profile or ETS) with the lowest test MAE (``None``: none scored)."""
        others = [name for name in self.test if name != self.model]
        return min(others, key=lambda name: self.test[name]["mae"]) if others else None

    def metrics(self) -> dict[str, Any]:
        """The figures a run record keeps: ``test.<name>.<metric>`` for every forecaster."""
        return {
            "model": self.model,
            "test": self.test,
            "best_baseline": self.best_baseline(),
            "best_epoch": self.best_epoch,
            "epochs": len(self.history),
            "train_seconds": self.train_seconds,
            "train_joules": self.train_joules,
            "energy_method": self.energy_method,
            "parameters": self.parameters,
            "validation_loss": min(r.validation_loss for r in self.history),
            "windows": self.windows,
            "ets_form": self.ets_form,
            "resumed_epochs": self.resumed_epochs,
        }

    def headline(self) -> Headline:
        """The model's test MAE, naming the best reference's."""
        best = self.best_baseline()
        against = f" (best baseline {best}: {self.test[best]['mae']:.4g})" if best else ""
        return Headline(
            f"test MAE of {self.model}{against}",
            self.test[self.model]["mae"],
            higher_is_better=False,
        )


def _scores(
    forecasts: np.ndarray, actual: np.ndarray, scales: np.ndarray, levels: list[float] | None
) -> dict[str, float]:
    """Metrics of forecasts ``(..., targets[, quantiles])``, averaged over the targets."""
    point = forecasts[..., levels.index(0.5)] if levels else forecasts
    per_target = [
        point_metrics(point[..., i], actual[..., i], scales[i]) for i in range(actual.shape[-1])
    ]
    scores = {key: float(np.mean([p[key] for p in per_target])) for key in per_target[0]}
    if levels and len(levels) > 1:
        scores["pinball"] = pinball(forecasts, actual, levels)
        scores["coverage"] = coverage(forecasts[..., 0], forecasts[..., -1], actual)
        scores["interval"] = levels[-1] - levels[0]
    return scores


def choose_baseline(series: CycleSeries, config: ForecastConfig, origins: np.ndarray) -> str:
    """The profile with the lowest MAE over the windows at ``origins`` (those before the test
    span: a profile has no trained parameters, so the training windows judge it fairly)."""
    targets, covariates = len(series.target_names), len(series.covariate_names)
    identity = Scaler(np.zeros(targets), np.ones(targets))
    covariate_identity = Scaler(np.zeros(covariates), np.ones(covariates))
    errors = {}
    for name in BASELINES:
        prep = prepare(series, config, identity, covariate_identity, baseline=name)
        truth = np.stack([series.values[t : t + config.horizon] for t in origins])
        errors[name] = float(np.mean(np.abs(prep.profile[origins] - truth)))
    return min(errors, key=errors.__getitem__)


def _truth(
    series: CycleSeries, config: ForecastConfig, origins: np.ndarray, train_end: int
) -> tuple[np.ndarray, np.ndarray]:
    """The true horizons at ``origins`` and MASE's scale of each target (training span)."""
    actual = np.stack([series.values[t : t + config.horizon] for t in origins])
    steps = to_steps(series.values[:train_end])
    scales = np.array([naive_scale(steps[:, i], series.cycle) for i in range(actual.shape[-1])])
    return actual, scales


def score_references(
    series: CycleSeries, config: ForecastConfig
) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Test scores of every profile and of Holt-Winters on the split of ``config``, and the
    Holt-Winters season and trend chosen per target."""
    split = split_cycles(
        series.cycles, config.history, config.horizon, config.validation, config.test
    )
    actual, scales = _truth(series, config, split.test, split.validation_start)
    targets, covariates = len(series.target_names), len(series.covariate_names)
    identity = Scaler(np.zeros(targets), np.ones(targets))
    covariate_identity = Scaler(np.zeros(covariates), np.ones(covariates))
    test = {}
    for name in BASELINES:
        profile = Forecaster(replace(config, baseline=name, quantiles=[]), None, identity,
                             covariate_identity, series.cycle, series.step, {})  # fmt: skip
        frame = profile.forecast_origins(series, split.test)
        test[name] = _scores(_table(frame, series, [0.5]), actual, scales, None)
    week = config.season if series.daily else None
    ets, trend = ets_forecasts(
        series.values, split.validation_start, split.validation, split.test, config.horizon, week
    )
    test["ets"] = _scores(ets, actual, scales, None)
    return test, {series.target_names[int(k[6:])]: v for k, v in trend.items()}


@dataclass
class SetUp:
    """A series made ready for training: its split, its windows and an untrained forecaster.

    Attributes:
        forecaster: Scalers fitted on the training span, the residual reference resolved.
        split: The chronological split.
        train: Training windows.
        validation: Validation windows.
    """

    forecaster: Forecaster
    split: Split
    train: Window
    validation: Window


def set_up(series: CycleSeries, config: ForecastConfig, data: dict[str, Any] | None) -> SetUp:
    """Split ``series``, fit its scalers on the training span, resolve ``baseline = auto`` and
    build its training and validation windows.

    Raises:
        UserError: Too short a series for the split.
    """
    split = split_cycles(
        series.cycles, config.history, config.horizon, config.validation, config.test
    )
    train_span = slice(0, split.validation_start)
    target_scaler = Scaler.fit(series.values[train_span])
    covariate_scaler = Scaler.fit(series.covariates[train_span])
    if config.baseline == "auto":
        # profiles have no trained parameters: every window before the test span may judge them
        before_test = np.concatenate([split.train, split.validation])
        config = replace(config, baseline=choose_baseline(series, config, before_test))
    prep = prepare(series, config, target_scaler, covariate_scaler)
    train, validation = (windows(prep, o, config.history) for o in (split.train, split.validation))
    forecaster = Forecaster(
        config, None, target_scaler, covariate_scaler, series.cycle, series.step, data or {}
    )
    return SetUp(forecaster, split, train, validation)


def score_model(
    forecaster: Forecaster, series: CycleSeries, split: Split
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The test forecasts of a trained forecaster and its scores."""
    config = forecaster.config
    levels = config.levels
    test_frame = forecaster.forecast_origins(series, split.test)
    actual, scales = _truth(series, config, split.test, split.validation_start)
    model = _table(test_frame, series, levels)
    return test_frame, _scores(model, actual, scales, levels if len(levels) > 1 else None)


def fit(
    series: CycleSeries,
    config: ForecastConfig,
    data: dict[str, Any] | None = None,
    progress: Callable[[EpochRecord], None] | None = None,
    references: bool = True,
    comm: Comm | None = None,
    state_file: Path | None = None,
    resume: bool = False,
    force_resume: bool = False,
) -> FitResult:
    """Train ``config.model`` on ``series`` and score it beside the references on the test span.

    Args:
        series: The data in whole cycles.
        config: The settings.
        data: Fingerprint of the data, stored with the model.
        progress: Called after every epoch.
        references: Also score every profile and Holt-Winters (the slow part on long data).
        comm: Ranks whose energy the training's meter sums (default: this process).
        state_file: Where the training state is written after every epoch (``None``: nowhere).
        resume: Continue from ``state_file`` where it exists.
        force_resume: Resume even when the state was saved with other data.

    Raises:
        UserError: Too short a series for the split, a diverging run, or a saved state of
            another run.
    """
    setup = set_up(series, config, data)
    forecaster, split, config = setup.forecaster, setup.split, setup.forecaster.config
    train, validation = setup.train, setup.validation
    torch.manual_seed(config.seed)
    network = build_network(forecaster.shape(series), config)
    # built before the meter starts: its first construction imports much of torch
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)
    comm = SerialComm() if comm is None else comm
    state = None
    if state_file is not None:
        state = TrainingState(state_file, config, data or {}, force_resume, comm.Get_rank() == 0)
    trained: list[EpochRecord] = []  # the epochs of this process, not those resumed

    def record(epoch: EpochRecord) -> None:
        trained.append(epoch)
        if progress is not None:
            progress(epoch)

    with EnergyMeter(comm) as meter:
        history, stopper = train_network(network, train, validation, config, record, optimizer,
                                         state, resume)  # fmt: skip
    forecaster.network = network

    test_frame, scores = score_model(forecaster, series, split)
    test = {config.model: scores}
    trend: dict[str, str] = {}
    if references:
        scores, trend = score_references(series, config)
        test.update(scores)
    return FitResult(
        forecaster=forecaster,
        history=history,
        best_epoch=stopper.best_epoch,
        train_seconds=history[-1].seconds,
        train_joules=meter.report.total_joules,
        energy_method=meter.report.method,
        parameters=sum(p.numel() for p in network.parameters() if p.requires_grad),
        test=test,
        test_forecasts=test_frame,
        windows={k: len(getattr(split, k)) for k in ("train", "validation", "test")},
        ets_form=trend,
        resumed_epochs=len(history) - len(trained),
    )


def _table(frame: pd.DataFrame, series: CycleSeries, levels: list[float]) -> np.ndarray:
    """A forecast frame back to ``(origins, horizon, cycle, targets[, quantiles])``."""
    horizon = int(frame["lead"].max())
    shape = (-1, horizon, series.cycle, len(series.target_names))
    if len(levels) > 1:
        columns = [[f"{t}_q{q:g}" for q in levels] for t in series.target_names]
        stacked = np.stack([frame[c].to_numpy() for c in columns], -1)  # (rows, Q, T)
        return stacked.swapaxes(-1, -2).reshape(*shape, len(levels))
    return np.stack([frame[t].to_numpy() for t in series.target_names], -1).reshape(shape)
