"""Low-rank layers ``W = U·S·Vᵀ``: U and V frozen with orthonormal columns, only S trained.

A dense layer's weight, seen as a matrix (``out × in`` for ``Linear``, ``out × in·k`` for a
convolution with k kernel positions), is replaced by its SVD. At the switch S is the diagonal
of singular values, so the layer computes exactly what the dense one did; afterwards S
(``r × r``) is the only trainable part of the weight. ``rotate`` folds an SVD of S into U and V
and cuts the rank; the optimizer's state for S moves along (see ``oialr.optim_state``).

A ``Linear`` runs as three thin products, ``x·V·Sᵀ·Uᵀ``; a convolution as one with the r
filters of Vᵀ followed by a pointwise one with U·S.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Factors", "LowRankConv", "LowRankLayer", "LowRankLinear", "matrix_of", "svd"]

Factors = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""``(U, σ, V)`` of a thin SVD ``M = U·diag(σ)·Vᵀ``, σ descending."""


def matrix_of(weight: torch.Tensor) -> torch.Tensor:
    """A weight as a matrix: ``out × in`` (Linear) or ``out × in·k`` (convolution), a view."""
    return weight.reshape(weight.shape[0], -1)


def svd(matrix: torch.Tensor) -> Factors:
    """Thin SVD in float64 (the bases must stay orthonormal to many digits), in ``matrix``'s
    dtype."""
    u, sigma, vh = torch.linalg.svd(matrix.detach().double(), full_matrices=False)
    return u.to(matrix.dtype), sigma.to(matrix.dtype), vh.mT.to(matrix.dtype)


class LowRankLayer(nn.Module):
    """What both low-rank layers share: the factors, the rank and the rotation.

    Attributes:
        U: Left basis, ``out × r``, orthonormal columns, a buffer (never trained).
        S: The trained ``r × r`` matrix.
        V: Right basis, ``in × r`` (``in·kh·kw × r`` for a convolution), a buffer.
        bias: The dense layer's bias (the same parameter object, still trained).
        full_rank: ``min(out, in)`` of the weight matrix: the rank the layer started from.
    """

    U: torch.Tensor
    V: torch.Tensor

    def _set_factors(
        self, weight: torch.Tensor, bias: nn.Parameter | None, factors: Factors | None
    ) -> None:
        u, sigma, v = svd(matrix_of(weight)) if factors is None else factors
        self.register_buffer("U", u.contiguous())
        self.register_buffer("V", v.contiguous())
        self.S = nn.Parameter(torch.diag(sigma))
        self.bias = bias
        self.full_rank = min(matrix_of(weight).shape)

    @property
    def rank(self) -> int:
        """The current rank r."""
        return int(self.S.shape[0])

    def weight_matrix(self) -> torch.Tensor:
        """``U·S·Vᵀ``: the dense weight this layer stands for, as a matrix."""
        return self.U @ self.S @ self.V.mT

    @torch.no_grad()
    def rotate(self, p: torch.Tensor, sigma: torch.Tensor, q: torch.Tensor) -> nn.Parameter:
        """Fold ``S = P·diag(σ)·Qᵀ`` (already cut to the kept rank) into the bases.

        ``U ← U·P``, ``V ← V·Q``, ``S ← diag(σ)``; the product ``U·S·Vᵀ`` loses only the cut
        singular values. When the rank stays, S keeps its parameter object (a DDP wrapper
        and the optimizer stay valid); when it falls, S becomes a new parameter (autograd keeps
        the shape of the old one). Returns the old parameter, for the optimizer's state.
        """
        old = self.S
        old.grad = None  # a gradient in the old bases means nothing in the new ones
        self.U = (self.U @ p).contiguous()
        self.V = (self.V @ q).contiguous()
        new_s = torch.diag(sigma).to(old.dtype)
        if new_s.shape == old.shape:
            old.copy_(new_s)
        else:
            self.S = nn.Parameter(new_s)
        return old


class LowRankLinear(LowRankLayer):
    """``nn.Linear`` as ``U·S·Vᵀ``, computing what ``dense`` computes when built.

    Args:
        dense: The layer to replace (its bias parameter is taken over).
        factors: The SVD of its weight, if already computed (e.g. on another rank).
    """

    def __init__(self, dense: nn.Linear, factors: Factors | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = dense.in_features, dense.out_features
        self._set_factors(dense.weight, dense.bias, factors)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.linear(F.linear(x, self.V.mT), self.S), self.U, self.bias)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, rank={self.rank}"


class LowRankConv(LowRankLayer):
    """``nn.Conv1d`` or ``nn.Conv2d`` (``groups=1``) as r filters of Vᵀ, then a pointwise
    convolution with U·S; computes what ``dense`` computes when built.

    Args:
        dense: The layer to replace (its bias parameter is taken over).
        factors: The SVD of its weight as a matrix, if already computed.
    """

    def __init__(self, dense: nn.Conv1d | nn.Conv2d, factors: Factors | None = None) -> None:
        super().__init__()
        if dense.groups != 1:
            raise ValueError("only convolutions with groups=1 have one weight matrix")
        if dense.padding_mode != "zeros":
            raise ValueError(f"padding_mode {dense.padding_mode!r} is not supported")
        self.in_channels, self.out_channels = dense.in_channels, dense.out_channels
        self.kernel_size = dense.kernel_size
        self.stride, self.padding, self.dilation = dense.stride, dense.padding, dense.dilation
        self._conv = F.conv1d if isinstance(dense, nn.Conv1d) else F.conv2d
        self._set_factors(dense.weight, dense.bias, factors)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        filters = self.V.mT.reshape(self.rank, self.in_channels, *self.kernel_size)
        h = self._conv(x, filters, None, self.stride, self.padding, self.dilation)
        mix = (self.U @ self.S).reshape(self.out_channels, self.rank, *[1] * len(self.kernel_size))
        return self._conv(h, mix, self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"rank={self.rank}"
        )
