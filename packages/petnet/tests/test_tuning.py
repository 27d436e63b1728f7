"""The tuned GATE baseline: its settings come from the validation singles it is given."""

import itertools

import numpy as np
import pytest
from petnet.classical import gate_sorter
from petnet.metrics import score
from petnet.tuning import tune_gate

from shared_hpc import UserError

GRID = {
    "policies": ("takeAllGoods", "takeWinnerOfGoods"),
    "windows_ns": (0.3, 0.75, 4.0),
    "energy_low_kev": (350.0, 475.0),
}


def brute_force(singles):
    """The best (policy, window, low) on ``singles``, by an independent loop."""

    def f1(setting):
        policy, window, low = setting
        pairs = gate_sorter(singles, window, policy, (low, 650.0))
        return score(singles, pairs.hit_flags(len(singles))).f1

    settings = itertools.product(GRID["policies"], GRID["windows_ns"], GRID["energy_low_kev"])
    return max(settings, key=f1), f1


def test_tuning_follows_the_validation_data_it_is_given(hand_singles):
    starts = 1000.0 * np.arange(20)
    # true pairs 2 ns apart on opposite crystals: only a wide window finds them
    slow = hand_singles(
        np.stack([starts, starts + 2.0], 1).ravel(),
        [0, 32] * 20,
        [511.0] * 40,
        decay_id=np.repeat(np.arange(20), 2),
    )
    # true pairs 0.2 ns apart and a random single 2.5 ns later: a wide window adds it
    fast = hand_singles(
        np.stack([starts, starts + 0.2, starts + 2.5], 1).ravel(),
        [0, 32, 33] * 20,
        [511.0] * 60,
        decay_id=np.stack([np.arange(20), np.arange(20), 100 + np.arange(20)], 1).ravel(),
    )
    chosen = {}
    for name, singles in (("slow", slow), ("fast", fast)):
        tuned = tune_gate(singles, **GRID)
        best, f1 = brute_force(singles)
        chosen[name] = (tuned.policy, tuned.window_ns, tuned.energy_window_kev[0])
        assert chosen[name] == best
        assert tuned.validation_f1 == pytest.approx(f1(best)) == pytest.approx(1.0)
        found = score(singles, tuned.sort(singles).hit_flags(len(singles))).f1
        assert found == pytest.approx(tuned.validation_f1)
    assert chosen["slow"][1] == 4.0 and chosen["fast"][1] < 1.0  # set by the data given


def test_tuning_needs_ground_truth(test_singles):
    measured = test_singles.subset(slice(0, 100))
    measured.decay_id = measured.scattered = None
    with pytest.raises(UserError, match="ground truth"):
        tune_gate(measured, **GRID)
