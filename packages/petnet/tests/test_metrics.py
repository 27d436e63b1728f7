import numpy as np
import pytest
from petnet.metrics import categories, score, true_pairs

from shared_hpc import UserError


@pytest.fixture
def truth(hand_singles):
    # decays: 1 true pair (0, 1); 2 true pair (2, 3); 3 scattered pair (4, 5); 4 lone single (6)
    return hand_singles(
        [0.0, 1.0, 10.0, 11.0, 20.0, 21.0, 30.0],
        [0, 32, 5, 37, 9, 41, 12],
        [511] * 7,
        decay_id=[1, 1, 2, 2, 3, 3, 4],
        scattered=[False, False, False, False, False, True, False],
    )


def test_true_pairs_and_categories(truth):
    assert true_pairs(truth).tolist() == [[0, 1], [2, 3]]
    assert categories(truth).tolist() == [0, 0, 0, 0, 1, 1, 2]


def test_a_coincidence_counts_only_when_both_singles_are_flagged(truth):
    flags = np.array([True, True, True, False, False, False, False])
    s = score(truth, flags)
    assert (s.tp, s.fn, s.fp) == (1, 1, 0.5)  # single 2 alone is half a false coincidence
    assert s.precision == pytest.approx(1 / 1.5)
    assert s.recall == pytest.approx(0.5)
    assert s.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_false_flags_and_spurious_spikes_cost_precision(truth):
    flags = np.array([True, True, True, True, True, True, True])
    s = score(truth, flags, spurious_spikes=1)
    assert (s.tp, s.fn, s.fp) == (2, 0, 2.0)  # scattered pair, lone single, one spike
    assert (s.flagged_true, s.flagged_scatter, s.flagged_single) == (4, 2, 1)
    perfect = score(truth, categories(truth) == 0)
    assert perfect.f1 == 1.0 and perfect.fp == 0


def test_nothing_flagged_scores_zero(truth):
    s = score(truth, np.zeros(len(truth), dtype=bool))
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)


def test_bad_inputs(truth, hand_singles):
    with pytest.raises(ValueError, match="flags"):
        score(truth, np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="flags"):
        score(truth, np.ones(len(truth)))
    measured = hand_singles([0.0], [0], [511])
    with pytest.raises(UserError, match="ground truth"):
        score(measured, np.ones(1, dtype=bool))
    inconsistent = hand_singles([0.0, 1.0, 2.0], [0, 1, 2], [511] * 3, decay_id=[5, 5, 5])
    with pytest.raises(UserError, match="more than two"):
        true_pairs(inconsistent)
