"""FourCastNet's Adaptive Fourier Neural Operator (AFNO), in one file.

Guibas et al. (2021) and Pathak et al. (2022): the input grid is cut into patches (tokens); each
block mixes the tokens *globally* in the Fourier domain: a 2-D real FFT over the token grid, a
two-layer MLP on the channels of every frequency that is block-diagonal (``blocks`` independent
blocks, complex weights shared across frequencies), soft-thresholding (shrinkage) that makes
the mixing sparse, and the inverse FFT back to tokens. A channel MLP follows, each part in a
pre-norm residual. A linear head turns every token back into its patch of the output grid.

The cost of the token mixing grows as ``N log N`` in the number of tokens, which is why the
paper's weather model (patch 8 on a 720 x 1440 grid) is trainable at all.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AFNO", "AFNOMixing"]


class AFNOMixing(nn.Module):
    """Fourier-domain token mixing of a ``(batch, height, width, channels)`` token grid.

    Args:
        dim: Channels per token.
        blocks: Diagonal blocks of the complex MLP; divides ``dim``.
        sparsity: Lambda of the soft shrinkage of the MLP's output in the Fourier domain.
        hidden_factor: Hidden width of each block relative to the block's width.
    """

    def __init__(self, dim: int, blocks: int, sparsity: float, hidden_factor: int = 1) -> None:
        super().__init__()
        if dim % blocks:
            raise ValueError(f"blocks ({blocks}) must divide dim ({dim})")
        self.blocks, self.size, self.sparsity = blocks, dim // blocks, sparsity
        hidden = self.size * hidden_factor
        # (real, imaginary) parts of complex weights, one matrix per block
        self.w1 = nn.Parameter(torch.randn(2, blocks, self.size, hidden) / math.sqrt(self.size))
        self.b1 = nn.Parameter(torch.zeros(2, blocks, hidden))
        self.w2 = nn.Parameter(torch.randn(2, blocks, hidden, self.size) / math.sqrt(hidden))
        self.b2 = nn.Parameter(torch.zeros(2, blocks, self.size))

    @staticmethod
    def _complex_linear(
        real: torch.Tensor, imag: torch.Tensor, w: torch.Tensor, b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mm = "...bi,bio->...bo"
        out_real = torch.einsum(mm, real, w[0]) - torch.einsum(mm, imag, w[1]) + b[0]
        out_imag = torch.einsum(mm, imag, w[0]) + torch.einsum(mm, real, w[1]) + b[1]
        return out_real, out_imag

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, dim = x.shape
        spectrum = torch.fft.rfft2(x.float(), dim=(1, 2), norm="ortho")
        spectrum = spectrum.reshape(batch, height, width // 2 + 1, self.blocks, self.size)
        real, imag = self._complex_linear(spectrum.real, spectrum.imag, self.w1, self.b1)
        real, imag = F.relu(real), F.relu(imag)
        real, imag = self._complex_linear(real, imag, self.w2, self.b2)
        mixed = torch.stack([real, imag], dim=-1)
        mixed = F.softshrink(mixed, lambd=self.sparsity) if self.sparsity > 0 else mixed
        mixed = torch.view_as_complex(mixed.contiguous())
        mixed = mixed.reshape(batch, height, width // 2 + 1, dim)
        out = torch.fft.irfft2(mixed, s=(height, width), dim=(1, 2), norm="ortho")
        return out.to(x.dtype)


class _Block(nn.Module):
    def __init__(self, dim: int, blocks: int, sparsity: float, mlp_ratio: float) -> None:
        super().__init__()
        hidden = max(1, round(dim * mlp_ratio))
        self.norm1 = nn.LayerNorm(dim)
        self.mixing = AFNOMixing(dim, blocks, sparsity)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mixing(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class AFNO(nn.Module):
    """The AFNO forecaster: patch embedding, ``depth`` AFNO blocks, a linear patch head.

    Inputs whose height or width is not a multiple of ``patch`` are padded at the bottom and
    right and the output is cropped back, so any ERA5 grid (721 latitudes) fits.

    Args:
        in_channels: Channels of the input state.
        out_channels: Channels of the forecast.
        grid: Height and width of the input.
        patch: Patch side.
        embed_dim: Channels per token.
        depth: AFNO blocks.
        blocks: Diagonal blocks of each Fourier-domain MLP.
        sparsity: Soft-threshold in the Fourier domain.
        mlp_ratio: Hidden width of the channel MLP relative to ``embed_dim``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        grid: tuple[int, int],
        patch: int = 8,
        embed_dim: int = 64,
        depth: int = 4,
        blocks: int = 8,
        sparsity: float = 0.01,
        mlp_ratio: float = 2.0,
    ) -> None:
        super().__init__()
        self.patch, self.out_channels, self.grid = patch, out_channels, grid
        self.tokens = (math.ceil(grid[0] / patch), math.ceil(grid[1] / patch))
        self.embed = nn.Conv2d(in_channels, embed_dim, kernel_size=patch, stride=patch)
        self.position = nn.Parameter(torch.zeros(1, *self.tokens, embed_dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.layers = nn.ModuleList(
            _Block(embed_dim, blocks, sparsity, mlp_ratio) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, out_channels * patch * patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % self.patch, -width % self.patch
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        tokens = self.embed(x).permute(0, 2, 3, 1) + self.position
        for layer in self.layers:
            tokens = layer(tokens)
        out = self.head(self.norm(tokens))  # (batch, h, w, out * p * p)
        batch, h, w, _ = out.shape
        p = self.patch
        out = out.reshape(batch, h, w, self.out_channels, p, p)
        out = out.permute(0, 3, 1, 4, 2, 5).reshape(batch, self.out_channels, h * p, w * p)
        return out[..., :height, :width]
