"""A trained forecaster: the network, its scalers and the data's shape; saved and loaded.

A checkpoint is a folder with ``model.pt`` (the network's tensors, loaded with
``weights_only=True``) and ``model.json`` (settings, scalers, cycle, time step, the training
data's fingerprint). A forecaster without a network forecasts its profile alone, the
explainable fallback.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from recycle_ts.__about__ import __version__
from recycle_ts.config import ForecastConfig
from recycle_ts.data import CALENDAR_FEATURES, CycleSeries, Scaler, to_cycles, wall_clock
from recycle_ts.model import Shape, Window, build_network
from recycle_ts.windows import prepare, windows
from shared_hpc import UserError, atomic_path, config_to_dict, load_config, write_json_atomic

FORMAT = "recycle-ts-forecaster-1"


class CheckpointError(UserError):
    """A checkpoint folder that is missing, corrupt or not a recycle-ts forecaster."""


@dataclass
class Forecaster:
    """Forecasts ``config.horizon`` cycles from the history before an origin.

    Attributes:
        config: The settings it was trained with.
        network: The trained network; ``None`` for the profile alone.
        target_scaler: Fitted on the training span.
        covariate_scaler: Fitted on the training span.
        cycle: Steps per cycle.
        step: Time between two steps.
        data: Fingerprint of the training data.
    """

    config: ForecastConfig
    network: nn.Module | None
    target_scaler: Scaler
    covariate_scaler: Scaler
    cycle: int
    step: pd.Timedelta
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return self.config.model if self.network is not None else self.config.baseline

    def shape(self, series: CycleSeries) -> Shape:
        return Shape(
            self.config.history,
            self.config.horizon,
            series.cycle,
            len(series.target_names),
            len(series.covariate_names),
            CALENDAR_FEATURES,
            len(self.config.levels),
        )

    @torch.no_grad()
    def forecast_window(self, batch: Window) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled forecasts ``(B, horizon, cycle, targets, quantiles)`` (sorted along the
        quantiles) and the scaled profile forecast."""
        if self.network is None:
            out = batch.future_base.unsqueeze(-1).expand(*batch.future_base.shape, 1)
            return out, batch.future_base
        self.network.eval()
        out = self.network(batch)
        return out.sort(dim=-1).values, batch.future_base

    def forecast_origins(
        self, series: CycleSeries, origins: np.ndarray, future_covariates: np.ndarray | None = None
    ) -> pd.DataFrame:
        """Forecasts from each of ``origins`` of ``series`` as a table with time stamps.

        Returns:
            One row per forecast step: ``origin`` (start of the first forecast cycle),
            ``timestamp`` (wall clock), ``lead`` (cycles ahead, 1 = the next), and per target
            the point forecast, its quantiles (``<target>_q<level>``), the profile
            (``<target>_baseline``) and the truth (``<target>_actual``, NaN in the future).
        """
        self._check(series)
        prep = prepare(
            series, self.config, self.target_scaler, self.covariate_scaler, future_covariates
        )
        batch = windows(prep, origins, self.config.history)
        out, base = self.forecast_window(batch)
        levels = self.config.levels
        scale = self.target_scaler
        out = scale.inverse(out.double().movedim(-1, -2).numpy()).swapaxes(-1, -2)
        base = scale.inverse(base.double().numpy())
        truth = scale.inverse(batch.target.double().numpy())
        horizon, cycle = self.config.horizon, series.cycle
        rows: dict[str, Any] = {}
        cycle_starts = np.stack([prep.starts[t : t + horizon] for t in origins])
        offsets = series.step * np.arange(cycle)
        rows["origin"] = np.repeat(prep.starts[origins], horizon * cycle)
        rows["timestamp"] = pd.DatetimeIndex([s + o for s in cycle_starts.ravel() for o in offsets])
        rows["lead"] = np.tile(np.repeat(np.arange(1, horizon + 1), cycle), len(origins))
        point = levels.index(0.5)
        for i, name in enumerate(series.target_names):
            rows[name] = out[..., i, point].ravel()
            if len(levels) > 1:
                for j, level in enumerate(levels):
                    rows[f"{name}_q{level:g}"] = out[..., i, j].ravel()
            rows[f"{name}_baseline"] = base[..., i].ravel()
            rows[f"{name}_actual"] = truth[..., i].ravel()
        return pd.DataFrame(rows)

    def predict(self, frame: pd.DataFrame, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """Forecast the ``horizon`` cycles after the last whole cycle of ``frame``.

        Args:
            frame: The recent history in the training data's columns (at least
                ``history + 1`` whole cycles).
            future: The covariates over the forecast cycles, where the model has covariates.

        Raises:
            UserError: Too little history, other columns or time step than in training, or
                missing future covariates.
        """
        config = self.config
        series = to_cycles(
            frame,
            config.date_column,
            config.target,
            config.covariates,
            self.cycle,
            config.timezone,
        )
        future_cov = None
        if config.covariates:
            if future is None:
                raise UserError(f"the model needs the covariates {config.covariates} ahead")
            future_cov = self._future_covariates(series, future)
        if series.cycles < config.history + 1:
            raise UserError(
                f"a forecast needs {config.history + 1} whole cycles of history, the data hold "
                f"{series.cycles}"
            )
        return self.forecast_origins(series, np.array([series.cycles]), future_cov)

    def _future_covariates(self, series: CycleSeries, future: pd.DataFrame) -> np.ndarray:
        config = self.config
        missing = [c for c in [config.date_column, *config.covariates] if c not in future]
        if missing:
            raise UserError(f"the future covariates lack the column {missing[0]!r}")
        # aware stamps name instants: read them in the history's zone (UTC for a history in UTC)
        stamps, _ = wall_clock(future[config.date_column], series.timezone or "UTC")
        wanted = series.slot_times(series.future_starts(config.horizon))
        table = future.set_index(stamps)[config.covariates]
        if not wanted.isin(table.index).all():
            first = wanted[~wanted.isin(table.index)][0]
            raise UserError(f"the future covariates miss the time step {first}")
        values = table.loc[wanted].to_numpy(np.float64)
        return values.reshape(config.horizon, series.cycle, len(config.covariates))

    def _check(self, series: CycleSeries) -> None:
        if series.cycle != self.cycle or series.step != self.step:
            raise UserError(
                f"the model was trained on cycles of {self.cycle} steps of {self.step}; these "
                f"data have {series.cycle} steps of {series.step}"
            )

    def save(self, folder: Path) -> None:
        """Write ``model.pt`` and ``model.json`` into ``folder`` (each atomically)."""
        folder = Path(folder)
        meta = {
            "format": FORMAT,
            "version": __version__,
            "config": config_to_dict(self.config),
            "has_network": self.network is not None,
            "target_scaler": self.target_scaler.to_dict(),
            "covariate_scaler": self.covariate_scaler.to_dict(),
            "cycle": self.cycle,
            "step_seconds": self.step.total_seconds(),
            "data": self.data,
        }
        if self.network is not None:
            with atomic_path(folder / "model.pt") as tmp:
                torch.save(self.network.state_dict(), tmp)
        write_json_atomic(folder / "model.json", meta)

    @classmethod
    def load(cls, folder: Path) -> Forecaster:
        """Read a forecaster saved by ``save``.

        Raises:
            CheckpointError: Files missing, corrupt, or of another program.
        """
        folder = Path(folder)
        try:
            meta = json.loads((folder / "model.json").read_text())
        except FileNotFoundError:
            raise CheckpointError(f"{folder} holds no model.json") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CheckpointError(f"{folder / 'model.json'} is corrupt") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CheckpointError(f"{folder / 'model.json'} is not a recycle-ts forecaster")
        config = load_config(ForecastConfig, None, **meta["config"])
        cycle = int(meta["cycle"])
        forecaster = cls(
            config,
            None,
            Scaler.from_dict(meta["target_scaler"]),
            Scaler.from_dict(meta["covariate_scaler"]),
            cycle,
            pd.Timedelta(seconds=meta["step_seconds"]),
            meta["data"],
        )
        if meta["has_network"]:
            shape = Shape(
                config.history,
                config.horizon,
                cycle,
                len(config.target),
                len(config.covariates),
                CALENDAR_FEATURES,
                len(config.levels),
            )
            network = build_network(shape, config)
            try:
                state = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
                network.load_state_dict(state)
            except FileNotFoundError:
                raise CheckpointError(f"{folder} holds no model.pt") from None
            except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as err:
                first = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise CheckpointError(f"{folder / 'model.pt'} cannot be loaded: {first}") from None
            forecaster.network = network
        return forecaster
