"""PETNet: spiking networks (norse LIF neurons) that mark the singles of true coincidences.

Two architectures:

* ``dense`` — the paper's: three fully connected LIF layers over all crystals, reading spike
  trains (batch, time, channel, crystal) of the whole scanner. Its weights grow with the
  square of the crystal count, so it suits small scanners.
* ``ring`` — ours: one small LIF network shared by every crystal of the ring. It reads the
  spike trains of one crystal — its own hits and, as geometry-aware input, the hits on the
  arcs opposite to it where a partner photon can land — so its size does not depend on the
  scanner. It is evaluated only around hits (see ``petnet.patches``), so its cost grows
  with the number of singles, not with crystals × time bins.

Both get the paper's geometry-aware input: per crystal, the count of hits on the opposite arc
that the field of view allows (any ring), at a few arc widths, and the summed analog inputs of
those hits — the partner photon's energy, which tells scatter apart, and optionally its
arrival time within the bin. Both have a direct path from their inputs to the output neurons,
initialised so that the untrained network already acts as a coincidence detector of about one
bin (own spike + partner → above threshold, each alone below); training then refines it
rather than starting from silence.

Layers are evaluated one after the other over the whole time window — exact for feed-forward
networks — so synapses run as one large matrix product and only the cheap neuron update loops
over time.
"""

from __future__ import annotations

import itertools
import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from petnet.config import ModelConfig
from petnet.scanner import Scanner

# norse 1.1 decorates its functions with torch.jit.script, which torch deprecates; the warning
# concerns norse, not anything a user of petnet could change
warnings.filterwarnings(
    "ignore",
    message=r"`torch\.jit\.script` is deprecated",
    category=FutureWarning,
    module=r"torch\.jit\._script",
)
from norse.torch.functional.lif_box import (  # noqa: E402
    LIFBoxFeedForwardState,
    LIFBoxParameters,
    lif_box_feed_forward_step,
)

# a quiescent neuron's bias stays below this fraction of the current that holds its membrane
# at threshold, so rounding cannot make a neuron at rest fire
QUIESCENT_MARGIN = 0.95


class LIFLayer(nn.Module):
    """Leaky integrate-and-fire neurons from norse with a learnable leak per neuron.

    norse's box LIF step is v ← v + τ⁻¹·(i − v); feeding i/τ⁻¹ turns it into the paper's
    v ← β·v + i with β = 1 − τ⁻¹, and β is learned through a sigmoid.

    Args:
        size: Neurons in the layer.
        beta: Initial leak of every neuron.
        config: The network's settings (threshold, surrogate, noise, learned leak).
    """

    def __init__(self, size: int, beta: float, config: ModelConfig) -> None:
        super().__init__()
        logit = math.log((1.0 - beta) / beta)
        self.leak_logit = nn.Parameter(torch.full((size,), logit), requires_grad=config.learn_leak)
        self.threshold = config.threshold
        self.noise = config.current_noise
        self.method = config.surrogate
        self.alpha = config.surrogate_alpha

    @property
    def beta(self) -> torch.Tensor:
        """The leak of each neuron."""
        return 1.0 - torch.sigmoid(self.leak_logit)

    def params(self) -> LIFBoxParameters:
        """norse's parameters of these neurons (also used by the event-driven engine)."""
        zero = torch.zeros((), device=self.leak_logit.device)
        return LIFBoxParameters(
            tau_mem_inv=torch.sigmoid(self.leak_logit),
            v_th=zero + self.threshold,
            v_reset=zero,
            v_leak=zero,
            method=self.method,
            alpha=torch.as_tensor(self.alpha),
        )

    def resting_cap(self) -> torch.Tensor:
        """Largest bias with which each neuron never fires without input: a constant current
        c drives the membrane towards c / (1 − β), which must stay below threshold."""
        return torch.sigmoid(self.leak_logit) * self.threshold * QUIESCENT_MARGIN

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        """Spikes of the layer, the same shape as its input.

        Args:
            current: Input currents (B, T, ..., size).
        """
        params = self.params()
        tau_mem_inv = params.tau_mem_inv
        # time-major and contiguous, so each step reads one block and the backward pass
        # of the split is a single concatenation rather than one full-size zero fill per step
        if self.training and self.noise > 0:
            # a decision that a little noise flips gets a gradient to move away from threshold
            current = current + self.noise * torch.randn_like(current)
        steps = (current / tau_mem_inv).transpose(0, 1).contiguous().unbind(0)
        state = LIFBoxFeedForwardState(v=torch.zeros_like(steps[0]))
        spikes = []
        for step in steps:
            z, state = lif_box_feed_forward_step(step, state, params, dt=1.0)
            spikes.append(z)
        return torch.stack(spikes, dim=1)


