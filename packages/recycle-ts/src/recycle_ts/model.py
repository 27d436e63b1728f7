"""The networks: ReCycle and its comparison models, in one file.

Every network takes one ``Window`` batch and returns forecasts of shape
``(batch, horizon, cycle, targets, quantiles)`` in the scaled units.

- ``ReCycle`` (``recycle``): primary cycle compression, one token per cycle. The encoder reads
  the history's residuals (each cycle minus its own profile forecast), the profile, the
  calendar and the covariates; the decoder reads the horizon's profile forecast, calendar and
  covariates and emits all horizon cycles at once (one shot, not autoregressive). Its output
  is added to the profile forecast: the network learns only the residual.
- ``ResidualMLP`` (``mlp``) and ``ResidualLSTM`` (``lstm``): other backbones on the same
  per-cycle tokens, under the same residual scheme.
- ``StepTransformer`` (``transformer``): the same residual Transformer with one token per time
  step, the cost that cycle compression avoids.
- ``DLinear`` (``dlinear``): moving-average trend plus remainder, each mapped linearly from
  the raw history to the horizon (Zeng et al. 2023), without a profile.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from recycle_ts.config import ForecastConfig


@dataclass
class Window:
    """A batch of forecast windows (tensors in scaled units).

    Attributes:
        past: History, ``(B, history, cycle, targets)``.
        past_base: Profile forecast of each history cycle from the cycles before it.
        past_cal: Calendar features of the history cycles, ``(B, history, K)``.
        past_cov: Covariates over the history, ``(B, history, cycle, covariates)``.
        future_base: Profile forecast of the horizon, ``(B, horizon, cycle, targets)``.
        future_cal: Calendar features of the horizon cycles, ``(B, horizon, K)``.
        future_cov: Covariates over the horizon, ``(B, horizon, cycle, covariates)``.
        target: The true horizon, ``(B, horizon, cycle, targets)`` (NaN when unknown).
    """

    past: torch.Tensor
    past_base: torch.Tensor
    past_cal: torch.Tensor
    past_cov: torch.Tensor
    future_base: torch.Tensor
    future_cal: torch.Tensor
    future_cov: torch.Tensor
    target: torch.Tensor

    def __getitem__(self, index: torch.Tensor) -> Window:
        return Window(**{k: v[index] for k, v in vars(self).items()})

    def __len__(self) -> int:
        return len(self.past)


@dataclass(frozen=True)
class Shape:
    """Sizes a network is built for.

    Attributes:
        history: Cycles of history.
        horizon: Cycles forecast.
        cycle: Steps per cycle.
        targets: Target columns.
        covariates: Covariate columns.
        calendar: Calendar features per cycle.
        quantiles: Outputs per value (1 for a point forecast).
    """

    history: int
    horizon: int
    cycle: int
    targets: int
    covariates: int
    calendar: int
    quantiles: int


def _flat(x: torch.Tensor) -> torch.Tensor:
    """``(B, cycles, cycle, columns)`` to one token per cycle, ``(B, cycles, cycle*columns)``."""
    return x.flatten(2)


class Residual(nn.Module):
    """Adds the network's output to the profile forecast; ``head`` is the last layer."""

    head: nn.Linear

    def residual(self, w: Window) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, w: Window) -> torch.Tensor:
        r = self.residual(w)
        return w.future_base.unsqueeze(-1) + r.view(*w.future_base.shape, -1)


