"""A WeatherMixer on this rank's part of the process grid: the one interface training,
evaluation and benchmarks use.

Grid 1×1 is the plain ``WeatherMixer`` (wrapped in PyTorch's ``DistributedDataParallel`` when
there are replicas: the pure data-parallel baseline); any other grid is a
``JigsawWeatherMixer``, whose (already sharded) gradients are summed over the replicas in one
bucket.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from weathermixer.collectives import all_reduce, all_reduce_
from weathermixer.data import Shard, latitude_weights
from weathermixer.grid import ProcessGrid
from weathermixer.jigsaw import JigsawWeatherMixer, Layout
from weathermixer.model import ModelConfig, WeatherMixer


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on GPU by default (``"auto"``), on request (``"bf16"``) anywhere.

    Args:
        device: Where the model runs.
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"``.
    """
    use = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if not use:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


class _Rollout(nn.Module):
    """``forward`` = rollout, so DDP sees one forward per backward whatever the rollout."""

    def __init__(self, model: WeatherMixer) -> None:
        super().__init__()
        self.model = model

    def forward(self, state: torch.Tensor, extras: torch.Tensor) -> torch.Tensor:
        return self.model.rollout(state, extras)


class Engine:
    """The model on this rank, with its data shard, loss and gradient synchronisation.

    Args:
        cfg: The model, with its channel counts and grid.
        grid: This rank's place in the process grid.
        device: Where the parameters live.
        full_state: Full-size initial parameters (default: the seeded initialisation).
    """

    def __init__(
        self,
        cfg: ModelConfig,
        grid: ProcessGrid,
        device: torch.device,
        full_state: dict[str, torch.Tensor] | None = None,
    ) -> None:
        self.cfg, self.grid, self.device = cfg, grid, device
        self.layout = Layout(cfg, grid.spec)
        self.jigsaw = grid.spec.size > 1
        if self.jigsaw:
            self.model: nn.Module = JigsawWeatherMixer(cfg, grid, full_state).to(device)
            self.runner: nn.Module = self.model
        else:
            self.model = WeatherMixer(cfg)
            if full_state is not None:
                self.model.load_state_dict(full_state, strict=False)
            self.model.to(device)
            self.runner = _Rollout(self.model)
            if grid.replica.size > 1:
                ddp = nn.parallel.DistributedDataParallel
                # residual_scale is set identically on every rank: no buffer sync per forward
                quiet = (
                    {"forward_sync_buffers": False}
                    if "forward_sync_buffers" in inspect.signature(ddp).parameters
                    else {"broadcast_buffers": False}
                )
                self.runner = ddp(self.runner, process_group=grid.replica.pg, **quiet)
        d, m = grid.d, grid.m
        self.shard = Shard(
            self.layout.rows(d),
            tuple(self.layout.state_channels(m)),
            tuple(self.layout.extra_channels(m)),
        )

    # --- parameters ---------------------------------------------------------------------
    def named_shards(self) -> Iterator[tuple[str, nn.Parameter]]:
        """(full parameter name, this rank's tensor) in a fixed order."""
        if self.jigsaw:
            yield from self.model.named_shards()
        else:
            yield from self.model.named_parameters()

    def local_parameters(self) -> int:
        """Parameters this rank stores."""
        return sum(p.numel() for _, p in self.named_shards())

    def set_residual_scale(self, scale: np.ndarray) -> None:
        """Set the scale of the predicted change of each of this rank's state channels.

        Args:
            scale: Per state channel of the whole model: std of the change over one lead /
                std of the state.
        """
        local = torch.as_tensor(np.asarray(scale)[list(self.shard.state)], dtype=torch.float32)
        self.model.residual_scale.copy_(local.to(self.device))

    # --- forward, loss, gradients -------------------------------------------------------
    def rollout(
        self, state: torch.Tensor, extras: torch.Tensor, grad_steps: int = 0
    ) -> torch.Tensor:
        """Autoregressive forecast of this rank's part: -> ``[B, K, V_l, rows, W]``.

        Args:
            state: The normalised input states, ``[B, history, V_l, rows, W]``.
            extras: The extra channels of each of the K steps, ``[B, K, E_l, rows, W]``.
            grad_steps: If > 0, only the last ``grad_steps`` steps are returned, and only
                they are recorded for backward; the earlier steps run without gradients.
        """
        run = self.model.rollout if self.jigsaw else self.runner
        free = extras.shape[1] - grad_steps if grad_steps else 0
        if free > 0:
            with torch.no_grad():
                early = run(state, extras[:, :free])
            history = torch.cat([state, early], dim=1)[:, -state.shape[1] :]
            return run(history.detach(), extras[:, free:])
        return run(state, extras)

    def loss_weights(self, latitude: np.ndarray) -> torch.Tensor:
        """Latitude × channel weights of the loss for this rank's part, ``[V_l, rows, 1]``.

        Area weights times 1/residual_scale², so errors count in units of the typical change
        per lead.

        Args:
            latitude: Latitudes of all rows of the grid.
        """
        rows = latitude_weights(latitude)[self.shard.rows]
        chan = 1.0 / self.model.residual_scale.detach().cpu().double() ** 2
        w = chan[:, None, None] * torch.as_tensor(rows)[None, :, None]
        return w.float().to(self.device)

    def local_loss(
        self, pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, global_batch: int
    ) -> torch.Tensor:
        """This rank's share of the global weighted MSE (the shares add up to the mean).

        Args:
            pred: The forecast of this rank's part, ``[B, K, V_l, rows, W]``.
            target: The truth, of the same shape.
            weights: ``loss_weights``.
            global_batch: Samples of the global batch (all replicas).
        """
        cfg = self.cfg
        count = global_batch * pred.shape[1] * cfg.state_channels * cfg.grid[0] * cfg.grid[1]
        sq = (pred.float() - target) ** 2 * weights
        if not self.jigsaw:  # DDP averages over replicas itself
            count //= self.grid.replica.size
        return sq.sum() / count

    def global_loss(self, local: torch.Tensor) -> float:
        """The loss of the whole global batch (collective).

        Args:
            local: This rank's ``local_loss``.
        """
        value = local.detach().float().reshape(1)
        if self.jigsaw:
            value = all_reduce(all_reduce(value, self.grid.model), self.grid.replica)
        else:
            value = all_reduce(value, self.grid.replica) / self.grid.replica.size
        return float(value)

    def sync_and_clip(self, max_norm: float) -> float:
        """Sum Jigsaw gradients over replicas and clip them by the global norm (collective).

        Args:
            max_norm: Largest global norm; 0: no clipping.

        Returns:
            The global norm before clipping.
        """
        params = [p for _, p in self.named_shards() if p.grad is not None]
        if self.jigsaw and self.grid.replica.size > 1:
            flat = torch.cat([p.grad.reshape(-1) for p in params])
            all_reduce_(flat, self.grid.replica)
            offset = 0
            for p in params:
                p.grad.copy_(flat[offset : offset + p.numel()].view_as(p.grad))
                offset += p.numel()
        sq = torch.stack([p.grad.float().pow(2).sum() for p in params]).sum().reshape(1)
        if self.jigsaw:
            sq = all_reduce(sq, self.grid.model)
        norm = float(sq.sqrt())
        if max_norm > 0 and norm > max_norm:
            for p in params:
                p.grad.mul_(max_norm / (norm + 1e-6))
        return norm

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """All parameters, full size, on every rank (collective over the model group)."""
        if self.jigsaw:
            return self.model.full_state_dict()
        return {k: v.detach().cpu() for k, v in self.model.named_parameters()}
