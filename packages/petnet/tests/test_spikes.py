"""Encoding singles as spike trains, per-hit patches, and reading output spikes back."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from petnet.config import EncodingConfig
from petnet.model import OppositeArc
from petnet.patches import hit_patches, patch_length
from petnet.spikes import decode, densify, encode, window_starts


@pytest.fixture
def pair_and_single(hand_singles):
    # a true pair 1 ns apart (bins 0 and 2 at 0.5 ns), then a lone single far later
    return hand_singles(
        [0.0, 1.0, 500.0], [0, 32, 5], [511, 511, 511], decay_id=[1, 1, 2], scattered=None
    )


def test_long_silences_are_shortened_and_targets_sit_at_the_decision_time(pair_and_single):
    config = EncodingConfig(bin_width_ns=0.5, max_gap_bins=16)
    stream = encode(pair_and_single, config)
    assert stream.raw_bin.tolist() == [0, 2, 1000]
    assert stream.bin.tolist() == [16, 18, 34]  # the 998-bin silence became 16
    assert stream.partner.tolist() == [1, 0, -1]
    assert stream.decision_bin(stream.bin).tolist() == [18, 18, 34]
    x, y = densify(stream, np.array([10]), 32, config)
    assert x.shape == (1, 32, 2, 256) and y.shape == (1, 32, 256)
    assert x[0, 6, 0, 0] == 1 and x[0, 8, 0, 32] == 1 and x[0, 24, 0, 5] == 1
    assert x[0, 6, 1, 0] == pytest.approx(1.0)  # energy / 511 keV
    assert y.sum() == 2 and y[0, 8, 0] == 1 and y[0, 8, 32] == 1


def test_energy_window_removes_singles_from_the_input(hand_singles):
    singles = hand_singles([0.0, 1.0], [0, 32], [511, 200], decay_id=[1, 1])
    stream = encode(singles, EncodingConfig())
    assert stream.single.tolist() == [0]
    assert stream.partner.tolist() == [-1]  # its partner is not in the input: no target


def test_window_starts_skip_empty_windows(pair_and_single):
    stream = encode(pair_and_single, EncodingConfig(max_gap_bins=100))
    starts = window_starts(stream, 50, 50)
    assert starts.tolist() == [100, 200]


def test_decode_matches_spikes_after_singles_within_tolerance(pair_and_single):
    config = EncodingConfig(bin_width_ns=0.5, tolerance_bins=2)
    stream = encode(pair_and_single, config)
    b = stream.bin
    spike_bin = np.array([b[0] + 2, b[0] + 2, b[1] + 0, b[2] + 3, b[2] - 1])
    spike_crystal = np.array([0, 0, 32, 5, 5])
    decoded = decode(stream, spike_bin, spike_crystal, config)
    # the pair is found (second spike on crystal 0 is a duplicate); the single's spikes are
    # 3 bins late and 1 bin early, both outside [0, 2]
    assert decoded.flags.tolist() == [True, True, False]
    assert decoded.spurious == 3
    assert decoded.timing_error_ns == pytest.approx(0.0)


def test_patches_equal_the_whole_scanner_inputs_at_the_hit(test_singles):
    config = EncodingConfig()
    # whole-scanner windows on the raw (unshortened) time axis, which the patches use
    stream = replace(encode(test_singles, config), bin=None)
    stream.bin = stream.raw_bin + 1000
    centres = np.arange(200, 260)
    x, y = hit_patches(stream, centres, test_singles.scanner, config, geometry_scales=2)
    assert x.shape == (60, patch_length(config), 6) and y.shape == (60, patch_length(config))
    history = config.max_gap_bins
    arc = OppositeArc(test_singles.scanner, 2)
    for p, i in enumerate(centres):
        start = stream.bin[i] - history
        dense, target = densify(stream, np.array([start]), x.shape[1], config)
        crystal = stream.crystal[i]
        own = dense[0, :, 0, crystal].numpy()
        assert np.array_equal(x[p, :, 0], own)
        assert np.allclose(x[p, :, 1], dense[0, :, 1, crystal].numpy())
        arcs = arc(dense[:, :, 0])[0, :, crystal].numpy()
        assert np.array_equal(x[p, :, 2:4], arcs)
        arc_energy = arc(dense[:, :, 1])[0, :, crystal, 0].numpy()
        assert np.allclose(x[p, :, 4], arc_energy, atol=1e-5)
        others = dense[0, :, 0].sum(dim=1).numpy() - own
        assert np.array_equal(x[p, :, 5], others)
        assert np.array_equal(y[p], target[0, :, crystal].numpy())


def test_opposite_arc_counts_hits_on_the_far_side_of_any_ring():
    from petnet.scanner import preset

    scanner = preset("small")  # 64 crystals per ring, acceptance ±15
    arc = OppositeArc(scanner, 2)
    assert arc.half_widths == [15, 7]
    spikes = torch.zeros(1, 1, scanner.n_crystals)
    spikes[0, 0, 3 * 64 + 32] = 1  # ring 3, opposite crystal 0
    spikes[0, 0, 42] = 1  # ring 0, 10 from the crystal opposite crystal 0
    out = arc(spikes)[0, 0]
    assert out[0].tolist() == [2.0, 1.0]  # crystal 0, ring 0: both in the wide arc
    assert out[64].tolist() == [2.0, 1.0]  # the same azimuth on ring 1
    assert out[32].tolist() == [0.0, 0.0]
