"""The strongest classical baseline: the GATE sorter tuned on validation data.

A fair comparison gives the classical sorter the same chance a trained network gets: its
multiples policy, coincidence window and lower energy threshold are chosen by F1 on the
validation acquisitions, never on the test acquisitions it is then scored on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from petnet.classical import POLICIES, Coincidences, gate_sorter
from petnet.metrics import score
from petnet.singles import Singles
from shared_hpc import UserError

WINDOWS_NS = (0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
ENERGY_LOW_KEV = (350.0, 400.0, 425.0, 450.0, 475.0)
ENERGY_HIGH_KEV = 650.0


@dataclass(frozen=True)
class TunedGate:
    """The GATE sorter's settings with the best validation F1.

    Args:
        policy: Multiples policy.
        window_ns: Coincidence window in ns.
        energy_window_kev: (low, high) in keV.
        validation_f1: Its F1 on the validation singles.
    """

    policy: str
    window_ns: float
    energy_window_kev: tuple[float, float]
    validation_f1: float

    def sort(self, singles: Singles) -> Coincidences:
        """Run the tuned sorter.

        Args:
            singles: Time-sorted singles.
        """
        return gate_sorter(singles, self.window_ns, self.policy, self.energy_window_kev)

    @property
    def name(self) -> str:
        """How tables name it."""
        low, high = self.energy_window_kev
        return f"GATE tuned ({self.policy}, {self.window_ns:g} ns, {low:g}–{high:g} keV)"


def tune_gate(
    validation: Singles,
    policies: Sequence[str] = POLICIES,
    windows_ns: Sequence[float] = WINDOWS_NS,
    energy_low_kev: Sequence[float] = ENERGY_LOW_KEV,
) -> TunedGate:
    """Search the grid of settings for the best F1 on ``validation`` (first best wins ties).

    Args:
        validation: Validation singles with ground truth (never the test singles).
        policies: Multiples policies to try.
        windows_ns: Coincidence windows to try, in ns.
        energy_low_kev: Lower energy thresholds to try, in keV (upper: 650 keV).

    Raises:
        UserError: Singles without ground truth.
    """
    if not validation.has_truth:
        raise UserError("tuning the GATE sorter needs validation singles with ground truth")
    best = None
    for policy in policies:
        for window in windows_ns:
            for low in energy_low_kev:
                energy = (float(low), ENERGY_HIGH_KEV)
                pairs = gate_sorter(validation, float(window), policy, energy)
                f1 = score(validation, pairs.hit_flags(len(validation))).f1
                if best is None or f1 > best.validation_f1:
                    best = TunedGate(policy, float(window), energy, f1)
    if best is None:
        raise UserError("the search grid of the GATE sorter is empty")
    return best
