"""Singles → spike trains (crystal × time bins) for the network, and spikes → flagged singles.

Time is cut into bins of ``bin_width_ns``. For whole-scanner windows, silences longer than
``max_gap_bins`` are shortened to that length: the network forgets within a few coincidence
windows, so nothing it could use is lost, and the work per single no longer grows with the
time between singles (at low count rates most bins would otherwise be empty).

Target: every single that belongs to a true coincidence whose two singles are both in the
input gets a spike on its crystal at its *decision time*, the bin in which the later photon of
its pair arrived — the earliest moment a causal network can know the pair is complete (a leaky
neuron can only fire when an input arrives). An output spike matches a single on the same
crystal when it comes 0 to ``tolerance_bins`` bins after the single.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from petnet.classical import energy_selection
from petnet.config import EncodingConfig
from petnet.metrics import true_pairs
from petnet.singles import Singles


@dataclass
class SpikeStream:
    """The encoded singles, sorted by time; one entry per spike.

    Args:
        single: Index into the ``Singles`` of each spike.
        bin: Time bin with long silences shortened (whole-scanner windows).
        raw_bin: Time bin without shortening (per-hit patches).
        crystal: Crystal of each spike.
        energy: Energy / 511 keV.
        fine_time: Position inside the raw bin, 0 to 1.
        partner: Spike index of the true-coincidence partner, −1 if none; ``None`` without
            ground truth.
        n_bins: Bins of the shortened time axis, warm-up included.
        n_crystals: Crystals of the scanner.
        n_singles: Singles that were encoded (inside the energy window or not).
    """

    single: np.ndarray
    bin: np.ndarray
    raw_bin: np.ndarray
    crystal: np.ndarray
    energy: np.ndarray
    fine_time: np.ndarray
    partner: np.ndarray | None
    n_bins: int
    n_crystals: int
    n_singles: int

    def __len__(self) -> int:
        return len(self.bin)

    def values(self, channel: str) -> np.ndarray:
        """Per spike, what it puts into ``channel``.

        Args:
            channel: ``spike``, ``energy`` or ``time``.
        """
        if channel == "spike":
            return np.ones(len(self), dtype=np.float32)
        return self.energy if channel == "energy" else self.fine_time

    @property
    def target(self) -> np.ndarray | None:
        """Per spike: does it belong to a true coincidence (``None`` without ground truth)?"""
        return None if self.partner is None else self.partner >= 0

    def decision_bin(self, bins: np.ndarray) -> np.ndarray:
        """Per spike: the later bin of it and its partner (its own bin if no partner).

        Args:
            bins: Bin of every spike (``bin`` or ``raw_bin``).
        """
        if self.partner is None:
            raise ValueError("these singles carry no ground truth, so there is no target")
        partner_bin = np.where(self.partner >= 0, bins[np.maximum(self.partner, 0)], bins)
        return np.maximum(bins, partner_bin)


def encode(singles: Singles, config: EncodingConfig) -> SpikeStream:
    """Bin the singles, shorten silences and attach the training target if truth is known.

    Args:
        singles: Time-sorted singles.
        config: How to encode them.
    """
    chosen = energy_selection(singles, config.energy_window_kev)
    t = singles.time_ns[chosen]
    in_bins = (t - (t[0] if len(t) else 0.0)) / config.bin_width_ns
    raw = np.floor(in_bins).astype(np.int64)
    steps = np.minimum(np.diff(raw), config.max_gap_bins)
    bins = config.max_gap_bins + np.concatenate([[0], np.cumsum(steps)]) if len(t) else raw
    partner = None
    if singles.has_truth:
        position = np.full(len(singles), -1, dtype=np.int64)
        position[chosen] = np.arange(len(chosen))
        pairs = position[true_pairs(singles)]
        pairs = pairs[(pairs >= 0).all(axis=1)]
        partner = np.full(len(chosen), -1, dtype=np.int64)
        partner[pairs[:, 0]] = pairs[:, 1]
        partner[pairs[:, 1]] = pairs[:, 0]
    last = int(bins[-1]) if len(bins) else 0
    return SpikeStream(
        single=chosen,
        bin=bins,
        raw_bin=raw,
        crystal=singles.crystal[chosen].astype(np.int64),
        energy=(singles.energy_kev[chosen] / 511.0).astype(np.float32),
        fine_time=(in_bins - raw).astype(np.float32),
        partner=partner,
        n_bins=last + 1 + config.warmup_bins,
        n_crystals=singles.scanner.n_crystals,
        n_singles=len(singles),
    )


def window_starts(stream: SpikeStream, length: int, stride: int) -> np.ndarray:
    """Start bins of windows of ``length`` every ``stride`` bins that contain a spike.

    Args:
        stream: The encoded singles.
        length: Bins per window.
        stride: Bins between window starts.
    """
    if length < 1 or stride < 1:
        raise ValueError("window length and stride must be >= 1")
    starts = np.arange(0, max(stream.n_bins - length + stride, 1), stride)
    if not len(stream):
        return starts[:0]
    first = np.searchsorted(stream.bin, starts, side="left")
    last = np.searchsorted(stream.bin, starts + length, side="left")
    return starts[last > first]


def densify(
    stream: SpikeStream,
    starts: np.ndarray,
    length: int,
    config: EncodingConfig,
    device: torch.device | str = "cpu",
    with_target: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Input (B, T, C, N) and target (B, T, N) tensors for windows starting at ``starts``.

    Args:
        stream: The encoded singles.
        starts: First bin of each window.
        length: Bins per window.
        config: The encoding (its channels).
        device: Where the tensors are built.
        with_target: Build the target too (needs ground truth); otherwise it is ``None``.
    """
    starts = np.asarray(starts, dtype=np.int64)
    x = torch.zeros(len(starts), length, len(config.channels), stream.n_crystals, device=device)
    rows, offset, picked = _gather(stream.bin, starts, length)
    where = [torch.as_tensor(a, device=device) for a in (rows, offset)]
    crystal = torch.as_tensor(stream.crystal[picked], device=device)
    for channel, name in enumerate(config.channels):
        values = torch.as_tensor(stream.values(name)[picked], device=device)
        x[where[0], where[1], channel, crystal] = values
    if not with_target:
        return x, None
    decision = stream.decision_bin(stream.bin)
    order = np.argsort(decision, kind="stable")
    rows, offset, picked = _gather(decision[order], starts, length)
    picked = order[picked]
    keep = stream.target[picked]
    y = torch.zeros(len(starts), length, stream.n_crystals, device=device)
    y[
        torch.as_tensor(rows[keep], device=device),
        torch.as_tensor(offset[keep], device=device),
        torch.as_tensor(stream.crystal[picked][keep], device=device),
    ] = 1.0
    return x, y


