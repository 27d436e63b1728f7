"""Moving an optimizer's state along when a weight becomes ``U·S·Vᵀ`` or S is rotated and cut.

Resetting the state at every change would throw away the momentum a layer built up; the
authors' code keeps a slice of it. Here the state is transformed the way the gradient is:
the gradient of S is ``Uᵀ·G·V`` for the gradient G of the dense weight, and after a rotation
``S' = Pᵀ·S·Q`` the gradient of S' is ``Pᵀ·G_S·Q``. So

- state that is linear in the gradient (SGD's ``momentum_buffer``, Adam's ``exp_avg``) is
  mapped exactly: ``M' = Aᵀ·M·B``;
- state that estimates squared gradients (Adam's ``exp_avg_sq``, RMSprop's ``square_avg``,
  Adagrad's ``sum``) is mapped as the variance of independent entries would be:
  ``v' = (A∘A)ᵀ·v·(B∘B)``, which keeps it non-negative and on the gradient's scale;
- counters such as ``step`` are kept.

This works for any ``torch.optim`` optimizer whose per-parameter state uses these names.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["move_state", "transform_state"]

SQUARED_STATE = frozenset({"exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum", "acc_delta"})
"""State names that hold running squares of the gradient (mapped as variances)."""


def _map(value: torch.Tensor, a: torch.Tensor, b: torch.Tensor, squared: bool) -> torch.Tensor:
    matrix = value.reshape(value.shape[0], -1).to(a.dtype)
    if squared:
        return (a * a).mT @ matrix @ (b * b)
    return a.mT @ matrix @ b


def transform_state(
    state: dict[str, object], a: torch.Tensor, b: torch.Tensor, shape: torch.Size
) -> dict[str, object]:
    """The state of a parameter ``M`` mapped to that of ``Aᵀ·M·B``.

    Args:
        state: The optimizer's state of the old parameter.
        a: Left map (``U`` at the switch, ``P`` at a rotation).
        b: Right map (``V`` at the switch, ``Q`` at a rotation).
        shape: The old parameter's shape; tensors of that shape are mapped, others kept.
    """
    moved: dict[str, object] = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.shape == shape:
            mapped = _map(value, a, b, squared=key in SQUARED_STATE)
            moved[key] = mapped.to(value.dtype).contiguous()
        else:
            moved[key] = value
    return moved


@torch.no_grad()
def move_state(
    optimizer: torch.optim.Optimizer,
    old: nn.Parameter,
    new: nn.Parameter,
    a: torch.Tensor,
    b: torch.Tensor,
    old_shape: torch.Size,
) -> None:
    """Put ``new`` where ``old`` was in the optimizer (same group, same settings) and map its
    state.

    Args:
        optimizer: The optimizer training ``old``.
        old: The parameter being replaced.
        new: Its replacement, ``Aᵀ·old·B`` in shape.
        a: Left map.
        b: Right map.
        old_shape: The shape of ``old``.
    """
    for group in optimizer.param_groups:
        for i, param in enumerate(group["params"]):
            if param is old:
                group["params"][i] = new
                break
        else:
            continue
        break
    else:
        raise ValueError("the optimizer does not train this parameter")
    state = optimizer.state.pop(old, None)
    if state:
        optimizer.state[new] = transform_state(state, a, b, old_shape)
