"""Jigsaw: WeatherMixer sharded over domain (D) × tensor (M) ranks, nothing stored twice.

Layout on rank (d, m) — activations ``x[B, T_d, C_m]``: tokens split into D latitude bands of
patch rows, channels into M parts. The rank reads from disk only its band and its subset of the
input channels (state channels ``S_m`` and extra channels ``E_m``) and predicts exactly the state
channels ``S_m`` on its band, so the autoregressive rollout needs no data movement.

Every parameter has one slicing axis: the slice a rank *uses* is picked by its tensor index m
(embedding columns of its channels, C_m, H_c,m, head rows of S_m) or by its domain index d
(token-mixing columns/rows T_d, hidden H_t,d). The ranks of the other axis use the same slice on
different data, so they store it as flat 1/G shards and gather it on use (ZeRO-3 inside the
model-parallel group). Each parameter and its AdamW state therefore exist exactly once across
D × M ranks (up to < G elements of padding per parameter).

Per layer (P = partial sums; RS = reduce-scatter, AG = all-gather, AR = all-reduce):

- embedding: ``[T_d, F_m] @ W_e[:, F_m]ᵀ`` → P ``[T_d, C]`` → RS over M → ``[T_d, C_m]``
- LayerNorm: per-token Σx and Σx² AR over M (``[B, T_d, 2]``)
- token MLP: ``W1[:, T_d] @ z[T_d, C_m]`` → P ``[H_t, C_m]`` → RS over D → ``[H_t,d, C_m]``;
  GELU; ``W2[T_d, :] @ AG_D(a)`` → ``[T_d, C_m]``
- channel MLP: ``AG_M(z)[T_d, C] @ W3[H_c,m, :]ᵀ`` → GELU → ``@ W4[:, H_c,m]ᵀ`` → P ``[T_d, C]``
  → RS over M
- head: ``z[T_d, C_m] @ W_h[:, C_m]ᵀ`` → P ``[T_d, F_out]`` → RS over M into the blocks of S_m

The token-mixing hidden state is reduce-scattered over D, so it is not replicated either.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from weathermixer.collectives import (
    Group,
    all_reduce,
    gathered_param,
    scatter_along,
    scatter_blocks,
    sharded_linear,
)
from weathermixer.grid import GridSpec, ProcessGrid, check_grid
from weathermixer.model import (
    ModelConfig,
    initial_value,
    parameter_shapes,
    patchify,
    rollout,
    unpatchify,
)


def split_range(n: int, parts: int, k: int) -> range:
    """One of nearly equal contiguous pieces of ``range(n)`` (as numpy's ``array_split``).

    Args:
        n: Items.
        parts: Pieces.
        k: Which piece.
    """
    sizes = [len(a) for a in np.array_split(np.arange(n), parts)]
    start = sum(sizes[:k])
    return range(start, start + sizes[k])


@dataclass(frozen=True)
class ParamSpec:
    """How one parameter is cut.

    Attributes:
        name: The parameter's name in ``WeatherMixer``.
        shape: Its full shape.
        dim: The dimension that is sliced.
        axis: Whose index picks the slice: ``"d"`` (domain) or ``"m"`` (tensor).
    """

    name: str
    shape: tuple[int, ...]
    dim: int
    axis: str


def _slicing(name: str) -> tuple[int, str]:
    """(dim, axis) of a parameter from its name."""
    layer, kind = name.rsplit(".", 1)
    layer = layer.rsplit(".", 1)[-1]
    if layer in ("token_fc1",):
        return (1, "d") if kind == "weight" else (0, "d")
    if layer == "token_fc2":
        return 0, "d"
    if layer in ("channel_fc2", "head", "embed") and kind == "weight":
        return 1, "m"
    return 0, "m"


class Layout:
    """Which part of every parameter, channel and grid row belongs to rank (d, m) of a D×M grid.

    A pure function of the model shape and the grid, so checkpoints written on one grid can be
    reassembled and resharded for another without any process group.

    Args:
        cfg: The model, with its channel counts and grid.
        spec: The domain × tensor grid.

    Raises:
        UserError: The grid does not fit the model.
    """

    def __init__(self, cfg: ModelConfig, spec: GridSpec) -> None:
        check_grid(spec, spec.size, cfg)
        self.cfg, self.spec = cfg, spec
        self.params = [
            ParamSpec(name, shape, *_slicing(name)) for name, shape in parameter_shapes(cfg).items()
        ]

    # --- data and activations ----------------------------------------------------------
    def state_channels(self, m: int) -> range:
        """State channels of tensor rank ``m``.

        Args:
            m: The tensor index.
        """
        return split_range(self.cfg.state_channels, self.spec.tensor, m)

    def extra_channels(self, m: int) -> range:
        """Extra channels of tensor rank ``m``.

        Args:
            m: The tensor index.
        """
        return split_range(self.cfg.extra_channels, self.spec.tensor, m)

    def rows(self, d: int) -> slice:
        """Grid rows of domain rank ``d``.

        Args:
            d: The domain index.
        """
        band = self.cfg.patch_rows // self.spec.domain
        return slice(d * band * self.cfg.patch, (d + 1) * band * self.cfg.patch)

    def tokens(self, d: int) -> range:
        """Tokens (patches) of domain rank ``d``.

        Args:
            d: The domain index.
        """
        per = self.cfg.tokens // self.spec.domain
        return range(d * per, (d + 1) * per)

    def in_features(self, m: int) -> list[int]:
        """Embedding columns of tensor rank ``m``: its state channels at every history step,
        then its extra channels (input order: history × state channels, then extras).

        Args:
            m: The tensor index.
        """
        cfg, p2 = self.cfg, self.cfg.patch**2
        v = cfg.state_channels
        chans = [h * v + c for h in range(cfg.history) for c in self.state_channels(m)]
        chans += [cfg.history * v + e for e in self.extra_channels(m)]
        return [c * p2 + k for c in chans for k in range(p2)]

    def out_sizes(self) -> tuple[int, ...]:
        """Head outputs of each tensor rank (its state channels × patch²)."""
        p2 = self.cfg.patch**2
        return tuple(len(self.state_channels(m)) * p2 for m in range(self.spec.tensor))

    # --- parameters ---------------------------------------------------------------------
    def index(self, p: ParamSpec, d: int, m: int) -> list[int]:
        """Indices along ``p.dim`` of the slice rank (d, m) uses.

        Args:
            p: The parameter.
            d: The rank's domain index.
            m: The rank's tensor index.
        """
        cfg, spec = self.cfg, self.spec
        size = p.shape[p.dim]
        if p.axis == "d":
            if p.name.endswith("token_fc1.bias"):
                return list(split_range(cfg.token_hidden, spec.domain, d))
            return list(self.tokens(d))
        if p.name.startswith("embed.") and p.dim == 1:
            return self.in_features(m)
        if p.name.startswith("head.") and p.dim == 0:
            p2 = cfg.patch**2
            return [c * p2 + k for c in self.state_channels(m) for k in range(p2)]
        return list(split_range(size, spec.tensor, m))

    def used_shape(self, p: ParamSpec, d: int, m: int) -> tuple[int, ...]:
        """Shape of the slice rank (d, m) uses.

        Args:
            p: The parameter.
            d: The rank's domain index.
            m: The rank's tensor index.
        """
        shape = list(p.shape)
        shape[p.dim] = len(self.index(p, d, m))
        return tuple(shape)

    def group_of(self, p: ParamSpec, d: int, m: int) -> tuple[int, int]:
        """(group size, position) of the ranks sharing the slice rank (d, m) uses.

        Args:
            p: The parameter.
            d: The rank's domain index.
            m: The rank's tensor index.
        """
        return (self.spec.domain, d) if p.axis == "m" else (self.spec.tensor, m)

    def shard(self, full: torch.Tensor, p: ParamSpec, d: int, m: int) -> torch.Tensor:
        """Rank (d, m)'s flat shard of a full tensor.

        Args:
            full: The full-size parameter.
            p: The parameter.
            d: The rank's domain index.
            m: The rank's tensor index.
        """
        used = full.index_select(p.dim, torch.tensor(self.index(p, d, m))).reshape(-1)
        size, pos = self.group_of(p, d, m)
        per = -(-used.numel() // size)
        used = torch.nn.functional.pad(used, (0, per * size - used.numel()))
        return used[pos * per : (pos + 1) * per].clone()

    def assemble(self, p: ParamSpec, shards: dict[tuple[int, int], torch.Tensor]) -> torch.Tensor:
        """The full tensor from the shards of all ranks.

        Args:
            p: The parameter.
            shards: The flat shard of every (d, m).
        """
        full = torch.zeros(p.shape, dtype=next(iter(shards.values())).dtype)
        for d in range(self.spec.domain):
            for m in range(self.spec.tensor):
                size, _ = self.group_of(p, d, m)
                members = [(k, m) if p.axis == "m" else (d, k) for k in range(size)]
                flat = torch.cat([shards[key] for key in members])
                shape = self.used_shape(p, d, m)
                used = flat[: int(np.prod(shape))].view(shape)
                full.index_copy_(p.dim, torch.tensor(self.index(p, d, m)), used)
        return full


class SplitLayerNorm(torch.autograd.Function):
    """LayerNorm of ``x[..., C_m]`` whose channels are split over ``group`` (C in total).

    Per-token Σx and Σx² are all-reduced (``[..., 2]``), and in backward Σ ĝ and Σ ĝ·x̂; like
    PyTorch's fused LayerNorm it saves only x̂ and 1/σ, so no extra activation is kept.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
        group: Group,
        channels: int,
    ) -> torch.Tensor:
        """Normalise ``x`` over all ``channels`` of the group.

        Args:
            ctx: Autograd's context.
            x: This rank's channels, ``[..., C_m]``.
            weight: This rank's part of the scale.
            bias: This rank's part of the shift.
            group: The ranks that hold the other channels.
            channels: Channels in total (C).
        """
        sums = all_reduce(torch.stack([x.sum(-1), (x * x).sum(-1)], dim=-1), group) / channels
        mean = sums[..., :1]
        rstd = torch.rsqrt(sums[..., 1:] - mean * mean + 1e-5)
        xhat = (x - mean) * rstd
        ctx.save_for_backward(xhat, rstd, weight)
        ctx.group, ctx.channels = group, channels
        return xhat * weight + bias

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        """Gradients of the input, weight and bias.

        Args:
            ctx: Autograd's context.
            grad: Gradient of the output.
        """
        xhat, rstd, weight = ctx.saved_tensors
        lead = tuple(range(grad.dim() - 1))
        grad_weight = (grad * xhat).sum(lead)
        grad_bias = grad.sum(lead)
        g = grad * weight
        sums = torch.stack([g.sum(-1), (g * xhat).sum(-1)], dim=-1)
        sums = all_reduce(sums, ctx.group) / ctx.channels
        grad_x = rstd * (g - sums[..., :1] - xhat * sums[..., 1:])
        return grad_x, grad_weight, grad_bias, None, None