def arc_half_widths(scanner: Scanner, scales: int) -> list[int]:
    """Half widths (in crystals) of the opposite arcs, widest first.

    Args:
        scanner: The scanner (its field of view sets the widest arc).
        scales: How many arcs, each half as wide as the previous.
    """
    widest = min(scanner.acceptance_half_width, (scanner.crystals_per_ring - 1) // 2)
    return [widest >> k for k in range(scales)]


class OppositeArc(nn.Module):
    """Geometry channels for whole-scanner spike trains: hits on the arcs opposite each crystal,
    summed over all rings, one channel per arc width.

    Args:
        scanner: The scanner.
        scales: How many arc widths.
    """

    def __init__(self, scanner: Scanner, scales: int) -> None:
        super().__init__()
        self.rings = scanner.n_rings
        self.crystals = scanner.crystals_per_ring
        self.half_widths = arc_half_widths(scanner, scales)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """Sums over the opposite arcs, (B, T, N, scales).

        Args:
            spikes: Values per crystal (B, T, N).
        """
        batch, time, _ = spikes.shape
        k = self.crystals
        per_angle = spikes.view(batch, time, self.rings, k).sum(dim=2)
        opposite = torch.roll(per_angle, shifts=-(k // 2), dims=-1)
        widest = self.half_widths[0]
        padded = torch.cat([opposite[..., k - widest :], opposite, opposite[..., :widest]], -1)
        total = F.pad(padded.cumsum(dim=-1), (1, 0))
        arcs = []
        for h in self.half_widths:
            lo = widest - h
            arcs.append(total[..., lo + 2 * h + 1 : lo + 2 * h + 1 + k] - total[..., lo : lo + k])
        arc = torch.stack(arcs, dim=-1).unsqueeze(2).expand(batch, time, self.rings, k, len(arcs))
        return arc.reshape(batch, time, self.rings * k, len(arcs))


class PETNet(nn.Module):
    """The spiking network: ``dense``: (B, T, C, N) → (B, T, N); ``ring``: per-hit patches
    (P, T, F) → (P, T).

    Args:
        scanner: The scanner it reads.
        in_channels: Input channels of the encoding (``len(EncodingConfig.channels)``).
        config: Shape and neuron settings.
    """

    def __init__(self, scanner: Scanner, in_channels: int, config: ModelConfig) -> None:
        super().__init__()
        self.scanner_shape = (scanner.n_rings, scanner.crystals_per_ring)
        self.config = config
        self.in_channels = in_channels
        dense = config.architecture == "dense"
        self.opposite = OppositeArc(scanner, config.geometry_scales) if dense else None
        # each analog input (energy, time) summed over the widest arc; ring patches also carry
        # the hits on all other crystals (how busy the scanner is)
        analog = in_channels - 1
        self.features = in_channels + config.geometry_scales + analog + (not dense)
        n = scanner.n_crystals if dense else 1
        sizes = [self.features * n, *config.hidden, n]
        self.synapses = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        betas = [config.beta] * len(config.hidden) + [config.output_beta]
        self.neurons = nn.ModuleList(
            LIFLayer(size, beta, config) for size, beta in zip(sizes[1:], betas, strict=True)
        )
        own, arc = config.direct_init or ((0.6, 0.45) if dense else (0.6, 0.6))
        direct = torch.zeros(self.features)
        direct[0], direct[in_channels] = own, arc
        self.direct = nn.Parameter(direct)
        with torch.no_grad():
            # hidden layers stronger than default so sparse spikes drive them; the last one
            # weak, so the network starts out as its direct path; no biases at first, since a
            # constant current adds up to bias / (1 − β) in the membrane
            for layer, linear in enumerate(self.synapses):
                last = layer == len(self.synapses) - 1
                linear.weight.mul_(0.1 if last else config.init_gain)
                linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output spikes for input spike trains.

        Args:
            x: Spike trains (B, T, C, N) for dense, per-hit patches (P, T, F) for ring.
        """
        if self.config.architecture == "dense":
            return self._dense(x)
        if x.dim() != 3 or x.shape[-1] != self.features:
            raise ValueError(f"expected patches (P, time, {self.features}), got {tuple(x.shape)}")
        return self._layers(x, x @ self.direct)

    def _dense(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[2] != self.in_channels:
            raise ValueError(
                f"expected input (batch, time, {self.in_channels}, crystals), got {tuple(x.shape)}"
            )
        batch, time, _, n = x.shape
        if n != self.scanner_shape[0] * self.scanner_shape[1]:
            raise ValueError(
                f"input has {n} crystals, the model was built for {self.scanner_shape}"
            )
        parts = [x.transpose(2, 3), self.opposite(x[:, :, 0])]
        for channel in range(1, self.in_channels):  # analog inputs on the widest arc
            parts.append(self.opposite(x[:, :, channel])[..., :1])
        h = torch.cat(parts, dim=-1)  # (B, T, N, F)
        return self._layers(h.reshape(batch, time, -1), h @ self.direct)

    def bias(self, layer: int) -> torch.Tensor:
        """The bias of a layer's neurons, capped below their resting threshold when the
        network is ``quiescent``.

        Args:
            layer: Index of the layer.
        """
        bias = self.synapses[layer].bias
        if not self.config.quiescent:
            return bias
        return torch.minimum(bias, self.neurons[layer].resting_cap())

    def _layers(self, h: torch.Tensor, direct: torch.Tensor) -> torch.Tensor:
        last = len(self.synapses) - 1
        for layer, (synapse, neuron) in enumerate(zip(self.synapses, self.neurons, strict=True)):
            current = F.linear(h, synapse.weight, self.bias(layer))
            if layer == last:
                current = current + (direct if current.shape == direct.shape else direct[..., None])
            h = neuron(current)
        return h if self.config.architecture == "dense" else h.squeeze(-1)
