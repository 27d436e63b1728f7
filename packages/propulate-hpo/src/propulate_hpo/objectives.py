"""Several objectives per candidate: their names, directions, and how a loss gives them.

A search with objectives ``("accuracy:max", "energy_j")`` expects the loss function to return
a dict with those names, or a tuple in their order; ``time_s`` (the candidate's wall time) and
``energy_j`` (its energy, from ``shared_hpc.EnergyMeter``) are measured by the search itself
when the loss function does not give them. Internally every objective is minimised: a
maximised one is stored negated, and results show the values as returned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared_hpc.errors import UserError

MEASURED = ("time_s", "energy_j")  # objectives the search measures when the loss does not
# columns of a result's history that an objective's column must not replace
RESERVED = ("worker", "generation", "island", "status", "t_start", "duration", "t_end", "steps",
            "active", "migrations", "error")  # fmt: skip
_DIRECTIONS = ("min", "max")


class ObjectiveError(ValueError):
    """A loss function returned objectives that do not match the search's (the candidate
    fails with this message; the run goes on)."""


@dataclass(frozen=True)
class Objective:
    """One objective of a search.

    Attributes:
        name: The key of the loss function's dict (or ``time_s`` / ``energy_j``).
        direction: ``min`` or ``max``.
    """

    name: str
    direction: str = "min"

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "a").replace("-", "a").isalnum():
            raise UserError(f"objective names are words like val_loss, got {self.name!r}")
        if self.name in RESERVED:
            raise UserError(f"objective name {self.name!r} is taken by the results' columns")
        if self.direction not in _DIRECTIONS:
            raise UserError(f"objective {self.name!r}: direction must be min or max")

    def __str__(self) -> str:
        return f"{self.name}:{self.direction}"


class Objectives:
    """The objectives of a multi-objective search, parsed and checked before any rank starts.

    Args:
        specs: ``"name"`` or ``"name:min"`` / ``"name:max"`` each, or ``Objective``s; at
            least two, names distinct.

    Attributes:
        items: The objectives in order.
        names: Their names.
        signs: ``+1`` for minimised, ``-1`` for maximised objectives.

    Raises:
        UserError: Fewer than two objectives, a malformed spec or a repeated name.
    """

    def __init__(self, specs: Sequence[str | Objective]) -> None:
        if isinstance(specs, str):
            specs = [s.strip() for s in specs.split(",")]
        items = [spec if isinstance(spec, Objective) else _parse(spec) for spec in specs]
        if len(items) < 2:
            raise UserError(
                f"a multi-objective search needs at least two objectives, got {len(items)}"
            )
        names = [item.name for item in items]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise UserError(f"objective(s) named twice: {', '.join(repeated)}")
        self.items = tuple(items)
        self.names = tuple(names)
        self.signs = np.array([1.0 if o.direction == "min" else -1.0 for o in items])

    def __len__(self) -> int:
        return len(self.items)

    @property
    def measured(self) -> tuple[str, ...]:
        """The objectives the search measures unless the loss function gives them."""
        return tuple(n for n in self.names if n in MEASURED)

    @property
    def returned(self) -> tuple[str, ...]:
        """The objectives a tuple returned by the loss function stands for, in order."""
        return tuple(n for n in self.names if n not in MEASURED)

    def values(self, value: Any, measured: Mapping[str, float]) -> dict[str, float]:
        """Every objective's value (as returned, not negated) of what a loss function gave.

        Args:
            value: A dict with the objectives' names (extra keys are kept as metrics by the
                caller), or a sequence of the objectives that are not measured, in order.
            measured: ``time_s`` and ``energy_j`` of the evaluation, used where ``value``
                does not give them.

        Raises:
            ObjectiveError: Missing objectives, the wrong number of them, or a value that is
                not a finite number.
        """
        if isinstance(value, Mapping):
            missing = [n for n in self.returned if n not in value]
            if missing:
                raise ObjectiveError(
                    f"the loss function returned no {', '.join(missing)} "
                    f"(objectives: {', '.join(self.names)}; got {', '.join(map(str, value))})"
                )
            given = {n: value[n] for n in self.names if n in value}
        elif isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
            if len(value) != len(self.returned):
                raise ObjectiveError(
                    f"the loss function returned {len(value)} objective(s), expected "
                    f"{len(self.returned)} ({', '.join(self.returned)})"
                )
            given = dict(zip(self.returned, value, strict=True))
        else:
            raise ObjectiveError(
                f"the loss function returned a {type(value).__name__}; with objectives "
                f"{', '.join(self.names)} return a dict or a tuple of {len(self.returned)}"
            )
        out = {}
        for name in self.names:
            raw = given[name] if name in given else measured[name]
            number = float(raw)
            if not math.isfinite(number):
                raise ObjectiveError(f"objective {name} is {number}")
            out[name] = number
        return out

    def minimised(self, values: Mapping[str, float]) -> np.ndarray:
        """The vector the search minimises: each value, negated where it is maximised.

        Args:
            values: A value for every objective.
        """
        return np.array([values[n] for n in self.names], dtype=float) * self.signs

    def as_returned(self, minimised: np.ndarray) -> np.ndarray:
        """The inverse of ``minimised`` for an ``(n, m)`` array of vectors.

        Args:
            minimised: Vectors as the search minimises them.
        """
        return np.asarray(minimised, dtype=float) * self.signs

    def to_list(self) -> list[str]:
        """``name:direction`` strings, for checkpoints and records."""
        return [str(o) for o in self.items]

    def __repr__(self) -> str:
        return f"Objectives({self.to_list()!r})"


def _parse(spec: str) -> Objective:
    if not isinstance(spec, str):
        raise UserError(f"an objective is a string like 'accuracy:max', got {spec!r}")
    name, _, direction = spec.strip().partition(":")
    return Objective(name.strip(), direction.strip() or "min")
