"""Coincidence-level scores, computed the same way for every method.

A *true coincidence* is a pair of singles from the same decay, both unscattered, both
detected. Every method (classical sorter or PETNet) is reduced to one flag per single —
"this single belongs to a true coincidence" — plus, for PETNet, the output spikes that match
no single at all. Then

* TP: true coincidences whose two singles are both flagged;
* FN: true coincidences with at least one single not flagged;
* FP: flagged singles outside the found true coincidences, plus unmatched spikes, counted in
  coincidences (two singles make one false coincidence).

Precision = TP / (TP + FP), recall = TP / (TP + FN), F1 their harmonic mean.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from petnet.singles import Singles
from shared_hpc import UserError

CATEGORIES = ("true", "scatter", "single")
PAPER_F1 = 0.952  # the paper's best coincidence F1 (its abstract), the headline's reference


def true_pairs(singles: Singles) -> np.ndarray:
    """Index pairs (n, 2) of the true coincidences, earlier single first.

    Args:
        singles: Singles with ground truth.

    Raises:
        UserError: No ground truth, or a decay with more than two singles.
    """
    if not singles.has_truth:
        raise UserError("scoring needs singles with ground truth (decay_id and scattered)")
    order = np.argsort(singles.decay_id, kind="stable")
    ids = singles.decay_id[order]
    if ids.size and np.unique(ids, return_counts=True)[1].max() > 2:
        raise UserError("a decay has more than two singles; ground truth is inconsistent")
    same = np.flatnonzero(ids[1:] == ids[:-1])
    a, b = order[same], order[same + 1]
    clean = ~(singles.scattered[a] | singles.scattered[b])
    pairs = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)[clean]
    return pairs[np.argsort(pairs[:, 0], kind="stable")]


def categories(singles: Singles) -> np.ndarray:
    """Per single: 0 = in a true coincidence, 1 = in a scattered pair, 2 = partner not detected.

    Args:
        singles: Singles with ground truth.

    Raises:
        UserError: No ground truth.
    """
    if not singles.has_truth:
        raise UserError("categories need singles with ground truth")
    _, inverse, counts = np.unique(singles.decay_id, return_inverse=True, return_counts=True)
    paired = counts[inverse] == 2
    scattered_pair = np.zeros(len(counts), dtype=bool)
    np.logical_or.at(scattered_pair, inverse, singles.scattered)
    out = np.full(len(singles), 2, dtype=np.int8)
    out[paired & ~scattered_pair[inverse]] = 0
    out[paired & scattered_pair[inverse]] = 1
    return out


@dataclass(frozen=True)
class Scores:
    """Coincidence-level precision/recall/F1 and the make-up of what was flagged.

    Args:
        true_coincidences: True coincidences in the singles.
        tp: True coincidences with both singles flagged.
        fp: False coincidences: flagged singles outside found true coincidences plus spurious
            spikes, two per coincidence.
        fn: True coincidences not found.
        precision: TP / (TP + FP).
        recall: TP / (TP + FN).
        f1: Harmonic mean of precision and recall.
        flagged_true: Flagged singles that belong to a true coincidence.
        flagged_scatter: Flagged singles of a pair with a scattered photon.
        flagged_single: Flagged singles whose partner was not detected.
        spurious_spikes: Output spikes that matched no single.
        timing_error_ns: Mean timing error of matched spikes (PETNet only).
    """

    true_coincidences: int
    tp: int
    fp: float
    fn: int
    precision: float
    recall: float
    f1: float
    flagged_true: int
    flagged_scatter: int
    flagged_single: int
    spurious_spikes: int
    timing_error_ns: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        """The scores as a plain dict."""
        return asdict(self)


def score(
    singles: Singles,
    flags: np.ndarray,
    spurious_spikes: int = 0,
    timing_error_ns: float | None = None,
) -> Scores:
    """Score per-single flags against the ground truth (see the module docstring).

    Args:
        singles: Singles with ground truth.
        flags: Per single: flagged as part of a true coincidence?
        spurious_spikes: Output spikes that matched no single.
        timing_error_ns: Mean timing error to report with the scores.

    Raises:
        UserError: The singles carry no ground truth.
    """
    flags = np.asarray(flags)
    if flags.shape != (len(singles),) or flags.dtype != np.bool_:
        raise ValueError(f"flags must be a boolean array of shape ({len(singles)},)")
    if spurious_spikes < 0:
        raise ValueError("spurious_spikes must be >= 0")
    pairs = true_pairs(singles)
    found = flags[pairs[:, 0]] & flags[pairs[:, 1]] if len(pairs) else np.zeros(0, bool)
    tp = int(found.sum())
    fn = len(pairs) - tp
    extra = int(flags.sum()) - 2 * tp + spurious_spikes
    fp = extra / 2.0
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / len(pairs) if len(pairs) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    kind = categories(singles)[flags]
    return Scores(
        true_coincidences=len(pairs),
        tp=tp,
        fp=fp,
        fn=fn,
        precision=precision,
        recall=recall,
        f1=f1,
        flagged_true=int((kind == 0).sum()),
        flagged_scatter=int((kind == 1).sum()),
        flagged_single=int((kind == 2).sum()),
        spurious_spikes=int(spurious_spikes),
        timing_error_ns=timing_error_ns,
    )
