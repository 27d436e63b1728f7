"""The OIALR schedule: full rank until a layer's bases are stable, then U·S·Vᵀ, cut as it trains.

The user keeps their training loop and calls ``OIALR.step()`` after each optimizer step:

    >>> oialr = OIALR(model, optimizer, ScheduleConfig())  # doctest: +SKIP
    >>> for x, y in loader:  # doctest: +SKIP
    ...     loss = loss_fn(oialr.model(x), y)
    ...     loss.backward()
    ...     optimizer.step()
    ...     optimizer.zero_grad()
    ...     oialr.step()

Every ``check_every`` steps each layer still at full rank is measured: the SVD of its weight
gives the orthogonal factor ``U_r·V_rᵀ`` of its significant part (singular values at least
β·σ_max), and its cosine similarity with the factor of the previous check says how much the
layer's bases still move. A layer switches to low rank once that similarity reaches
``stability`` (or, with ``switch="delay"``, after a fixed number of steps as in the authors'
code). Every ``frequency`` steps a low-rank layer's S is decomposed, its rotations folded into
U and V and singular values below β·σ_max cut — at most ``max_cut`` of the rank at once and
never below ``min_rank`` of the full rank. The optimizer's state follows every change.

Under ``torch.distributed`` the SVDs are spread over the ranks round-robin, their results
broadcast, and the ``DistributedDataParallel`` wrapper (``OIALR.model``) is rebuilt only when a
shape changed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from oialr.config import ScheduleConfig
from oialr.layers import Factors, LowRankConv, LowRankLayer, LowRankLinear, matrix_of, svd
from oialr.optim_state import move_state
from shared_hpc import UserError

__all__ = ["OIALR", "LayerEvent", "count_parameters", "eligible_layers"]

_DENSE = (nn.Linear, nn.Conv1d, nn.Conv2d)
_CONV = (nn.Conv1d, nn.Conv2d)


@dataclass(frozen=True)
class LayerEvent:
    """One thing the schedule did to one layer.

    Attributes:
        step: The optimizer step after which it happened.
        layer: The layer's qualified name in the model.
        kind: ``"check"`` (bases measured), ``"switch"`` (to low rank) or ``"cut"``.
        rank: The layer's rank afterwards (its full rank for checks).
        similarity: Cosine similarity of the bases with the previous check (checks and
            switches; ``None`` at a first check or a fixed-delay switch).
    """

    step: int
    layer: str
    kind: str
    rank: int
    similarity: float | None = None


def _matrix_shape(layer: nn.Module) -> tuple[int, int]:
    weight = layer.weight
    return weight.shape[0], weight[0].numel()


def eligible_layers(model: nn.Module, config: ScheduleConfig) -> list[str]:
    """Qualified names of the layers OIALR may make low rank, in the model's order.

    ``Linear``, ``Conv1d`` and ``Conv2d`` (one group, zero padding) layers, except those far
    from square (the smaller side of the weight matrix at most ``1/skip_ratio`` of the larger:
    a low-rank form saves nothing there) and, with ``keep_first_last``, the first and the last
    such layer.
    """
    found = []
    for name, module in model.named_modules():
        if isinstance(module, _CONV) and (module.groups != 1 or module.padding_mode != "zeros"):
            continue
        if isinstance(module, _DENSE):
            found.append((name, module))
    if config.keep_first_last:
        found = found[1:-1]
    return [
        name
        for name, module in found
        if min(_matrix_shape(module)) * config.skip_ratio > max(_matrix_shape(module))
    ]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` entries: trained parameters, and all weights incl. frozen bases."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    bases = sum(m.U.numel() + m.V.numel() for m in model.modules() if isinstance(m, LowRankLayer))
    return trainable, trainable + frozen + bases


def _orthogonal_factor(matrix: torch.Tensor, beta: float) -> torch.Tensor:
    """``U_r·V_rᵀ`` of the singular values at least β·σ_max: where the layer's bases point."""
    u, sigma, v = svd(matrix)
    r = int((sigma >= beta * sigma[0]).sum())
    return u[:, :r] @ v[:, :r].mT