def autocast_dtype(device_type: str) -> torch.dtype:
    """The compute dtype autocast asks for here, else float32.

    Args:
        device_type: ``"cpu"`` or ``"cuda"``.
    """
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
        if torch.is_autocast_enabled(device_type):
            return torch.get_autocast_dtype(device_type)
        return torch.float32
    if device_type == "cuda" and torch.is_autocast_enabled():
        return torch.get_autocast_gpu_dtype()
    if device_type == "cpu" and torch.is_autocast_cpu_enabled():
        return torch.get_autocast_cpu_dtype()
    return torch.float32


def _key(name: str) -> str:
    return name.replace(".", "__")


class JigsawWeatherMixer(nn.Module):
    """This rank's part of a WeatherMixer; same outputs and gradients as the full model.

    ``forward(states, extras)`` takes the rank's band and channels (``[B, history, |S_m|, rows,
    W]`` and ``[B, |E_m|, rows, W]``, see ``Layout``) and returns the next state for S_m on
    the band. Built with the same ``cfg`` as a ``WeatherMixer``, it starts from the same
    initial values.

    Args:
        cfg: The model, with its channel counts and grid.
        grid: This rank's place in the process grid.
        full_state: Full-size initial parameters, e.g. from a checkpoint (default: the seeded
            initialisation).
    """

    def __init__(
        self,
        cfg: ModelConfig,
        grid: ProcessGrid,
        full_state: dict[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.cfg, self.grid = cfg, grid
        self.layout = Layout(cfg, grid.spec)
        d, m = grid.d, grid.m
        self.specs = {p.name: p for p in self.layout.params}
        self.shards = nn.ParameterDict()
        self.used_shapes: dict[str, tuple[int, ...]] = {}
        for p in self.layout.params:
            full = full_state[p.name] if full_state is not None else initial_value(cfg, p.name)
            self.shards[_key(p.name)] = nn.Parameter(self.layout.shard(full.float(), p, d, m))
            self.used_shapes[p.name] = self.layout.used_shape(p, d, m)
        self.state_channels = self.layout.state_channels(m)
        self.extra_channels = self.layout.extra_channels(m)
        self.rows = self.layout.rows(d)
        self.register_buffer("residual_scale", torch.ones(len(self.state_channels)))

    # --- parameters ---------------------------------------------------------------------
    def named_shards(self) -> Iterator[tuple[str, nn.Parameter]]:
        """(full parameter name, this rank's flat shard) in the model's order."""
        for p in self.layout.params:
            yield p.name, self.shards[_key(p.name)]

    def _group(self, name: str) -> Group:
        return self.grid.domain if self.specs[name].axis == "m" else self.grid.tensor

    def _param(self, name: str, dtype: torch.dtype | None = None) -> torch.Tensor:
        value = gathered_param(self.shards[_key(name)], self._group(name), self.used_shapes[name])
        return value if dtype is None else value.to(dtype)

    def _linear(
        self, x: torch.Tensor, name: str, x_group: Group | None, dtype: torch.dtype
    ) -> torch.Tensor:
        shard = self.shards[_key(name + ".weight")]
        return sharded_linear(
            x,
            shard,
            self.used_shapes[name + ".weight"],
            self._group(name + ".weight"),
            x_group,
            dtype,
        )

    def _norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """LayerNorm over channels split across the tensor group (see ``SplitLayerNorm``)."""
        return SplitLayerNorm.apply(
            x.float(),
            self._param(name + ".weight"),
            self._param(name + ".bias"),
            self.grid.tensor,
            self.cfg.embed_dim,
        )

    # --- forward ------------------------------------------------------------------------
    def forward(self, states: torch.Tensor, extras: torch.Tensor) -> torch.Tensor:
        """One step on this rank's part: -> the next state of S_m on the band.

        Args:
            states: Normalised states, ``[B, history, |S_m|, rows, W]``.
            extras: Normalised extra channels, ``[B, |E_m|, rows, W]``.
        """
        cfg, g = self.cfg, self.grid
        dtype = autocast_dtype(states.device.type)
        tokens = patchify(torch.cat([states.flatten(1, 2), extras], dim=1), cfg.patch)
        x = scatter_along(self._linear(tokens, "embed", None, dtype), g.tensor, -1)
        x = x.float() + self._param("embed.bias")
        for i in range(cfg.depth):
            b = f"blocks.{i}."
            z = self._norm(x, b + "token_norm").transpose(1, 2)  # [B, C_m, T_d]
            h = scatter_along(self._linear(z, b + "token_fc1", None, dtype), g.domain, -1)
            a = nn.functional.gelu(h + self._param(b + "token_fc1.bias", h.dtype))
            z = self._linear(a, b + "token_fc2", g.domain, dtype)
            x = x + (z + self._param(b + "token_fc2.bias", z.dtype)).transpose(1, 2)
            z = self._norm(x, b + "channel_norm")
            h = self._linear(z, b + "channel_fc1", g.tensor, dtype)
            a = nn.functional.gelu(h + self._param(b + "channel_fc1.bias", h.dtype))
            z = scatter_along(self._linear(a, b + "channel_fc2", None, dtype), g.tensor, -1)
            x = x + z + self._param(b + "channel_fc2.bias", z.dtype)
        out = self._linear(self._norm(x, "norm"), "head", None, dtype)
        out = scatter_blocks(out, g.tensor, self.layout.out_sizes())
        out = out + self._param("head.bias", out.dtype)
        rows = cfg.patch_rows // g.spec.domain
        delta = unpatchify(out, len(self.state_channels), rows, cfg.patch_cols, cfg.patch)
        return states[:, -1] + self.residual_scale[None, :, None, None] * delta.to(states.dtype)

    def rollout(self, states: torch.Tensor, extras: torch.Tensor) -> torch.Tensor:
        """Autoregressive forecast on this rank's part: -> ``[B, K, |S_m|, rows, W]``.

        Args:
            states: Normalised states, ``[B, history, |S_m|, rows, W]``.
            extras: Extra channels of each step, ``[B, K, |E_m|, rows, W]``.
        """
        return rollout(self, states, extras)

    # --- whole-model views (collective over the model group) -----------------------------
    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """The full parameters, assembled on every rank of the model group (collective)."""
        return self.assemble({name: s.detach() for name, s in self.named_shards()})

    def assemble(self, local: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Full tensors from every rank's shard-shaped tensors (collective over the model
        group).

        Args:
            local: Name -> this rank's tensor shaped like its shard (e.g. gradients).
        """
        import torch.distributed as dist

        g = self.grid
        mine = ((g.d, g.m), {k: v.cpu() for k, v in local.items()})
        if g.model.size > 1:
            parts: list = [None] * g.model.size
            dist.all_gather_object(parts, mine, group=g.model.pg)
        else:
            parts = [mine]
        by_rank = dict(parts)
        return {
            p.name: self.layout.assemble(p, {k: v[p.name] for k, v in by_rank.items()})
            for p in self.layout.params
        }
