"""Sorters against hand-built singles whose coincidences are known for every policy.

Small scanner: 64 crystals per ring, radius 60 mm, FOV radius 40 mm, so a pair is geometrically
good when its chord is at least 2·√(60² − 40²) ≈ 89 mm: crystals 0 and 32 (opposite) are good,
0 and 4 (neighbours) are not, 32 and 4 (28 apart) are.
"""

import numpy as np
import pytest
from petnet.chain import chain_mask
from petnet.classical import POLICIES, gate_sorter, sliding_window

from shared_hpc import UserError


def pairs_of(coincidences):
    return sorted(zip(coincidences.first.tolist(), coincidences.second.tolist(), strict=True))


# window A: A–B good (1010 keV), A–C good (950 keV); window B: B–C bad; D–E isolated and good
SCENARIO_ONE = ([0.0, 1.0, 2.0, 100.0, 101.0], [0, 32, 31, 10, 42], [500, 510, 440, 500, 500])
EXPECTED_ONE = {
    "removeMultiples": [(3, 4)],
    "takeAllGoods": [(0, 1), (0, 2), (3, 4)],
    "takeWinnerOfGoods": [(0, 1), (3, 4)],
    "takeIfOnlyOneGood": [(3, 4)],
    "takeWinnerIfIsGood": [(0, 1), (3, 4)],
    "takeWinnerIfAllAreGoods": [(0, 1), (3, 4)],
}
# window A: A–B good (900 keV), A–C bad (1000 keV, the winner); window B: B–C good
SCENARIO_TWO = ([0.0, 1.0, 2.0], [0, 32, 4], [400, 500, 600])
EXPECTED_TWO = {
    "removeMultiples": [(1, 2)],
    "takeAllGoods": [(0, 1), (1, 2)],
    "takeWinnerOfGoods": [(0, 1), (1, 2)],
    "takeIfOnlyOneGood": [(0, 1), (1, 2)],
    "takeWinnerIfIsGood": [(1, 2)],
    "takeWinnerIfAllAreGoods": [(1, 2)],
}


@pytest.mark.parametrize("policy", POLICIES)
def test_every_policy_on_two_hand_built_scenarios(policy, hand_singles):
    one = hand_singles(*SCENARIO_ONE)
    assert pairs_of(gate_sorter(one, 4.0, policy)) == EXPECTED_ONE[policy]
    two = hand_singles(*SCENARIO_TWO)
    assert pairs_of(gate_sorter(two, 4.0, policy)) == EXPECTED_TWO[policy]


def test_energy_window_drops_singles_before_pairing(hand_singles):
    singles = hand_singles([0.0, 1.0, 2.0], [0, 32, 33], [500, 200, 500])
    assert pairs_of(gate_sorter(singles, 4.0, "removeMultiples")) == [(0, 2)]
    assert pairs_of(gate_sorter(singles, 4.0, "removeMultiples", energy_window=None)) == []


def test_same_crystal_never_pairs_and_window_edge_is_inclusive(hand_singles):
    singles = hand_singles([0.0, 1.0, 5.0, 9.0], [0, 0, 32, 0], [500] * 4)
    # 0–0 same crystal; 1→5 is exactly the window; 5→9 too
    assert pairs_of(gate_sorter(singles, 4.0, "takeAllGoods")) == [(1, 2), (2, 3)]


def test_single_window_mode_lets_only_free_singles_open_windows(hand_singles):
    singles = hand_singles([0.0, 3.0, 6.0, 9.0], [0, 32, 1, 33], [500] * 4)
    multi = gate_sorter(singles, 4.0, "takeAllGoods")
    single = gate_sorter(singles, 4.0, "takeAllGoods", multi_window=False)
    assert pairs_of(multi) == [(0, 1), (1, 2), (2, 3)]
    # single 1 lies in the window of single 0, so 2 opens the next window
    assert pairs_of(single) == [(0, 1), (2, 3)]


def test_delayed_window_counts_pairs_at_the_offset(hand_singles):
    singles = hand_singles([0.0, 102.0, 300.0, 306.0, 406.0], [0, 32, 0, 32, 33], [500] * 5)
    pairs = gate_sorter(singles, 4.0, "takeAllGoods", delayed_offset_ns=100.0)
    assert pairs_of(pairs) == []
    # 0→102 falls in [100, 104]; 306→406 too but its crystals are neighbours (not good)
    assert pairs.delayed == 1


def test_geometry_filter_limits(hand_singles):
    singles = hand_singles([0.0, 1.0], [0, 64 * 3 + 32], [500, 500])  # opposite, three rings apart
    assert len(gate_sorter(singles, 4.0, "takeAllGoods")) == 1
    assert len(gate_sorter(singles, 4.0, "takeAllGoods", max_axial_mm=8.0)) == 0
    assert len(gate_sorter(singles, 4.0, "takeAllGoods", min_transaxial_mm=121.0)) == 0


def test_sliding_window_keeps_only_groups_of_exactly_two(hand_singles):
    singles = hand_singles(
        [0.0, 3.0, 6.0, 20.0, 23.0, 40.0, 60.0], [0, 32, 1, 5, 37, 9, 41], [500] * 7
    )
    # 0, 3, 6 chain into a group of three; 20–23 is a pair; 40 and 60 are alone
    assert pairs_of(sliding_window(singles, 4.0)) == [(3, 4)]
    assert pairs_of(sliding_window(singles, 2.0)) == []


def test_truth_classification_of_pairs(hand_singles):
    singles = hand_singles(
        [0.0, 1.0, 20.0, 21.0, 40.0, 41.0],
        [0, 32, 5, 37, 9, 41],
        [500] * 6,
        decay_id=[7, 7, 8, 8, 9, 10],
        scattered=[False, False, True, False, False, False],
    )
    counts = gate_sorter(singles, 4.0, "takeAllGoods").classify(singles)
    assert counts == {"trues": 1, "scatters": 1, "randoms": 1}


def test_bad_arguments_are_refused(hand_singles):
    singles = hand_singles([0.0, 1.0], [0, 32], [500, 500])
    with pytest.raises(UserError, match="policy"):
        gate_sorter(singles, 4.0, "keepAll")
    with pytest.raises(UserError, match="window"):
        gate_sorter(singles, 0.0)
    with pytest.raises(UserError, match="energy window"):
        sliding_window(singles, 4.0, (600.0, 300.0))
    with pytest.raises(UserError, match="delayed"):
        gate_sorter(singles, 4.0, delayed_offset_ns=2.0)


def test_empty_input_gives_no_coincidences(hand_singles):
    empty = hand_singles([], [], [])
    assert len(sliding_window(empty)) == 0
    for policy in POLICIES:
        assert len(gate_sorter(empty, 4.0, policy, delayed_offset_ns=100.0)) == 0


def test_chain_mask_takes_the_first_event_then_blocks():
    time = np.array([0.0, 1.0, 2.0, 3.5, 4.0, 10.0, 10.5, 20.0])
    group = np.array([0, 0, 0, 0, 0, 0, 0, 1])
    inclusive = chain_mask(time, 2.0, group, inclusive=True)
    assert inclusive.tolist() == [True, False, True, False, True, True, False, True]
    exclusive = chain_mask(time, 2.0, group, inclusive=False)
    assert exclusive.tolist() == [True, False, False, True, False, True, False, True]