def _gather(
    bins: np.ndarray, starts: np.ndarray, length: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(window row, bin offset, index) of the sorted ``bins`` that fall in each window."""
    first = np.searchsorted(bins, starts, side="left")
    count = np.searchsorted(bins, starts + length, side="left") - first
    rows = np.repeat(np.arange(len(starts)), count)
    picked = np.repeat(first, count) + ramp(count)
    return rows, bins[picked] - starts[rows], picked


def ramp(count: np.ndarray) -> np.ndarray:
    """0, 1, …, count[0] − 1, 0, 1, …, count[1] − 1, … (vectorised).

    Args:
        count: Length of each ramp.
    """
    return np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)


@dataclass(frozen=True)
class Decoded:
    """Output spikes read back onto the singles.

    Args:
        flags: Per single of the original ``Singles``: marked by an output spike?
        spurious: Output spikes that match no single.
        timing_error_ns: Mean |spike − decision time| over matched true singles (``None``
            without ground truth or matches).
    """

    flags: np.ndarray
    spurious: int
    timing_error_ns: float | None


def decode(
    stream: SpikeStream,
    spike_bin: np.ndarray,
    spike_crystal: np.ndarray,
    config: EncodingConfig,
) -> Decoded:
    """Match whole-scanner output spikes (compressed bins) to singles, one to one.

    Args:
        stream: The encoded singles.
        spike_bin: Bin of each output spike.
        spike_crystal: Crystal of each output spike.
        config: The encoding (its tolerance).
    """
    hit_key = stream.crystal * (stream.n_bins + 1) + stream.bin
    spike_key = np.asarray(spike_crystal, np.int64) * (stream.n_bins + 1) + np.asarray(
        spike_bin, np.int64
    )
    return match_spikes(stream, hit_key, spike_key, stream.bin, spike_bin, config)


def match_spikes(
    stream: SpikeStream,
    hit_key: np.ndarray,
    spike_key: np.ndarray,
    hit_bins: np.ndarray,
    spike_bin: np.ndarray,
    config: EncodingConfig,
) -> Decoded:
    """Give each spike to the latest single on its crystal at most ``tolerance`` bins before it.

    A single claimed by several spikes keeps the earliest; the rest are spurious.

    Args:
        stream: The encoded singles.
        hit_key: Per spike of the stream, a key that orders (crystal, bin).
        spike_key: The same key for each output spike.
        hit_bins: Bin of every spike of the stream on the axis of ``spike_bin``.
        spike_bin: Bin of each output spike.
        config: The encoding (its tolerance and bin width).
    """
    flags = np.zeros(stream.n_singles, dtype=bool)
    if len(spike_key) == 0 or len(hit_key) == 0:
        return Decoded(flags, len(spike_key), None)
    order = np.argsort(hit_key, kind="stable")
    pos = np.searchsorted(hit_key[order], spike_key, side="right") - 1
    lag = spike_key - hit_key[order][np.maximum(pos, 0)]
    ok = (pos >= 0) & (lag >= 0) & (lag <= config.tolerance_bins)
    claims = np.flatnonzero(ok)
    claims = claims[np.lexsort((lag[claims], pos[claims]))]
    _, first = np.unique(pos[claims], return_index=True)
    winners = claims[first]
    hits = order[pos[winners]]
    flags[stream.single[hits]] = True
    error = None
    if stream.partner is not None:
        true = stream.partner[hits] >= 0
        if true.any():
            decision = stream.decision_bin(hit_bins)[hits[true]]
            error = float(np.abs(np.asarray(spike_bin)[winners[true]] - decision).mean())
            error *= config.bin_width_ns
    return Decoded(flags, len(spike_key) - len(winners), error)