def _similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of two matrices (1: the same bases, 0: unrelated)."""
    return (a * b).sum() / (a.norm() * b.norm())


class OIALR:
    """Orthogonality-informed adaptive low-rank training of ``model``, driven once per step.

    Args:
        model: The bare model (not wrapped in DDP); its layers are replaced in place.
        optimizer: The optimizer training it; its parameters and state follow the changes.
        config: The schedule's settings.
        ddp_options: Keyword arguments for ``DistributedDataParallel`` when a process group
            with more than one rank exists (the model is wrapped then).

    Attributes:
        module: The bare model.
        model: What to call in the training loop: ``module``, or its DDP wrapper.
        events: Everything the schedule did, in order.
        steps: Optimizer steps seen.

    Raises:
        UserError: ``model`` has no layer OIALR could make low rank.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        config: ScheduleConfig | None = None,
        *,
        ddp_options: dict[str, Any] | None = None,
    ) -> None:
        self.config = config or ScheduleConfig()
        self.module = model
        self.optimizer = optimizer
        self._dense = eligible_layers(model, self.config)
        if not self._dense:
            raise UserError(
                "the model has no Linear or convolution that OIALR could make low rank (layers "
                f"far from square, at most 1/{self.config.skip_ratio:g}, are skipped"
                + (", and so are the first and last" if self.config.keep_first_last else "")
                + ")"
            )
        self._owner = {name: i for i, name in enumerate(self._dense)}
        self._previous: dict[str, torch.Tensor] = {}
        self._switched_at: dict[str, int] = {}
        self._ddp_options = ddp_options or {}
        self._world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        self._rank = dist.get_rank() if self._world > 1 else 0
        self.events: list[LayerEvent] = []
        self.steps = 0
        self.model: nn.Module = self._wrap()

    # --- the loop's one call -------------------------------------------------------------------
    def step(self) -> bool:
        """Advance the schedule by one optimizer step; ``True`` when a shape changed (``model``
        was rebuilt: take it again in a loop that holds on to it)."""
        self.steps += 1
        cfg = self.config
        changed = False
        if self._dense and self.steps % cfg.check_every == 0:
            changed |= self._check_dense()
        if self.steps % cfg.frequency == 0:
            changed |= self._cut_low_rank()
        if changed:
            self.model = self._wrap()
        return changed

    @property
    def low_rank_layers(self) -> dict[str, LowRankLayer]:
        """The layers already switched, by qualified name."""
        return {n: m for n, m in self.module.named_modules() if isinstance(m, LowRankLayer)}

    def ranks(self) -> dict[str, int]:
        """Every eligible layer's current rank (its full rank while dense)."""
        ranks = {name: m.rank for name, m in self.low_rank_layers.items()}
        for name in self._dense:
            ranks[name] = min(_matrix_shape(self.module.get_submodule(name)))
        return dict(sorted(ranks.items(), key=lambda item: self._owner[item[0]]))

    # --- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs besides the model's and the optimizer's state dicts.

        Save all three; to resume, build the model, the optimizer and ``OIALR`` as at the start,
        call ``load_state_dict`` here first (it gives the layers their low-rank shapes), then
        the model's and the optimizer's.
        """
        return {
            "steps": self.steps,
            "ranks": {name: layer.rank for name, layer in self.low_rank_layers.items()},
            "switched_at": dict(self._switched_at),
            "previous": {name: t.clone() for name, t in self._previous.items()},
            "events": [dataclasses.astuple(event) for event in self.events],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the schedule and give every switched layer its saved rank (the values come
        with the model's state dict, loaded after this)."""
        for name, rank in state["ranks"].items():
            module = self.module.get_submodule(name)
            if isinstance(module, LowRankLayer):
                raise RuntimeError("load_state_dict expects a schedule that has not switched yet")
            (out, inner) = _matrix_shape(module)
            weight = module.weight
            empty = (
                weight.new_zeros(out, rank),
                weight.new_zeros(rank),
                weight.new_zeros(inner, rank),
            )
            self._replace(name, module, empty)
        self.steps = int(state["steps"])
        self._switched_at = {k: int(v) for k, v in state["switched_at"].items()}
        self._previous = dict(state["previous"])
        self.events = [LayerEvent(*fields) for fields in state["events"]]
        self.model = self._wrap()

    # --- full-rank phase -----------------------------------------------------------------------
    def _check_dense(self) -> bool:
        cfg = self.config
        if cfg.switch == "delay":
            if self.steps < cfg.delay:
                return False
            for name in list(self._dense):
                self._switch(name, None)
            return True
        switched = False
        for name in list(self._dense):
            weight = self.module.get_submodule(name).weight
            (measured,) = self._from_owner(
                name, lambda name=name: (self._measure(name),), [()], weight
            )
            similarity = None if torch.isnan(measured) else float(measured)
            rank = min(_matrix_shape(self.module.get_submodule(name)))
            self.events.append(LayerEvent(self.steps, name, "check", rank, similarity))
            if (
                similarity is not None
                and similarity >= cfg.stability
                and self.steps >= cfg.min_steps
            ):
                self._switch(name, similarity)
                switched = True
        return switched

    def _measure(self, name: str) -> torch.Tensor:
        """Similarity of the layer's bases with the previous check (NaN at the first)."""
        weight = self.module.get_submodule(name).weight
        factor = _orthogonal_factor(matrix_of(weight.detach()), self.config.beta)
        previous = self._previous.get(name)
        self._previous[name] = factor
        if previous is None:
            return torch.tensor(float("nan"), dtype=weight.dtype, device=weight.device)
        return _similarity(factor, previous).to(weight.dtype)

    def _switch(self, name: str, similarity: float | None) -> None:
        dense = self.module.get_submodule(name)
        weight = dense.weight
        (out, inner), k = _matrix_shape(dense), min(_matrix_shape(dense))
        factors = self._from_owner(
            name, lambda: svd(matrix_of(weight.detach())), [(out, k), (k,), (inner, k)], weight
        )
        layer = self._replace(name, dense, factors)
        self._switched_at[name] = self.steps
        self.events.append(LayerEvent(self.steps, name, "switch", layer.rank, similarity))

    def _replace(self, name: str, dense: nn.Module, factors: Factors) -> LowRankLayer:
        """Put the low-rank form of ``dense`` in its place, in the model and the optimizer."""
        layer = (LowRankLinear if isinstance(dense, nn.Linear) else LowRankConv)(dense, factors)
        parent, _, attr = name.rpartition(".")
        setattr(self.module.get_submodule(parent), attr, layer)
        weight = dense.weight
        move_state(self.optimizer, weight, layer.S, factors[0], factors[2], weight.shape)
        self._dense.remove(name)
        self._previous.pop(name, None)
        return layer

    # --- low-rank phase ------------------------------------------------------------------------
    def _cut_low_rank(self) -> bool:
        changed = False
        for name, layer in self.low_rank_layers.items():
            if self._switched_at.get(name) == self.steps:
                continue  # switched this very step: still exactly the dense layer
            r = layer.rank
            p, sigma, q = self._from_owner(
                name, lambda layer=layer: svd(layer.S), [(r, r), (r,), (r, r)], layer.S
            )
            keep = self._kept_rank(sigma, layer.full_rank)
            old = layer.rotate(p[:, :keep], sigma[:keep], q[:, :keep])
            move_state(self.optimizer, old, layer.S, p[:, :keep], q[:, :keep], old.shape)
            changed |= keep != r
            self.events.append(LayerEvent(self.steps, name, "cut", keep))
        return changed

    def _kept_rank(self, sigma: torch.Tensor, full_rank: int) -> int:
        """The singular values at least β·σ_max, but at most ``max_cut`` of the current rank
        dropped at once and never fewer than ``min_rank`` of the full rank (and 1)."""
        cfg = self.config
        r = int(sigma.numel())
        wanted = int((sigma >= cfg.beta * sigma[0]).sum())
        floor = max(1, math.ceil(r * (1 - cfg.max_cut)), math.ceil(cfg.min_rank * full_rank))
        return min(r, max(wanted, floor))

    # --- ranks ---------------------------------------------------------------------------------
    def _from_owner(
        self,
        name: str,
        compute: Callable[[], tuple[torch.Tensor, ...]],
        shapes: list[tuple[int, ...]],
        like: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """``compute()`` on the rank that owns layer ``name`` (round-robin), its tensors
        broadcast to every rank (shaped ``shapes``, typed like ``like``); computed here when
        there is no process group."""
        if self._world == 1:
            return compute()
        owner = self._owner[name] % self._world
        if self._rank == owner:
            tensors = [t.contiguous() for t in compute()]
        else:
            tensors = [torch.empty(s, device=like.device, dtype=like.dtype) for s in shapes]
        for tensor in tensors:
            dist.broadcast(tensor, src=owner)
        return tuple(tensors)

    def _wrap(self) -> nn.Module:
        if self._world == 1:
            return self.module
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(self.module, **self._ddp_options)
