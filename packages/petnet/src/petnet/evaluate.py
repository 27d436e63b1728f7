"""Compare PETNet with the classical sorters on one file: same scoring, same singles.

Every method is timed on the whole file (median of a few runs) and scored with
``petnet.metrics.score``. Its flagged singles are also paired into coincidences (PETNet's
by the GATE sorter run on the flagged singles only), so each method gets the same
trues/scatters/randoms breakdown.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from petnet.classical import (
    WINDOW_NS,
    Coincidences,
    gate_sorter,
    sliding_window,
)
from petnet.config import CompareConfig
from petnet.inference import PETNetSorter
from petnet.metrics import PAPER_F1, Scores, score, true_pairs
from petnet.singles import Singles
from shared_hpc import Headline, UserError


@dataclass
class MethodResult:
    """How one method did on one file.

    Args:
        name: The method, as shown in tables.
        scores: Its coincidence-level scores.
        seconds: Median time for the whole file.
        singles_per_second: Throughput.
        breakdown: Trues, scatters and randoms among its coincidences.
        delayed: Pairs in its delayed window, if it opened one.
        extra: Further columns (the device of a network).
    """

    name: str
    scores: Scores
    seconds: float
    singles_per_second: float
    breakdown: dict[str, int]
    delayed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """One flat row: name, scores, timing, breakdown."""
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
    """Coincidences among flagged singles: GATE sorter (takeWinnerOfGoods) on them alone.

    Args:
        singles: All singles.
        flags: Per single: flagged by the network?
        window_ns: Coincidence window of the pairing.
    """
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
    """Time ``run(singles)`` (median of ``repeats``) and score its coincidences.

    Args:
        name: The method's name in tables.
        singles: Singles with ground truth.
        run: The sorter.
        repeats: Timing runs.
    """
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
    name: str,
    singles: Singles,
    sorter: PETNetSorter,
    window_ns: float = WINDOW_NS,
    repeats: int = 3,
) -> MethodResult:
    """Time the network on ``singles`` (median of ``repeats``), score it, pair its singles.

    Args:
        name: The method's name in tables.
        singles: Singles with ground truth.
        sorter: The trained network.
        window_ns: Coincidence window of the pairing of its flagged singles.
        repeats: Timing runs.
    """
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


@dataclass
class Comparison:
    """Every method's result on one file, in the order they ran.

    Args:
        methods: One result per method.
    """

    methods: list[MethodResult]

    def best(self) -> MethodResult:
        """The method with the highest F1."""
        return max(self.methods, key=lambda r: r.scores.f1)

    def metrics(self) -> dict[str, Any]:
        """The rows of every method, for a run record."""
        return {"methods": [r.as_dict() for r in self.methods]}

    def headline(self) -> Headline:
        """The best method's F1 beside the paper's."""
        best = self.best()
        return Headline(
            f"coincidence F1, best method ({best.name})", round(best.scores.f1, 4), paper=PAPER_F1
        )

    def markdown(self) -> str:
        """The comparison as a Markdown table, best F1 in bold."""
        best = self.best().scores.f1 if self.methods else None
        lines = [
            "| method | F1 | precision | recall | trues | scatters | randoms | delayed | "
            "timing error (ns) | singles/s |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in self.methods:
            f1 = f"{r.scores.f1:.4f}"
            timing = r.scores.timing_error_ns
            lines.append(
                f"| {r.name} | {f'**{f1}**' if r.scores.f1 == best else f1} | "
                f"{r.scores.precision:.4f} | {r.scores.recall:.4f} | {r.breakdown['trues']} | "
                f"{r.breakdown['scatters']} | {r.breakdown['randoms']} | "
                f"{'–' if r.delayed is None else r.delayed} | "
                f"{'–' if timing is None else f'{timing:.3f}'} | {rate(r.singles_per_second)} |"
            )
        return "\n".join(lines) + "\n"


def load_sorters(
    paths: Sequence[str | os.PathLike[str]], device: str | torch.device = "cpu"
) -> dict[str, PETNetSorter]:
    """PETNet sorters from checkpoints, named by architecture and file for the table.

    Args:
        paths: Checkpoints of ``petnet.train.train``.
        device: Where the networks run.

    Raises:
        CheckpointError: A file that is not a readable PETNet checkpoint.
    """
    sorters = {}
    for path in paths:
        sorter = PETNetSorter.from_checkpoint(path, device=device)
        sorters[f"PETNet ({sorter.model.config.architecture}, {Path(path).name})"] = sorter
    return sorters


def compare(
    singles: Singles,
    sorters: dict[str, PETNetSorter] | None = None,
    config: CompareConfig | None = None,
) -> Comparison:
    """Score the sliding window, the GATE sorter per policy and each PETNet on ``singles``.

    Args:
        singles: Singles with ground truth.
        sorters: Trained networks by name.
        config: Window, energy window, policies and timing runs (default: ``CompareConfig()``).

    Raises:
        UserError: The singles carry no ground truth or no true coincidence, or a network was
            trained for another scanner.
    """
    if not singles.has_truth:
        raise UserError("evaluation needs singles with ground truth")
    if len(true_pairs(singles)) == 0:
        raise UserError(
            f"the {len(singles)} singles hold no true coincidence, so no method can be scored"
        )
    config = config or CompareConfig()
    window_ns, energy_window, repeats = config.window_ns, config.energy_window_kev, config.repeats
    results = [
        evaluate_classical(
            "sliding window (paper)",
            singles,
            lambda s: sliding_window(s, window_ns, energy_window),
            repeats,
        )
    ]
    for policy in config.policies:
        results.append(
            evaluate_classical(
                f"GATE {policy}",
                singles,
                lambda s, policy=policy: gate_sorter(
                    s, window_ns, policy, energy_window, delayed_offset_ns=config.delayed_offset_ns
                ),
                repeats,
            )
        )
    for name, sorter in (sorters or {}).items():
        results.append(evaluate_petnet(name, singles, sorter, window_ns, repeats))
    return Comparison(results)


def rate(value: float) -> str:
    """A throughput in a few characters: ``1.54 M``, ``12.0 k``, ``850``.

    Args:
        value: Singles per second.
    """
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f}"