def _cycle_tokens(w: Window) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder tokens (residual, profile, calendar, covariates) and decoder tokens (profile,
    calendar, covariates), one per cycle."""
    enc = torch.cat(
        [_flat(w.past - w.past_base), _flat(w.past_base), w.past_cal, _flat(w.past_cov)], -1
    )
    dec = torch.cat([_flat(w.future_base), w.future_cal, _flat(w.future_cov)], -1)
    return enc, dec


class ReCycle(Residual):
    """Encoder-decoder Transformer over one token per cycle, learning the residual."""

    def __init__(self, shape: Shape, config: ForecastConfig) -> None:
        super().__init__()
        c, t, v, k = shape.cycle, shape.targets, shape.covariates, shape.calendar
        d = config.width
        self.enc_in = nn.Linear(2 * c * t + k + c * v, d)
        self.dec_in = nn.Linear(c * t + k + c * v, d)
        self.enc_pos = nn.Parameter(torch.randn(shape.history, d) * 0.02)
        self.dec_pos = nn.Parameter(torch.randn(shape.horizon, d) * 0.02)
        self.transformer = nn.Transformer(
            d,
            config.heads,
            config.layers,
            config.layers,
            dim_feedforward=4 * d,
            dropout=config.dropout,
            batch_first=True,
        )
        self.head = nn.Linear(d, c * t * shape.quantiles)

    def residual(self, w: Window) -> torch.Tensor:
        enc, dec = _cycle_tokens(w)
        out = self.transformer(self.enc_in(enc) + self.enc_pos, self.dec_in(dec) + self.dec_pos)
        return self.head(out)


class ResidualMLP(Residual):
    """All cycle tokens of a window, flattened, through an MLP."""

    def __init__(self, shape: Shape, config: ForecastConfig) -> None:
        super().__init__()
        c, t, v, k = shape.cycle, shape.targets, shape.covariates, shape.calendar
        inputs = shape.history * (2 * c * t + k + c * v) + shape.horizon * (c * t + k + c * v)
        layers: list[nn.Module] = []
        for _ in range(config.layers):
            layers += [nn.Linear(inputs, config.width), nn.GELU(), nn.Dropout(config.dropout)]
            inputs = config.width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(inputs, shape.horizon * c * t * shape.quantiles)

    def residual(self, w: Window) -> torch.Tensor:
        enc, dec = _cycle_tokens(w)
        return self.head(self.body(torch.cat([enc.flatten(1), dec.flatten(1)], 1)))


class ResidualLSTM(Residual):
    """An LSTM encoder over the history tokens hands its state to an LSTM decoder over the
    horizon tokens."""

    def __init__(self, shape: Shape, config: ForecastConfig) -> None:
        super().__init__()
        c, t, v, k = shape.cycle, shape.targets, shape.covariates, shape.calendar
        d = config.width
        self.encoder = nn.LSTM(2 * c * t + k + c * v, d, config.layers, batch_first=True)
        self.decoder = nn.LSTM(c * t + k + c * v, d, config.layers, batch_first=True)
        self.head = nn.Linear(d, c * t * shape.quantiles)

    def residual(self, w: Window) -> torch.Tensor:
        enc, dec = _cycle_tokens(w)
        _, state = self.encoder(enc)
        out, _ = self.decoder(dec, state)
        return self.head(out)


class StepTransformer(Residual):
    """The same residual encoder-decoder Transformer with one token per time step."""

    def __init__(self, shape: Shape, config: ForecastConfig) -> None:
        super().__init__()
        t, v, k, d = shape.targets, shape.covariates, shape.calendar, config.width
        self.enc_in = nn.Linear(2 * t + k + v, d)
        self.dec_in = nn.Linear(t + k + v, d)
        self.enc_pos = nn.Parameter(torch.randn(shape.history * shape.cycle, d) * 0.02)
        self.dec_pos = nn.Parameter(torch.randn(shape.horizon * shape.cycle, d) * 0.02)
        self.transformer = nn.Transformer(
            d,
            config.heads,
            config.layers,
            config.layers,
            dim_feedforward=4 * d,
            dropout=config.dropout,
            batch_first=True,
        )
        self.head = nn.Linear(d, t * shape.quantiles)

    @staticmethod
    def _steps(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1, 2)  # (B, cycles, cycle, C) -> (B, steps, C)

    def residual(self, w: Window) -> torch.Tensor:
        cycle = w.past.shape[2]
        past_cal = w.past_cal.repeat_interleave(cycle, 1)
        future_cal = w.future_cal.repeat_interleave(cycle, 1)
        enc = torch.cat(
            [
                self._steps(w.past - w.past_base),
                self._steps(w.past_base),
                past_cal,
                self._steps(w.past_cov),
            ],
            -1,
        )
        dec = torch.cat([self._steps(w.future_base), future_cal, self._steps(w.future_cov)], -1)
        out = self.transformer(self.enc_in(enc) + self.enc_pos, self.dec_in(dec) + self.dec_pos)
        return self.head(out)


class DLinear(nn.Module):
    """Decomposition-linear: moving-average trend and remainder, each mapped linearly over
    time, shared across targets."""

    def __init__(self, shape: Shape, config: ForecastConfig, kernel: int = 25) -> None:
        super().__init__()
        steps_in, steps_out = shape.history * shape.cycle, shape.horizon * shape.cycle
        self.kernel = kernel
        self.quantiles = shape.quantiles
        self.trend = nn.Linear(steps_in, steps_out * shape.quantiles)
        self.remainder = nn.Linear(steps_in, steps_out * shape.quantiles)

    def forward(self, w: Window) -> torch.Tensor:
        b, _, c, t = w.past.shape
        x = w.past.flatten(1, 2).transpose(1, 2)  # (B, targets, steps)
        pad = (self.kernel - 1) // 2
        padded = torch.cat(
            [x[..., :1].expand(-1, -1, pad), x, x[..., -1:].expand(-1, -1, self.kernel - 1 - pad)],
            -1,
        )
        trend = nn.functional.avg_pool1d(padded, self.kernel, stride=1)
        out = self.trend(trend) + self.remainder(x - trend)  # (B, targets, F*C*Q)
        horizon = w.future_base.shape[1]
        out = out.view(b, t, horizon, c, self.quantiles)
        return out.permute(0, 2, 3, 1, 4)


NETWORKS = {
    "recycle": ReCycle,
    "mlp": ResidualMLP,
    "lstm": ResidualLSTM,
    "transformer": StepTransformer,
    "dlinear": DLinear,
}
WIDTHLESS = ("dlinear",)
"""Networks whose size does not depend on ``width`` (linear maps of the history)."""


def build_network(shape: Shape, config: ForecastConfig) -> nn.Module:
    """The network ``config.model`` for windows of ``shape``.

    A residual network's last layer starts at zero, so that training starts from the profile
    forecast and moves away from it only where the data say so (with a random last layer,
    a short training left noise on top of a good profile).
    """
    network = NETWORKS[config.model](shape, config)
    if isinstance(network, Residual):
        nn.init.zeros_(network.head.weight)
        nn.init.zeros_(network.head.bias)
    return network


def pinball_loss(
    forecast: torch.Tensor, target: torch.Tensor, levels: torch.Tensor
) -> torch.Tensor:
    """Mean pinball (quantile) loss; for the single level 0.5 it is half the L1 loss.

    Args:
        forecast: ``(..., quantiles)``.
        target: ``(...)``.
        levels: The quantile levels, ``(quantiles,)``.
    """
    error = target.unsqueeze(-1) - forecast
    return torch.maximum(levels * error, (levels - 1) * error).mean()
