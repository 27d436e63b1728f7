"""WeatherMixer: an MLP-Mixer for gridded global weather, as a plain ``nn.Module``.

The lat–lon fields (state and extra channels) are cut into ``p × p`` patches (tokens); each block
mixes across tokens with an MLP of fixed hidden size ``token_hidden`` (per channel, position
specific, so no positional embedding is needed) and across channels with a second MLP (per
token), both pre-normalised with LayerNorm and residual; a head maps each token back to its
``p × p`` patch of the state channels. The network predicts the change of the normalised state
over one lead time, scaled per channel by ``residual_scale`` (std of the change / std of the
state), and ``WeatherMixer.rollout`` feeds its forecasts back autoregressively.

Cost: with the token hidden size fixed, every matmul is linear in the number of tokens, so
time and memory grow linearly with the number of grid points (see ``flops_per_sample``).
Parameters are initialised from (seed, parameter name) alone, so a sharded copy
(``weathermixer.jigsaw``) starts from exactly the same values without materialising the model.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

import torch
from torch import nn

from shared_hpc import UserError


@dataclass(frozen=True)
class ModelConfig:
    """Size and shape of a WeatherMixer.

    The size is the user's choice; the channel counts and the grid describe the data, so a run
    leaves them unset and takes them from the data (``for_data``).

    Attributes:
        patch: Side of the square patches the grid is cut into (one token per patch).
        embed_dim: Channels of a token inside the mixer blocks.
        token_hidden: Hidden size of the token-mixing MLPs (fixed, so the cost grows linearly
            with the grid points).
        channel_hidden: Hidden size of the channel-mixing MLPs.
        depth: Number of mixer blocks.
        history: Input states, oldest first (2: the model also sees the current tendency).
        seed: Seed of the initial parameters.
        state_channels: Channels the model predicts; none: those of the data.
        extra_channels: Input-only channels (insolation, static fields); none: those of the
            data.
        grid: Latitude rows and longitude columns; none: the data's grid.
    """

    patch: int = 2
    embed_dim: int = 128
    token_hidden: int = 256
    channel_hidden: int = 512
    depth: int = 4
    history: int = 2
    seed: int = 0
    state_channels: int | None = None
    extra_channels: int | None = None
    grid: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        sizes = ("patch", "embed_dim", "token_hidden", "channel_hidden", "depth", "history")
        for name in (*sizes, "state_channels"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"model.{name} must be >= 1, got {value}")
        if self.extra_channels is not None and self.extra_channels < 0:
            raise UserError(f"model.extra_channels must be >= 0, got {self.extra_channels}")
        if self.grid is not None:
            rows, cols = self.grid
            if rows < 1 or cols < 1:
                raise UserError(f"model.grid must be at least 1x1, got {rows}x{cols}")
            if rows % self.patch or cols % self.patch:
                raise UserError(
                    f"grid {rows}x{cols} is not divisible by the patch size {self.patch}"
                )

    def for_data(
        self, state_channels: int, extra_channels: int, grid: tuple[int, int]
    ) -> ModelConfig:
        """This model with the data's channel counts and grid.

        Args:
            state_channels: Channels of the data's state.
            extra_channels: Input-only channels the data provides.
            grid: The data's latitude rows and longitude columns.

        Raises:
            UserError: A channel count or grid set in this config differs from the data's.
        """
        shape = {"state_channels": state_channels, "extra_channels": extra_channels, "grid": grid}
        clashes = [
            f"model.{name} is {getattr(self, name)} but the data has {value}"
            for name, value in shape.items()
            if getattr(self, name) not in (None, value)
        ]
        if clashes:
            raise UserError("; ".join(clashes) + " (leave it unset to take the data's)")
        return replace(self, **shape)

    def require_shape(self) -> None:
        """Check that a network can be built: the channel counts and the grid are set.

        Raises:
            UserError: One of them is unset (set it, or take it from the data: ``for_data``).
        """
        if None in (self.state_channels, self.extra_channels, self.grid):
            raise UserError(
                "the model needs model.state_channels, model.extra_channels and model.grid "
                "(a training run takes them from the data)"
            )

    @property
    def patch_rows(self) -> int:
        return self.grid[0] // self.patch

    @property
    def patch_cols(self) -> int:
        return self.grid[1] // self.patch

    @property
    def tokens(self) -> int:
        return self.patch_rows * self.patch_cols

    @property
    def in_channels(self) -> int:
        return self.history * self.state_channels + self.extra_channels

    @property
    def in_features(self) -> int:
        return self.in_channels * self.patch**2

    @property
    def out_features(self) -> int:
        return self.state_channels * self.patch**2


def parameter_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every parameter, in the module's order.

    Args:
        cfg: The model, with its channel counts and grid.
    """
    c, t = cfg.embed_dim, cfg.tokens
    shapes: dict[str, tuple[int, ...]] = {
        "embed.weight": (c, cfg.in_features),
        "embed.bias": (c,),
    }
    for i in range(cfg.depth):
        b = f"blocks.{i}."
        shapes |= {
            b + "token_norm.weight": (c,),
            b + "token_norm.bias": (c,),
            b + "token_fc1.weight": (cfg.token_hidden, t),
            b + "token_fc1.bias": (cfg.token_hidden,),
            b + "token_fc2.weight": (t, cfg.token_hidden),
            b + "token_fc2.bias": (t,),
            b + "channel_norm.weight": (c,),
            b + "channel_norm.bias": (c,),
            b + "channel_fc1.weight": (cfg.channel_hidden, c),
            b + "channel_fc1.bias": (cfg.channel_hidden,),
            b + "channel_fc2.weight": (c, cfg.channel_hidden),
            b + "channel_fc2.bias": (c,),
        }
    shapes |= {
        "norm.weight": (c,),
        "norm.bias": (c,),
        "head.weight": (cfg.out_features, c),
        "head.bias": (cfg.out_features,),
    }
    return shapes


