"""Per-hit spike-train patches for the ``ring`` network, and reading its answers back.

For every encoded single, the patch is the spike train of its crystal over the bins
``[bin − history, bin + tolerance]`` (history = ``max_gap_bins``), with channels

* the encoding's channels (``spike``, ``energy``, ``time``) of the hits on this crystal;
* one channel per arc width: hits on the opposite arc, any ring (the geometry-aware input);
* per analog channel (``energy``, ``time``), its sum over the hits on the widest arc: the
  partner photon's energy and arrival time within the bin;
* ``others``: hits on every other crystal (how busy the scanner is right now).

These are exactly the inputs the shared per-crystal network would see at this crystal in a
whole-scanner evaluation, restricted to the time it needs, so work grows with the number of
singles and not with the number of crystals.
"""

from __future__ import annotations

import numpy as np

from petnet.config import EncodingConfig
from petnet.model import arc_half_widths
from petnet.scanner import Scanner
from petnet.spikes import SpikeStream, ramp


def patch_length(config: EncodingConfig) -> int:
    """Bins per patch: the history, the hit's own bin and the matching tolerance.

    Args:
        config: The encoding.
    """
    return config.max_gap_bins + config.tolerance_bins + 1


def patch_cells(
    stream: SpikeStream,
    centres: np.ndarray,
    scanner: Scanner,
    config: EncodingConfig,
    geometry_scales: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The non-silent bins of the patches of the spikes ``centres`` and their inputs:
    ``cell`` (patch × ``patch_length`` + bin, sorted) and ``x`` (cells, features), each
    cell summed over the spikes in it.

    Args:
        stream: The encoded singles.
        centres: Indices of the spikes whose patches to build.
        scanner: The scanner (its rings and arcs).
        config: The encoding.
        geometry_scales: Opposite-arc channels (``ModelConfig.geometry_scales``).
    """
    analog = config.channels[1:]
    centres = np.asarray(centres, dtype=np.int64)
    # every spike in every patch, by patch and then time, so cells come out sorted
    patch, other, when = _window(stream, centres, config)
    cell = patch * patch_length(config) + when
    crystal, centre_crystal = stream.crystal[other], stream.crystal[centres][patch]
    same = crystal == centre_crystal
    k = scanner.crystals_per_ring
    offset = np.mod(crystal % k - centre_crystal % k - k // 2, k)
    offset = np.where(offset > k // 2, offset - k, offset)
    arcs = [~same & (np.abs(offset) <= h) for h in arc_half_widths(scanner, geometry_scales)]
    values = [stream.values(name)[other] for name in analog]
    columns = [
        same,
        *(same * value for value in values),
        *arcs,
        *(arcs[0] * value for value in values),
        ~same,  # others: how busy the scanner is
    ]
    entries = np.stack(columns, axis=1).astype(np.float32)
    starts = np.flatnonzero(np.diff(cell, prepend=-1))
    x = np.add.reduceat(entries, starts, axis=0) if len(starts) else entries
    x[:, 0] = np.minimum(x[:, 0], 1.0)
    return cell[starts], x


def hit_patches(
    stream: SpikeStream,
    centres: np.ndarray,
    scanner: Scanner,
    config: EncodingConfig,
    geometry_scales: int,
    with_target: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Inputs (P, T, F) and, optionally, targets (P, T) for the spikes ``centres``.

    Args:
        stream: The encoded singles.
        centres: Indices of the spikes whose patches to build.
        scanner: The scanner (its rings and arcs).
        config: The encoding.
        geometry_scales: Opposite-arc channels (``ModelConfig.geometry_scales``).
        with_target: Build the targets too (needs ground truth); otherwise they are ``None``.
    """
    history = config.max_gap_bins
    length = patch_length(config)
    centres = np.asarray(centres, dtype=np.int64)
    cell, cells_x = patch_cells(stream, centres, scanner, config, geometry_scales)
    x = np.zeros((len(centres) * length, cells_x.shape[1]), dtype=np.float32)
    x[cell] = cells_x
    x = x.reshape(len(centres), length, -1)
    if not with_target:
        return x, None
    if stream.target is None:
        raise ValueError("these singles carry no ground truth, so there is no target")
    b = stream.raw_bin
    patch, other, _ = _window(stream, centres, config)
    same = stream.crystal[other] == stream.crystal[centres][patch]
    y = np.zeros((len(centres), length), dtype=np.float32)
    partner = stream.partner[other]
    decision = np.maximum(b[other], np.where(partner >= 0, b[np.maximum(partner, 0)], b[other]))
    when = decision - b[centres][patch] + history
    hit = same & (partner >= 0) & (when < length)
    y[patch[hit], when[hit]] = 1.0
    return x, y


def _window(
    stream: SpikeStream, centres: np.ndarray, config: EncodingConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(patch, spike, bin inside the patch) of every spike that falls in each patch."""
    history = config.max_gap_bins
    b = stream.raw_bin
    lo = np.searchsorted(b, b[centres] - history, side="left")
    hi = np.searchsorted(b, b[centres] + patch_length(config) - history - 1, side="right")
    count = hi - lo
    patch = np.repeat(np.arange(len(centres)), count)
    other = np.repeat(lo, count) + ramp(count)
    return patch, other, b[other] - b[centres][patch] + history
