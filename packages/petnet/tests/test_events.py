"""Event-driven inference: the same output spikes as stepping through every bin."""

import numpy as np
import pytest
import torch
from petnet.config import EncodingConfig, ModelConfig
from petnet.demo import demo_simulation
from petnet.events import _rest
from petnet.inference import PETNetSorter, build_model
from petnet.model import PETNet
from petnet.scanner import preset
from petnet.sim import simulate

from shared_hpc import UserError


def busy_network(seed: int, encoding: EncodingConfig, quiescent: bool = True) -> PETNet:
    """The untrained ring network (a coincidence detector through its direct path) with strong
    random hidden weights and biases (many capped at rest) that drive its output too."""
    torch.manual_seed(seed)
    net = build_model(preset("small"), encoding, ModelConfig(quiescent=quiescent))
    with torch.no_grad():
        for synapse in net.synapses[:-1]:
            synapse.bias.normal_(0.0, 0.3)
            synapse.weight.mul_(1.5)
        net.synapses[-1].weight.normal_(0.0, 0.05)
    return net


@pytest.mark.parametrize(
    ("seed", "activity_mbq", "encoding"),
    [
        (11, 50.0, EncodingConfig()),
        (12, 300.0, EncodingConfig()),
        (13, 600.0, EncodingConfig(energy_window_kev=(425.0, 650.0))),
        (14, 300.0, EncodingConfig(bin_width_ns=0.5, max_gap_bins=16, tolerance_bins=4)),
        (15, 150.0, EncodingConfig(channels=("spike", "energy", "time"))),
    ],
)
def test_events_and_steps_flag_the_same_singles(seed, activity_mbq, encoding):
    singles = simulate(demo_simulation(seed, 8_000 / (activity_mbq * 1e6), activity_mbq * 1e6))
    net = busy_network(seed, encoding)
    steps = PETNetSorter(net, singles.scanner, encoding, engine="steps").predict(singles)
    events = PETNetSorter(net, singles.scanner, encoding, engine="events").predict(singles)
    assert 0.02 < steps.flags.mean() < 0.95  # a real test: many flagged, many not
    assert np.array_equal(events.flags, steps.flags)
    assert events.spurious == steps.spurious
    assert events.timing_error_ns == steps.timing_error_ns


def test_quiescent_network_stays_silent_without_input():
    net = busy_network(0, EncodingConfig())
    for layer, neuron in enumerate(net.neurons):
        assert (net.bias(layer) <= neuron.resting_cap()).all()
    silence = torch.zeros(4, 200, net.features)
    assert net.eval()(silence).sum() == 0
    loud = busy_network(0, EncodingConfig(), quiescent=False).eval()
    assert loud(silence).sum() > 0  # the same biases uncapped fire at rest


def test_resting_membrane_table_matches_stepping():
    net = busy_network(1, EncodingConfig())
    tau = net.neurons[0].params().tau_mem_inv
    decay, rest = _rest(net.bias(0), tau, 20)
    v = torch.zeros_like(tau)
    for k in range(21):
        assert torch.equal(rest[k], v)
        v = v + tau * (net.bias(0) / tau - v)
    assert torch.allclose(decay[3], (1 - tau) ** 3)


def test_events_engine_refuses_a_network_that_fires_at_rest():
    loud = busy_network(0, EncodingConfig(), quiescent=False)
    with pytest.raises(UserError, match="quiescent"):
        PETNetSorter(loud, preset("small"), EncodingConfig(), engine="events")
    assert PETNetSorter(loud, preset("small"), EncodingConfig()).engine == "steps"
    quiet = busy_network(0, EncodingConfig())
    assert PETNetSorter(quiet, preset("small"), EncodingConfig()).engine == "events"