def initial_value(cfg: ModelConfig, name: str) -> torch.Tensor:
    """The initial value of one parameter, from (seed, name) alone.

    Linear layers: PyTorch's default uniform(±1/√fan_in) for weight and bias; the head is scaled
    by 0.1 so the first forecasts stay close to persistence. LayerNorm: ones and zeros.

    Args:
        cfg: The model, with its channel counts and grid.
        name: The parameter's name.
    """
    shapes = parameter_shapes(cfg)
    shape = shapes[name]
    if "norm." in name:
        return torch.ones(shape) if name.endswith("weight") else torch.zeros(shape)
    layer = name.rsplit(".", 1)[0]
    fan_in = shapes[layer + ".weight"][1]
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + zlib.crc32(name.encode()))
    value = (torch.rand(shape, generator=gen) * 2.0 - 1.0) / fan_in**0.5
    return value * 0.1 if layer == "head" else value


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, (H/p)(W/p), C·p·p] with features ordered (channel, row, col).

    Args:
        x: The fields.
        patch: The patch side p.
    """
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // patch) * (w // patch), c * patch * patch)


def unpatchify(
    tokens: torch.Tensor, channels: int, rows: int, cols: int, patch: int
) -> torch.Tensor:
    """Inverse of ``patchify``: -> [B, C, rows·p, cols·p].

    Args:
        tokens: [B, rows·cols, C·p·p].
        channels: C.
        rows: Patch rows.
        cols: Patch columns.
        patch: The patch side p.
    """
    b = tokens.shape[0]
    x = tokens.reshape(b, rows, cols, channels, patch, patch).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, channels, rows * patch, cols * patch)


class MixerBlock(nn.Module):
    """Token-mixing MLP across patches, then channel-mixing MLP per patch; pre-norm, residual.

    Args:
        cfg: The model, with its channel counts and grid.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c, t = cfg.embed_dim, cfg.tokens
        self.token_norm = nn.LayerNorm(c)
        self.token_fc1 = nn.Linear(t, cfg.token_hidden)
        self.token_fc2 = nn.Linear(cfg.token_hidden, t)
        self.channel_norm = nn.LayerNorm(c)
        self.channel_fc1 = nn.Linear(c, cfg.channel_hidden)
        self.channel_fc2 = nn.Linear(cfg.channel_hidden, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mix tokens, then channels.

        Args:
            x: Tokens, ``[B, T, C]``.
        """
        z = self.token_norm(x).transpose(1, 2)  # [B, C, T]
        z = self.token_fc2(nn.functional.gelu(self.token_fc1(z)))
        x = x + z.transpose(1, 2)
        z = self.channel_fc2(nn.functional.gelu(self.channel_fc1(self.channel_norm(x))))
        return x + z


class WeatherMixer(nn.Module):
    """Single-process WeatherMixer: ``forward(states, extras)`` -> next normalised state.

    ``states`` holds the last ``history`` states (oldest first): with two, the network sees
    the current tendency, as GraphCast does.

    Args:
        cfg: The model, with its channel counts and grid.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        cfg.require_shape()
        self.cfg = cfg
        self.embed = nn.Linear(cfg.in_features, cfg.embed_dim)
        self.blocks = nn.ModuleList(MixerBlock(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.embed_dim)
        self.head = nn.Linear(cfg.embed_dim, cfg.out_features)
        self.register_buffer("residual_scale", torch.ones(cfg.state_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set every parameter to its seeded initial value (``initial_value``)."""
        with torch.no_grad():
            for name, param in self.named_parameters():
                param.copy_(initial_value(self.cfg, name))

    def forward(self, states: torch.Tensor, extras: torch.Tensor) -> torch.Tensor:
        """The next normalised state, ``[B, V, H, W]``.

        Args:
            states: Normalised states, oldest first, ``[B, history, V, H, W]``.
            extras: Normalised extra channels, ``[B, E, H, W]``.
        """
        cfg = self.cfg
        x = torch.cat([states.flatten(1, 2), extras], dim=1)
        x = self.embed(patchify(x, cfg.patch))
        for block in self.blocks:
            x = block(x)
        out = self.head(self.norm(x))
        delta = unpatchify(out, cfg.state_channels, cfg.patch_rows, cfg.patch_cols, cfg.patch)
        return states[:, -1] + self.residual_scale[None, :, None, None] * delta.to(states.dtype)

    def rollout(self, states: torch.Tensor, extras: torch.Tensor) -> torch.Tensor:
        """Autoregressive forecast: -> states ``[B, K, V, H, W]``.

        Args:
            states: Normalised states, oldest first, ``[B, history, V, H, W]``.
            extras: Extra channels of each step, ``[B, K, E, H, W]``.
        """
        return rollout(self, states, extras)


def rollout(step: nn.Module, states: torch.Tensor, extras: torch.Tensor) -> torch.Tensor:
    """Feed each forecast back as the newest input state, K = extras.shape[1] times.

    Args:
        step: A module mapping (states, extras of one step) to the next state.
        states: The input states, oldest first, ``[B, history, ...]``.
        extras: Extra channels of each step, ``[B, K, ...]``.
    """
    out = []
    for k in range(extras.shape[1]):
        new = step(states, extras[:, k])
        out.append(new)
        states = torch.cat([states[:, 1:], new[:, None]], dim=1)
    return torch.stack(out, dim=1)


def flops_per_sample(cfg: ModelConfig) -> dict[str, int]:
    """Matmul FLOPs of one forward pass for one sample (2 per multiply–add).

    embed 2·T·F_in·C; per block token MLP 4·C·T·H_t and channel MLP 4·T·C·H_c; head
    2·T·C·F_out. A training step costs 3× forward (backward = 2× forward). Elementwise work
    (LayerNorm, GELU, residuals) is left out, as usual for model FLOP utilisation.

    Args:
        cfg: The model, with its channel counts and grid.
    """
    t, c = cfg.tokens, cfg.embed_dim
    per_block = 4 * c * t * cfg.token_hidden + 4 * t * c * cfg.channel_hidden
    parts = {
        "embed": 2 * t * cfg.in_features * c,
        "blocks": cfg.depth * per_block,
        "head": 2 * t * c * cfg.out_features,
    }
    parts["forward"] = sum(parts.values())
    parts["train_step"] = 3 * parts["forward"]
    return parts


def parameter_count(cfg: ModelConfig) -> int:
    """Parameters of the whole model.

    Args:
        cfg: The model, with its channel counts and grid.
    """
    total = 0
    for shape in parameter_shapes(cfg).values():
        n = 1
        for s in shape:
            n *= s
        total += n
    return total


def training_bytes(
    cfg: ModelConfig, batch: int, model_ranks: int = 1, graded_steps: int = 1
) -> int:
    """Memory of one rank's training, roughly, to refuse a size that cannot fit before
    building it.

    Float32 parameters, gradients and AdamW's two moments (16 bytes a parameter), and the
    activations autograd saves (per block and sample: LayerNorm and MLP inputs and GELU
    outputs, about ``4·T·C + 2·C·H_t + 2·T·H_c`` floats), both split over the model-parallel
    ranks as Jigsaw stores them.

    Args:
        cfg: The model, with its channel counts and grid.
        batch: Samples per replica and step.
        model_ranks: D·M, the ranks one model is split over.
        graded_steps: Rollout steps back-propagated through.
    """
    t, c = cfg.tokens, cfg.embed_dim
    per_block = 4 * t * c + 2 * c * cfg.token_hidden + 2 * t * cfg.channel_hidden
    per_step = cfg.depth * per_block + t * (cfg.in_features + 2 * c + cfg.out_features)
    activations = 4 * batch * graded_steps * per_step
    return (16 * parameter_count(cfg) + activations) // model_ranks
