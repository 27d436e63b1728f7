"""Event-driven inference of the ``ring`` network: compute only where and when spikes arrive.

A per-hit patch (see ``petnet.patches``) is silent in most of its time bins: its input is
non-zero only in the bins where some single arrived. In a silent bin every neuron of a
``quiescent`` network (``ModelConfig.quiescent``) receives only its bias, stays below threshold
and emits nothing, so the next layer is silent too. Between two input events each membrane
therefore follows the closed form

    v(t + k) = βᵏ · v(t) + G(k),

where G(k) is the membrane a resting neuron reaches after k silent bins (computed once per
network by stepping norse's LIF update, so a patch that starts in silence gets exactly the
stepped values). At each event the layers run norse's own update on the rows of the patches
that have that event, one event rank after the other, so the work grows with the number of
events and not with patch length. The output spikes are those of the time-stepped path; the
only difference is the rounding of βᵏ · v + G(k) against k rounded steps, which could flip a
membrane that lands within a few float32 ulps of threshold: the tests and every benchmark run
compare the flags of both engines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from petnet.config import EncodingConfig
from petnet.model import PETNet
from petnet.patches import patch_cells, patch_length
from petnet.scanner import Scanner
from petnet.spikes import SpikeStream
from shared_hpc import UserError


@dataclass(frozen=True)
class PatchEvents:
    """The non-silent bins of a set of patches, sorted by patch, then time.

    Args:
        patch: Patch of each event.
        time: Bin of each event inside its patch.
        x: Input features of each event (events, features).
        n_patches: Patches, silent or not.
    """

    patch: np.ndarray
    time: np.ndarray
    x: np.ndarray
    n_patches: int


def patch_events(
    stream: SpikeStream,
    centres: np.ndarray,
    scanner: Scanner,
    config: EncodingConfig,
    geometry_scales: int,
) -> PatchEvents:
    """The events of the patches of the spikes ``centres`` (the same inputs as
    ``petnet.patches.hit_patches``, without the silent bins).

    Args:
        stream: The encoded singles.
        centres: Indices of the spikes whose patches to build.
        scanner: The scanner (its rings and arcs).
        config: The encoding.
        geometry_scales: Opposite-arc channels (``ModelConfig.geometry_scales``).
    """
    cell, x = patch_cells(stream, centres, scanner, config, geometry_scales)
    length = patch_length(config)
    return PatchEvents(cell // length, cell % length, x, len(centres))


def is_quiescent(model: PETNet) -> bool:
    """Whether no neuron of ``model`` can fire without input (its biases are capped)."""
    return model.config.quiescent and model.config.architecture == "ring"


@torch.no_grad()
def event_output(
    model: PETNet, events: PatchEvents, length: int, block: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Output spikes of the ring network at each event: (patch, time) of every output spike.

    Args:
        model: A quiescent ring network.
        events: The events of the patches.
        length: Bins per patch.
        block: Patches whose state is updated together (small enough to stay in the cache).

    Raises:
        UserError: A network that fires without input (event-driven inference would be wrong).
    """
    if not is_quiescent(model):
        raise UserError(
            "event-driven inference needs a quiescent ring network (ModelConfig.quiescent); "
            "this one (e.g. a checkpoint of petnet 0.1) can fire without input: use the "
            "time-stepped engine"
        )
    device = model.direct.device
    layers = []
    for index, neuron in enumerate(model.neurons):
        tau = neuron.params().tau_mem_inv
        bias = model.bias(index)
        decay, rest = _rest(bias, tau, length)
        layers.append((model.synapses[index].weight, bias, tau, decay, rest))
    # patches by falling event count: the patches that have an r-th event are a prefix, so
    # every membrane update works on a slice of the state rather than gathering and scattering;
    # blocks of patches keep that state in the cache
    counts = np.bincount(events.patch, minlength=events.n_patches)
    first = np.cumsum(counts) - counts
    small = np.uint16 if length < 1 << 16 else np.int64  # 16 bits: numpy sorts by radix
    by_count = np.argsort((length - counts).astype(small), kind="stable")
    first, counts = first[by_count], counts[by_count]
    x_all = torch.from_numpy(events.x).to(device)
    time_all = torch.from_numpy(events.time).to(device)
    first_all = torch.from_numpy(first).to(device)
    out_patch, out_time = [], []
    for start in range(0, events.n_patches, block):
        stop = min(start + block, events.n_patches)
        part = -counts[start:stop]
        alive = np.searchsorted(part, -np.arange(1, int(-part[0]) + 1), side="right")
        fired, when = _run_block(
            layers, model, x_all, time_all, first_all[start:stop], alive.tolist()
        )
        out_patch.append(by_count[start + fired])
        out_time.append(when)
    if not out_patch:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_patch), np.concatenate(out_time)


def _run_block(
    layers: list, model: PETNet, x_all, time_all, first, alive: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Output spikes (patch in the block, bin) of a block of patches sorted by falling event
    count; ``alive[r]`` of them have an r-th event."""
    threshold = model.config.threshold
    membranes = [torch.zeros(len(first), w.shape[0], device=first.device) for w, *_ in layers]
    last = torch.full((len(first),), -1, dtype=torch.long, device=first.device)
    out_patch, out_time = [], []
    for r, n in enumerate(alive):
        idx = first[:n] + r
        when = time_all[idx]
        silent = when - last[:n] - 1  # bins since the previous event (or the start)
        h = x_all[idx]
        direct = h @ model.direct
        for layer, (weight, bias, tau, decay, rest) in enumerate(layers):
            state = membranes[layer][:n]
            # closed-form decay over the silent bins; at rest (r = 0) exactly G(k)
            v = rest[silent] if r == 0 else torch.addcmul(rest[silent], decay[silent], state)
            current = torch.addmm(bias, h, weight.t())
            if layer == len(layers) - 1:
                current += direct[:, None]
            # norse's LIF box step v + τ⁻¹·(i/τ⁻¹ − v), operation for operation, in place
            v = current.div_(tau).sub_(v).mul_(tau).add_(v)
            fired = v > threshold
            h = fired.to(v.dtype)
            state.copy_(v.masked_fill_(fired, 0.0))  # reset
        last[:n] = when
        fired = torch.nonzero(h[:, 0] > 0)[:, 0]
        out_patch.append(fired.cpu().numpy())
        out_time.append(when[fired].cpu().numpy())
    return np.concatenate(out_patch), np.concatenate(out_time)


def _rest(bias: torch.Tensor, tau: torch.Tensor, length: int) -> tuple[torch.Tensor, ...]:
    """βᵏ and the membrane G(k) of a neuron at rest after k silent bins, k = 0 … length, both
    (k + 1, neurons); G is stepped exactly as the time-stepped path steps a silent bin."""
    steps = torch.arange(length + 1, device=bias.device, dtype=torch.float64)[:, None]
    decay = ((1.0 - tau.double())[None, :] ** steps).float()
    v = torch.zeros_like(bias)
    rest = [v]
    for _ in range(length):
        v = v + tau * (bias / tau - v)
        rest.append(v)
    return decay, torch.stack(rest)
