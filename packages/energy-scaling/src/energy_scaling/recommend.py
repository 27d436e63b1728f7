"""Which configuration to run: the time-energy Pareto front of a sweep, and one choice.

Each finished point is a candidate with its time and energy to the target metric (or to the end
of training when no point has a target). The candidates that no other one beats in both time
and energy form the Pareto front; from it, the least energy under a deadline or the fastest run
under an energy budget (least energy when neither is given). Each candidate also carries the
fit's prediction of its energy, ``k · device-hours + intercept`` with a prediction interval, so
the choice says which other candidates the fit cannot tell apart from it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from energy_scaling.analysis import KWH, Analysis, pareto_front
from shared_hpc import UserError

__all__ = ["Candidate", "Recommendation", "recommend_run"]


@dataclass(frozen=True)
class Candidate:
    """One point as a choice.

    Attributes:
        point: The point's id (``r2-g128-l64``).
        model: Model name.
        hardware: Hardware label.
        ranks: Devices.
        global_batch: Global batch.
        local_batch: Local batch.
        seconds: Time to the target (or of the whole training).
        energy_kwh: Measured or estimated energy to the target (or of the whole training).
        method: The energy methods behind ``energy_kwh``.
        predicted_kwh: The fit's energy for this point's device-hours.
        predicted_low: Lower end of the fit's prediction interval (``nan``: none).
        predicted_high: Upper end.
        metric: Final validation metric.
    """

    point: str
    model: str
    hardware: str
    ranks: int
    global_batch: int
    local_batch: int
    seconds: float
    energy_kwh: float
    method: str
    predicted_kwh: float
    predicted_low: float
    predicted_high: float
    metric: float


@dataclass
class Recommendation:
    """The Pareto front and the choice under the user's constraint.

    Attributes:
        basis: ``to target`` (time and energy until the target metric was met) or
            ``whole training``.
        rule: How the choice was made.
        front: The Pareto-optimal candidates, fastest first.
        choice: The recommended candidate (``None``: nothing meets the constraint).
        indistinguishable: Front candidates whose prediction interval overlaps the choice's.
        skipped: Points left out (did not reach the target), with the reason.
    """

    basis: str
    rule: str
    front: list[Candidate]
    choice: Candidate | None
    indistinguishable: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        def clean(c: Candidate) -> dict[str, Any]:
            return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                    for k, v in vars(c).items()}  # fmt: skip

        return {
            "basis": self.basis,
            "rule": self.rule,
            "front": [clean(c) for c in self.front],
            "choice": clean(self.choice) if self.choice else None,
            "indistinguishable": self.indistinguishable,
            "skipped": self.skipped,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def text(self) -> str:
        """A few lines for a person: the front, then the choice and its uncertainty."""
        lines = [f"Pareto front (time vs energy, {self.basis}):"]
        for c in self.front:
            interval = (
                f" [fit {c.predicted_low * 1e3:.3g}..{c.predicted_high * 1e3:.3g} Wh]"
                if math.isfinite(c.predicted_low)
                else ""
            )
            lines.append(
                f"  {c.point:16s} {c.seconds:9.1f} s {c.energy_kwh * 1e3:9.3g} Wh "
                f"({c.method}){interval}  metric {c.metric:.4g}"
            )
        if self.choice is None:
            lines.append(f"No point meets the constraint ({self.rule}).")
        else:
            c = self.choice
            lines.append(
                f"Recommended ({self.rule}): {c.point} on {c.ranks} device(s), global batch "
                f"{c.global_batch}, local batch {c.local_batch}: {c.seconds:.1f} s, "
                f"{c.energy_kwh * 1e3:.3g} Wh ({c.method})."
            )
            if self.indistinguishable:
                lines.append(
                    "Within the fit's uncertainty as good: " + ", ".join(self.indistinguishable)
                )
        if self.skipped:
            lines.append("Left out: " + "; ".join(self.skipped))
        return "\n".join(lines)


def _candidates(analysis: Analysis) -> tuple[list[Candidate], str, list[str]]:
    with_target = [p for p in analysis.points if p["target"] is not None]
    basis = "to target" if with_target else "whole training"
    candidates, skipped = [], []
    for p in analysis.points:
        if basis == "to target":
            if p["time_to_target_s"] is None:
                skipped.append(f"{p['point']} did not reach the target {p['target']}")
                continue
            seconds, joules = float(p["time_to_target_s"]), float(p["energy_to_target_j"])
        else:
            seconds, joules = float(p["wall_time_s"]), float(p["energy_j"])
        fit = analysis.fit_for(p.model, p.hardware)
        hours = int(p["ranks"]) * seconds / 3600.0
        predicted, low, high = fit.predict(hours) if fit else (math.nan,) * 3
        candidates.append(
            Candidate(
                point=str(p["point"]),
                model=p.model,
                hardware=p.hardware,
                ranks=int(p["ranks"]),
                global_batch=int(p["global_batch"]),
                local_batch=int(p["local_batch"]),
                seconds=seconds,
                energy_kwh=joules / KWH,
                method="+".join(sorted(set(p["energy_methods"].values()))) or "none",
                predicted_kwh=predicted,
                predicted_low=low,
                predicted_high=high,
                metric=float(p["final_metric"]),
            )
        )
    return candidates, basis, skipped


def recommend_run(
    analysis: Analysis,
    *,
    deadline_s: float | None = None,
    energy_budget_kwh: float | None = None,
) -> Recommendation:
    """The Pareto front of ``analysis``'s points and the best one under a constraint.

    Args:
        analysis: A fitted sweep (``energy_scaling.analysis.analyze``).
        deadline_s: Pick the least energy among runs at most this long.
        energy_budget_kwh: Pick the fastest among runs using at most this much energy.

    Raises:
        UserError: Both constraints given, a constraint that is not positive, or no point
            reached the target.
    """
    if deadline_s is not None and energy_budget_kwh is not None:
        raise UserError("give a deadline or an energy budget, not both")
    for name, value in (("deadline", deadline_s), ("energy budget", energy_budget_kwh)):
        if value is not None and not value > 0:
            raise UserError(f"the {name} must be positive, got {value}")
    candidates, basis, skipped = _candidates(analysis)
    if not candidates:
        raise UserError("no point reached the target metric; lower train.target or train longer")
    front_idx = pareto_front([(c.seconds, c.energy_kwh) for c in candidates])
    front = [candidates[i] for i in front_idx]
    if deadline_s is not None:
        rule = f"least energy within {deadline_s:g} s"
        fits = [c for c in front if c.seconds <= deadline_s]
        choice = min(fits, key=lambda c: c.energy_kwh) if fits else None
    elif energy_budget_kwh is not None:
        rule = f"fastest within {energy_budget_kwh * 1e3:g} Wh"
        fits = [c for c in front if c.energy_kwh <= energy_budget_kwh]
        choice = min(fits, key=lambda c: c.seconds) if fits else None
    else:
        rule = "least energy"
        choice = min(front, key=lambda c: c.energy_kwh)
    alike = []
    if choice is not None and math.isfinite(choice.predicted_low):
        alike = [
            c.point
            for c in front
            if c is not choice
            and c.predicted_low <= choice.predicted_high
            and choice.predicted_low <= c.predicted_high
        ]
    return Recommendation(basis, rule, front, choice, alike, skipped)
