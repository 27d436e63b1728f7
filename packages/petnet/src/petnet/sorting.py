"""One entry to every coincidence sorter, chosen by a setting: what ``petnet sort`` runs.

The classical sorters live in ``petnet.classical``, the network in ``petnet.inference``; this
module picks one by ``SortConfig.method`` and gives every method the same answer, a
``Coincidences``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from petnet.classical import (
    DEFAULT_POLICY,
    ENERGY_WINDOW_KEV,
    WINDOW_NS,
    Coincidences,
    Policy,
    check_settings,
    gate_sorter,
    sliding_window,
)
from petnet.singles import Singles
from shared_hpc import UserError

SortMethod = Literal["sliding", "gate", "petnet"]


@dataclass(frozen=True)
class SortConfig:
    """Which sorter runs, and its settings.

    Attributes:
        method: sliding (the paper's sliding window), gate (the GATE sorter) or petnet (a
            trained network; the GATE sorter pairs the singles it flags).
        policy: GATE multiples policy (method gate).
        window_ns: Coincidence window in ns.
        energy_window_kev: (low, high) in keV of the singles the classical sorters read; none:
            all of them.
        multi_window: Every single opens a window; otherwise only singles outside an open
            window do, as in GATE's old default (method gate).
        delayed_offset_ns: Delay of a second window that counts random pairs, in ns; none: no
            delayed window (method gate).
    """

    method: SortMethod = "gate"
    policy: Policy = DEFAULT_POLICY
    window_ns: float = WINDOW_NS
    energy_window_kev: tuple[float, float] | None = ENERGY_WINDOW_KEV
    multi_window: bool = True
    delayed_offset_ns: float | None = None

    def __post_init__(self) -> None:
        check_settings(self.window_ns, self.energy_window_kev, self.policy, self.delayed_offset_ns)


def sort_coincidences(
    singles: Singles,
    config: SortConfig,
    model: str | os.PathLike[str] | None = None,
    device: str = "cpu",
) -> Coincidences:
    """Find the coincidences in ``singles`` with the method ``config`` names.

    Args:
        singles: Time-sorted singles.
        config: The method and its settings.
        model: Checkpoint of a trained network (method petnet only).
        device: Where the network runs.

    Raises:
        UserError: Method petnet without a checkpoint, a checkpoint with another method, or a
            checkpoint that is not a readable PETNet checkpoint.
    """
    if config.method == "petnet" and model is None:
        raise UserError("method petnet needs the checkpoint of a trained network")
    if config.method != "petnet" and model is not None:
        raise UserError(f"a trained network sorts with method petnet only, not {config.method}")
    if config.method == "sliding":
        return sliding_window(singles, config.window_ns, config.energy_window_kev)
    if config.method == "gate":
        return gate_sorter(
            singles,
            config.window_ns,
            config.policy,
            config.energy_window_kev,
            multi_window=config.multi_window,
            delayed_offset_ns=config.delayed_offset_ns,
        )
    from petnet.evaluate import pair_flagged  # torch only for the network
    from petnet.inference import PETNetSorter

    sorter = PETNetSorter.from_checkpoint(model, device=device)
    return pair_flagged(singles, sorter.predict(singles).flags, config.window_ns)
