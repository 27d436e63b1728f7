"""Collectives of ``torch.distributed`` as autograd functions, and a byte counter.

Convention: the global loss is the *sum* of the ranks' local losses, each counting distinct
terms, and activations live on one rank each. Then every collective's adjoint is the
collective that sums contributions back: all-gather ↔ reduce-scatter, all-reduce ↔ all-reduce.

``ShardedLinear`` is the workhorse of Jigsaw: ``y = gather(x) @ gather(w)ᵀ`` where the
weight is stored as a flat 1/G shard (ZeRO-3 inside a model-parallel group) and the input may be
sharded along its features (Megatron sequence parallelism). It saves only the shards for
backward and gathers again there, so no gathered weight or activation outlives its use.

Every call of a collective is counted in a ``CommCounter`` when one is active: payload
bytes and the bytes a rank sends (see ``ring_bytes``), which
``weathermixer.commmodel`` predicts from shapes alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Group:
    """A process group and this rank's place in it; size 1 means no communication.

    Attributes:
        name: What the group is (``domain``, ``tensor``, ``replica``, ``model``), for counts.
        size: Ranks in the group.
        rank: This rank's place in it.
        pg: The ``torch.distributed`` process group (``None`` for size 1).
    """

    name: str
    size: int = 1
    rank: int = 0
    pg: Any = None


@dataclass
class CommCounter:
    """Counts the collectives of this rank while active (see ``count_bytes``).

    Attributes:
        records: One (operation, group name, payload bytes, bytes sent) per call.
    """

    records: list[tuple[str, str, int, int]] = field(default_factory=list)

    def sent_bytes(self, group: str | None = None) -> int:
        """Bytes this rank sent.

        Args:
            group: Only in the group of this name (default: in all).
        """
        return sum(r[3] for r in self.records if group is None or r[1] == group)

    def by_group(self) -> dict[str, int]:
        """Bytes this rank sent, by group name."""
        out: dict[str, int] = {}
        for _, name, _, sent in self.records:
            out[name] = out.get(name, 0) + sent
        return out


_COUNTER: CommCounter | None = None
# Newer torch renames the single-tensor collectives; older versions only have the old names.
_ALL_GATHER = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
_REDUCE_SCATTER = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor


@contextmanager
def count_bytes() -> Iterator[CommCounter]:
    """Count every collective issued inside the ``with`` block on this rank."""
    global _COUNTER
    previous, _COUNTER = _COUNTER, CommCounter()
    try:
        yield _COUNTER
    finally:
        _COUNTER = previous


def ring_bytes(op: str, nbytes: int, size: int, backend: str = "nccl") -> int:
    """Bytes one rank sends in a collective.

    Ring algorithms (NCCL): (G−1)·n, (G−1)/G·n and 2(G−1)/G·n. Gloo runs a reduce-scatter as
    an all-reduce of the whole buffer, so there it costs 2(G−1)/G·n (measured in
    ``benchmarks/comm.py``).

    Args:
        op: ``"all_gather"``, ``"reduce_scatter"`` or ``"all_reduce"``.
        nbytes: Size of the local input (all-gather: one piece; reduce-scatter and
            all-reduce: the full buffer).
        size: Ranks taking part (G).
        backend: ``"nccl"`` or ``"gloo"``.
    """
    if size == 1:
        return 0
    if op == "all_gather":
        return (size - 1) * nbytes
    if op == "reduce_scatter":
        factor = 2 if backend == "gloo" else 1
        return factor * (size - 1) * nbytes // size
    if op == "all_reduce":
        return 2 * (size - 1) * nbytes // size
    raise ValueError(f"unknown collective {op!r}")


def _backend(group: Group) -> str:
    return str(dist.get_backend(group.pg)) if group.pg is not None else "nccl"


def _record(op: str, group: Group, nbytes: int) -> None:
    if _COUNTER is not None:
        sent = ring_bytes(op, nbytes, group.size, _backend(group))
        _COUNTER.records.append((op, group.name, nbytes, sent))


# --- raw collectives (no autograd) ------------------------------------------------------
def all_gather(x: torch.Tensor, group: Group, dim: int = 0) -> torch.Tensor:
    """Concatenate the ranks' ``x`` along ``dim`` in rank order.

    Args:
        x: This rank's piece.
        group: The ranks taking part.
        dim: The dimension to concatenate along.
    """
    if group.size == 1:
        return x
    front = x.movedim(dim, 0).contiguous()
    out = front.new_empty((group.size * front.shape[0], *front.shape[1:]))
    _ALL_GATHER(out, front, group=group.pg)
    _record("all_gather", group, front.numel() * front.element_size())
    return out.movedim(0, dim)


def reduce_scatter(x: torch.Tensor, group: Group, dim: int = 0) -> torch.Tensor:
    """Sum ``x`` over the ranks and keep this rank's 1/G part along ``dim``.

    Args:
        x: This rank's full-size summand.
        group: The ranks taking part.
        dim: The dimension to split.
    """
    if group.size == 1:
        return x
    front = x.movedim(dim, 0).contiguous()
    if front.shape[0] % group.size:
        raise ValueError(f"cannot reduce-scatter {front.shape[0]} rows over {group.size} ranks")
    out = front.new_empty((front.shape[0] // group.size, *front.shape[1:]))
    _REDUCE_SCATTER(out, front, group=group.pg)
    _record("reduce_scatter", group, front.numel() * front.element_size())
    return out.movedim(0, dim)


def all_reduce(x: torch.Tensor, group: Group) -> torch.Tensor:
    """Sum of ``x`` over the ranks (a new tensor).

    Args:
        x: This rank's summand.
        group: The ranks taking part.
    """
    if group.size == 1:
        return x
    out = x.contiguous().clone()
    dist.all_reduce(out, group=group.pg)
    _record("all_reduce", group, out.numel() * out.element_size())
    return out


def all_reduce_(x: torch.Tensor, group: Group) -> torch.Tensor:
    """Sum ``x`` over the ranks in place (for large buffers such as gradients).

    Args:
        x: This rank's summand, replaced by the sum.
        group: The ranks taking part.
    """
    if group.size > 1:
        dist.all_reduce(x, group=group.pg)
        _record("all_reduce", group, x.numel() * x.element_size())
    return x


def gather_flat(shard: torch.Tensor, group: Group, shape: tuple[int, ...]) -> torch.Tensor:
    """Rebuild a tensor from flat, padded 1/G shards.

    Args:
        shard: This rank's flat shard.
        group: The ranks taking part.
        shape: The tensor's shape.
    """
    numel = 1
    for s in shape:
        numel *= s
    return all_gather(shard, group)[:numel].view(shape)


def scatter_flat(full: torch.Tensor, group: Group) -> torch.Tensor:
    """Sum a full-size tensor over the group and keep this rank's flat shard (pads to G·s).

    Args:
        full: This rank's full-size summand.
        group: The ranks taking part.
    """
    flat = full.reshape(-1)
    if group.size == 1:
        return flat
    shard = -(-flat.numel() // group.size)
    flat = torch.nn.functional.pad(flat, (0, shard * group.size - flat.numel()))
    return reduce_scatter(flat, group)


# --- autograd functions -------------------------------------------------------------------
class _AllGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Group, dim: int) -> torch.Tensor:
        ctx.group, ctx.dim = group, dim
        return all_gather(x, group, dim)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        return reduce_scatter(grad, ctx.group, ctx.dim), None, None


class _ReduceScatter(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Group, dim: int) -> torch.Tensor:
        ctx.group, ctx.dim = group, dim
        return reduce_scatter(x, group, dim)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        return all_gather(grad, ctx.group, ctx.dim), None, None


class _AllReduce(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Group) -> torch.Tensor:
        ctx.group = group
        return all_reduce(x, group)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        return all_reduce(grad, ctx.group), None


class _GatherParam(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, shard: torch.Tensor, group: Group, shape: tuple[int, ...]) -> Any:
        ctx.group = group
        return gather_flat(shard, group, shape)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        return scatter_flat(grad.float(), ctx.group), None, None


class _ReduceScatterBlocks(torch.autograd.Function):
    """Reduce-scatter along the last dim into blocks of unequal ``sizes`` (padded to the max)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Group, sizes: tuple[int, ...]) -> Any:
        ctx.group, ctx.sizes = group, sizes
        if group.size == 1:
            return x
        width = max(sizes)
        blocks = torch.split(x, list(sizes), dim=-1)
        pad = [torch.nn.functional.pad(b, (0, width - b.shape[-1])) for b in blocks]
        return reduce_scatter(torch.cat(pad, dim=-1), group, -1)[..., : sizes[group.rank]]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        group, sizes = ctx.group, ctx.sizes
        if group.size == 1:
            return grad, None, None
        width = max(sizes)
        full = all_gather(torch.nn.functional.pad(grad, (0, width - grad.shape[-1])), group, -1)
        blocks = [full[..., k * width : k * width + s] for k, s in enumerate(sizes)]
        return torch.cat(blocks, dim=-1), None, None


