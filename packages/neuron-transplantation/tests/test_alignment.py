"""The baselines: OT fusion and weight matching undo a permutation of hidden channels; plain
averaging does not; OT fusion of a model with itself returns it."""

import copy

import numpy as np
import pytest
import torch
from neuron_transplantation.alignment import _apply, _per_channel, _permutation, average_weights
from neuron_transplantation.fusion import fuse
from neuron_transplantation.graph import trace_network

X = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(7))


def _permuted(model, seed):
    """``model`` with the channels of every hidden layer shuffled (attention heads as wholes):
    the same function."""
    network = trace_network(model, X)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(seed)
    for group, width in network.widths(model).items():
        if group != network.output:
            order = _permutation(rng.permutation(width // network.unit(group)))
            _apply(state, network, group, _per_channel(order, network, group))
    other = copy.deepcopy(model)
    other.load_state_dict(state)
    return other


@pytest.mark.parametrize("arch", ["mlp", "lenet", "lenet-bn", "vgg-bn", "resnet", "cnn1d", "vit"])
def test_ot_fusion_of_a_model_with_itself_returns_it(arch, specs, random_members):
    model = random_members(specs[arch], 1)[0]
    fused = fuse([model, copy.deepcopy(model)], X, "ot").model
    for key, value in model.state_dict().items():
        torch.testing.assert_close(fused.state_dict()[key], value)


@pytest.mark.parametrize("method", ["ot", "wm"])
@pytest.mark.parametrize("arch", ["mlp", "lenet-bn", "vgg", "resnet", "cnn1d", "vit"])
def test_alignment_undoes_a_permutation_that_plain_averaging_cannot(
    method, arch, specs, random_members
):
    model = random_members(specs[arch], 1)[0]
    shuffled = _permuted(model, seed=3)
    torch.testing.assert_close(shuffled(X), model(X), rtol=1e-5, atol=1e-5)  # same function
    fused = fuse([model, shuffled], X, method).model
    torch.testing.assert_close(fused(X), model(X), rtol=1e-5, atol=1e-5)
    averaged = average_weights([model, shuffled])
    assert (averaged(X) - model(X)).abs().max() > 1e-2


def test_weight_averaging_is_the_mean_of_every_tensor(specs, random_members):
    a, b = random_members(specs["lenet-bn"], 2)
    fused = fuse([a, b], X, "avg").model
    torch.testing.assert_close(
        fused.norm1.running_var, (a.norm1.running_var + b.norm1.running_var) / 2
    )
    torch.testing.assert_close(fused.fc2.weight, (a.fc2.weight + b.fc2.weight) / 2)


@pytest.mark.parametrize("method", ["ot", "wm"])
def test_alignment_undoes_a_permutation_through_a_depthwise_convolution(method, depthwise_members):
    model = depthwise_members(1)[0]
    shuffled = _permuted(model, seed=5)
    torch.testing.assert_close(shuffled(X), model(X), rtol=1e-5, atol=1e-5)
    fused = fuse([model, shuffled], X, method).model
    torch.testing.assert_close(fused(X), model(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["ot", "wm"])
def test_alignment_undoes_a_permutation_through_concatenated_channels(method, inception_members):
    model = inception_members(1)[0]
    shuffled = _permuted(model, seed=11)
    torch.testing.assert_close(shuffled(X), model(X), rtol=1e-5, atol=1e-5)
    fused = fuse([model, shuffled], X, method).model
    torch.testing.assert_close(fused(X), model(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["ot", "wm"])
def test_alignment_undoes_a_permutation_of_whole_convolution_groups(method, grouped_members):
    model = grouped_members(1)[0]
    shuffled = _permuted(model, seed=13)
    torch.testing.assert_close(shuffled(X), model(X), rtol=1e-5, atol=1e-5)
    fused = fuse([model, shuffled], X, method).model
    torch.testing.assert_close(fused(X), model(X), rtol=1e-5, atol=1e-5)
