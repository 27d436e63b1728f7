"""Early stopping of hopeless candidates whose loss function is a generator.

A generator loss yields intermediate losses (e.g. the validation loss after each epoch). After
every yield the surrogate may cancel the candidate; its last yielded loss then becomes its loss
and it is recorded as ``cancelled``. Curves of finished candidates are shared with the island's
other workers inside the normal result messages.
"""

from __future__ import annotations

import math

import numpy as np

from shared_hpc.errors import UserError


class Surrogate:
    """Interface: decide after each intermediate loss whether to stop a candidate."""

    def start(self) -> None:
        """A new candidate starts."""

    def cancel(self, step: int, loss: float) -> bool:
        """Whether to stop the candidate now.

        Args:
            step: Index of the intermediate loss (0 for the first).
            loss: The candidate's intermediate loss at ``step``.
        """
        raise NotImplementedError

    def add_curve(self, curve: np.ndarray) -> None:
        """A candidate (own or a peer's) finished or was cancelled with this curve.

        Args:
            curve: Its intermediate losses, step by step.
        """
        raise NotImplementedError


class BestAtStep(Surrogate):
    """Cancel when the loss at step k exceeds the best loss ever seen at step k by ``margin``.

    "Best at step k" is the pointwise minimum over all curves seen so far, so the baseline
    only ever improves (upstream's static surrogate could replace it with a worse run). A
    candidate is cancelled when ``loss > best_k + margin * |best_k|`` from step ``min_step``
    on, once ``min_curves`` curves are known.

    Args:
        margin: How much worse than the best at the same step a loss may be, as a fraction.
        min_step: The first step at which a candidate can be cancelled.
        min_curves: Curves needed before any candidate is cancelled.
    """

    def __init__(self, margin: float = 0.25, min_step: int = 1, min_curves: int = 1) -> None:
        if not margin >= 0:
            raise UserError(f"early-stopping margin must be >= 0, got {margin}")
        if min_step < 0 or min_curves < 1:
            raise UserError("BestAtStep: need min_step >= 0 and min_curves >= 1")
        self.margin = margin
        self.min_step = min_step
        self.min_curves = min_curves
        self.best = np.zeros(0)
        self.curves = 0

    def cancel(self, step: int, loss: float) -> bool:
        if self.curves < self.min_curves or step < self.min_step or step >= len(self.best):
            return False
        best = self.best[step]
        return bool(math.isfinite(best) and loss > best + self.margin * abs(best))

    def add_curve(self, curve: np.ndarray) -> None:
        curve = np.asarray(curve, dtype=float)
        curve = np.where(np.isfinite(curve), curve, np.inf)
        if len(curve) == 0:
            return
        if len(curve) > len(self.best):
            self.best = np.concatenate([self.best, np.full(len(curve) - len(self.best), np.inf)])
        np.minimum(self.best[: len(curve)], curve, out=self.best[: len(curve)])
        self.curves += 1