class ShardedLinear(torch.autograd.Function):
    """``y = X @ Wᵀ`` with X gathered over ``x_group`` along features and W from flat shards.

    Only the local ``x`` and the weight shard are saved; both are gathered again in backward.
    ``dtype`` is the compute precision (bf16 under autocast); weight gradients return in fp32.
    Call it through ``sharded_linear``.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        shard: torch.Tensor,
        shape: tuple[int, ...],
        w_group: Group,
        x_group: Group,
        dtype: torch.dtype,
    ) -> torch.Tensor:
        """Gather the weight and the input and multiply.

        Args:
            ctx: Autograd's context.
            x: This rank's input.
            shard: This rank's flat weight shard.
            shape: The shape of the weight used.
            w_group: The ranks that hold the weight's shards.
            x_group: The ranks that hold the input's feature parts.
            dtype: The compute precision.
        """
        ctx.save_for_backward(x, shard)
        ctx.shape, ctx.w_group, ctx.x_group, ctx.dtype = shape, w_group, x_group, dtype
        weight = gather_flat(shard.to(dtype), w_group, shape)
        inputs = all_gather(x.to(dtype), x_group, -1)
        return inputs @ weight.t()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        """Gather again; reduce-scatter the input's and the weight shard's gradients.

        Args:
            ctx: Autograd's context.
            grad: Gradient of the output.
        """
        x, shard = ctx.saved_tensors
        dtype = ctx.dtype
        weight = gather_flat(shard.to(dtype), ctx.w_group, ctx.shape)
        inputs = all_gather(x.to(dtype), ctx.x_group, -1)
        grad = grad.to(dtype)
        grad_x = None
        if ctx.needs_input_grad[0]:  # not for the embedding, whose input is data
            grad_x = reduce_scatter(grad @ weight, ctx.x_group, -1).to(x.dtype)
        grad_weight = grad.reshape(-1, grad.shape[-1]).t() @ inputs.reshape(-1, inputs.shape[-1])
        grad_shard = scatter_flat(grad_weight.float(), ctx.w_group)
        return grad_x, grad_shard, None, None, None, None


def gather_along(x: torch.Tensor, group: Group, dim: int) -> torch.Tensor:
    """All-gather with reduce-scatter as backward.

    Args:
        x: This rank's piece.
        group: The ranks taking part.
        dim: The dimension to concatenate along.
    """
    return _AllGather.apply(x, group, dim)


def scatter_along(x: torch.Tensor, group: Group, dim: int) -> torch.Tensor:
    """Reduce-scatter with all-gather as backward.

    Args:
        x: This rank's full-size summand.
        group: The ranks taking part.
        dim: The dimension to split.
    """
    return _ReduceScatter.apply(x, group, dim)


def sum_over(x: torch.Tensor, group: Group) -> torch.Tensor:
    """All-reduce with all-reduce as backward.

    Args:
        x: This rank's summand.
        group: The ranks taking part.
    """
    return _AllReduce.apply(x, group)


def gathered_param(shard: torch.Tensor, group: Group, shape: tuple[int, ...]) -> torch.Tensor:
    """A parameter rebuilt from flat shards; its gradient is reduce-scattered back.

    Args:
        shard: This rank's flat shard.
        group: The ranks taking part.
        shape: The parameter's shape.
    """
    if group.size == 1:
        return shard.view(shape)
    return _GatherParam.apply(shard, group, shape)


def scatter_blocks(x: torch.Tensor, group: Group, sizes: tuple[int, ...]) -> torch.Tensor:
    """Reduce-scatter the last dim into unequal blocks; all-gather as backward.

    Args:
        x: This rank's full-size summand.
        group: The ranks taking part.
        sizes: Width of each rank's block.
    """
    return _ReduceScatterBlocks.apply(x, group, sizes)


def sharded_linear(
    x: torch.Tensor,
    shard: torch.Tensor,
    shape: tuple[int, ...],
    w_group: Group,
    x_group: Group | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """``y = X @ Wᵀ`` from flat weight shards, gathering only what is sharded (see
    ``ShardedLinear``).

    Args:
        x: This rank's input, ``[..., features]`` (its part of the features if sharded).
        shard: This rank's flat shard of the weight.
        shape: The shape of the weight this rank uses.
        w_group: The ranks that hold the weight's shards.
        x_group: The ranks that hold the input's feature parts (``None``: not sharded).
        dtype: The compute precision (default: that of ``x``).
    """
    dtype = dtype or x.dtype
    if w_group.size == 1 and (x_group is None or x_group.size == 1):
        return torch.nn.functional.linear(x.to(dtype), shard.view(shape).to(dtype))
    return ShardedLinear.apply(x, shard, shape, w_group, x_group or Group("none"), dtype)
