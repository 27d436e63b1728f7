"""Compare PETNet with the classical sorters on one file: same scoring, same singles.

Every method is timed on the whole file (median of a few runs) and scored with
:func:`petnet.metrics.score`. Its flagged singles are also paired into coincidences (PETNet's
by the GATE sorter run on the flagged singles only), so each method gets the same
trues/scatters/randoms breakdown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from petnet.classical import POLICIES, Coincidences, gate_sorter, sliding_window
from petnet.inference import PETNetSorter
from petnet.metrics import Scores, score
from petnet.singles import Singles


@dataclass
class MethodResult:
    name: str
    scores: Scores
    seconds: float
    singles_per_second: float
    breakdown: dict[str, int]
    delayed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            **self.scores.as_dict(),
            "seconds": self.seconds,
            "singles_per_second": self.singles_per_second,
            **self.breakdown,
            "delayed": self.delayed,
            **self.extra,
        }


def pair_flagged(singles: Singles, flags: np.ndarray, window_ns: float) -> Coincidences:
    """Coincidences among flagged singles: GATE sorter (takeWinnerOfGoods) on them alone."""
    chosen = np.flatnonzero(flags)
    pairs = gate_sorter(singles.subset(chosen), window_ns, "takeWinnerOfGoods", energy_window=None)
    return Coincidences(chosen[pairs.first], chosen[pairs.second], "petnet+pairing")


def _timed(run: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    times, out = [], None
    for _ in range(repeats):
        tic = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - tic)
    return out, float(np.median(times))


def evaluate_classical(
    name: str, singles: Singles, run: Callable[[Singles], Coincidences], repeats: int = 3
) -> MethodResult:
    """Time ``run(singles)`` (median of ``repeats``) and score its coincidences."""
    pairs, seconds = _timed(lambda: run(singles), repeats)
    n = len(singles)
    return MethodResult(
        name,
        score(singles, pairs.hit_flags(n)),
        seconds,
        n / seconds if seconds > 0 else float("inf"),
        pairs.classify(singles),
        pairs.delayed,
    )


def evaluate_petnet(
    name: str, singles: Singles, sorter: PETNetSorter, window_ns: float = 4.0, repeats: int = 3
) -> MethodResult:
    """Time the network on ``singles`` (median of ``repeats``), score it, pair its singles."""
    decoded, seconds = _timed(lambda: sorter.predict(singles), repeats)
    pairs = pair_flagged(singles, decoded.flags, window_ns)
    n = len(singles)
    return MethodResult(
        name,
        score(singles, decoded.flags, decoded.spurious, decoded.timing_error_ns),
        seconds,
        n / seconds if seconds > 0 else float("inf"),
        pairs.classify(singles),
        extra={"device": str(sorter.device)},
    )


def compare(
    singles: Singles,
    sorters: dict[str, PETNetSorter] | None = None,
    window_ns: float = 4.0,
    energy_window: tuple[float, float] | None = (350.0, 650.0),
    policies: tuple[str, ...] = POLICIES,
    delayed_offset_ns: float | None = 100.0,
    repeats: int = 3,
) -> list[MethodResult]:
    """Score the sliding window, the GATE sorter per policy and each PETNet on ``singles``."""
    if not singles.has_truth:
        raise ValueError("evaluation needs singles with ground truth")
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    results = [
        evaluate_classical(
            "sliding window (paper)",
            singles,
            lambda s: sliding_window(s, window_ns, energy_window),
            repeats,
        )
    ]
    for policy in policies:
        results.append(
            evaluate_classical(
                f"GATE {policy}",
                singles,
                lambda s, policy=policy: gate_sorter(
                    s, window_ns, policy, energy_window, delayed_offset_ns=delayed_offset_ns
                ),
                repeats,
            )
        )
    for name, sorter in (sorters or {}).items():
        results.append(evaluate_petnet(name, singles, sorter, window_ns, repeats))
    return results


def markdown_table(results: list[MethodResult]) -> str:
    """The comparison as a Markdown table, best F1 in bold."""
    best = max(r.scores.f1 for r in results) if results else None
    lines = [
        "| method | F1 | precision | recall | trues | scatters | randoms | delayed | "
        "timing error (ns) | singles/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        f1 = f"{r.scores.f1:.4f}"
        timing = r.scores.timing_error_ns
        lines.append(
            f"| {r.name} | {f'**{f1}**' if r.scores.f1 == best else f1} | "
            f"{r.scores.precision:.4f} | {r.scores.recall:.4f} | {r.breakdown['trues']} | "
            f"{r.breakdown['scatters']} | {r.breakdown['randoms']} | "
            f"{'–' if r.delayed is None else r.delayed} | "
            f"{'–' if timing is None else f'{timing:.3f}'} | {_rate(r.singles_per_second)} |"
        )
    return "\n".join(lines) + "\n"


def _rate(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f}"
