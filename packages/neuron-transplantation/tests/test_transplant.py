"""Neuron Transplantation: the wide model is the ensemble, pruning restores the members' shapes,
every variant weighs every member equally, and the layer order comes from the forward graph."""

import copy

import pytest
import torch
from neuron_transplantation.fusion import Ensemble, fuse
from neuron_transplantation.graph import trace_chain
from neuron_transplantation.models import build_model
from neuron_transplantation.transplant import concatenate, fuse_transplant, transplant
from torch import nn

from shared_hpc import UserError

X = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(99))


@pytest.mark.parametrize("arch", ["mlp", "lenet", "lenet-bn"])
@pytest.mark.parametrize("count", [2, 3])
def test_the_wide_model_computes_the_ensemble_average(arch, count, specs, random_members):
    members = random_members(specs[arch], count)
    wide = concatenate(members, trace_chain(members[0], X))
    expected = Ensemble(members)(X)
    torch.testing.assert_close(wide(X), expected, rtol=1e-5, atol=1e-5)
    widths = trace_chain(members[0], X).widths(members[0])
    assert trace_chain(members[0], X).widths(wide)[:-1] == [count * w for w in widths[:-1]]


def test_the_wide_model_equals_the_ensemble_in_training_mode_too(specs, random_members):
    members = [m.train() for m in random_members(specs["lenet-bn"], 2)]  # batch statistics
    wide = concatenate(members, trace_chain(members[0], X))
    torch.testing.assert_close(wide(X), Ensemble(members)(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ["mlp", "lenet", "lenet-bn"])
@pytest.mark.parametrize("variant", ["one-shot", "iterative", "hierarchical"])
def test_the_fused_model_has_the_original_shapes_and_loads_into_the_class(
    arch, variant, specs, random_members
):
    members = random_members(specs[arch], 3)
    fused = fuse_transplant(members, X, variant)
    assert type(fused) is type(members[0])
    shapes = {k: v.shape for k, v in members[0].state_dict().items()}
    assert {k: v.shape for k, v in fused.state_dict().items()} == shapes
    fresh = build_model(specs[arch])
    fresh.load_state_dict(fused.state_dict(), strict=True)
    torch.testing.assert_close(fresh.eval()(X), fused.eval()(X))


def test_pruning_keeps_the_channels_of_largest_group_magnitude(specs, random_members):
    quiet, loud = random_members(specs["mlp"], 2)
    with torch.no_grad():  # member 1's hidden neurons are 10x larger in and out
        for layer in (loud.layers[1], loud.layers[3]):
            layer.weight.mul_(10)
        loud.layers[3].weight.mul_(10)
        loud.layers[5].weight.mul_(10)
    result = transplant([quiet, loud], trace_chain(quiet, X))
    width = specs["mlp"].width
    for kept in result.kept:  # wide channels width..2*width-1 are member 1's
        assert kept.tolist() == list(range(width, 2 * width))
    torch.testing.assert_close(result.model.layers[1].weight, loud.layers[1].weight)


def _linear_members(count: int) -> list[nn.Module]:
    members = []
    for i in range(count):
        torch.manual_seed(i)
        members.append(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)))
    return members


@pytest.mark.parametrize("variant", ["one-shot", "iterative", "hierarchical"])
@pytest.mark.parametrize("count", [3, 4, 5])
def test_every_variant_weighs_every_member_equally(variant, count):
    # A single layer is fused without pruning: the result must be the plain mean of the members.
    # The authors' iterative fusion averaged pairwise 1/2-1/2 and gave member 0 the weight
    # 1/2^(K-1); this fails for it.
    members = _linear_members(count)
    fused = fuse_transplant(members, X, variant)
    mean = torch.stack([m[1].weight for m in members]).mean(0)
    torch.testing.assert_close(fused[1].weight, mean, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", ["iterative", "hierarchical"])
def test_the_last_layer_bias_is_the_members_mean_in_every_variant(variant, specs, random_members):
    members = random_members(specs["mlp"], 4)
    fused = fuse_transplant(members, X, variant)
    mean = torch.stack([m.layers[5].bias for m in members]).mean(0)
    torch.testing.assert_close(fused.layers[5].bias, mean, rtol=1e-5, atol=1e-6)


class Scrambled(nn.Module):
    """Attributes assigned in another order than ``forward`` calls them, with a LeNet-like
    flatten that hard-codes the width; ``named_modules()`` order would fuse it wrongly."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(12, 10)
        self.middle = nn.Linear(8 * 4, 12)
        self.norm = nn.BatchNorm2d(8)
        self.stem = nn.Conv2d(1, 8, 3, padding=1)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.norm(self.stem(x))), 4)
        return self.head(torch.tanh(self.middle(x.view(-1, 32))))


def test_the_layer_order_comes_from_the_forward_graph():
    members = []
    for i in range(2):
        torch.manual_seed(i)
        members.append(Scrambled().eval())
    chain = trace_chain(members[0], X)
    assert [layer.name for layer in chain.layers] == ["stem", "middle", "head"]
    assert chain.layers[0].norm == "norm" and chain.layers[1].spread == 4
    wide = concatenate(members, chain)
    torch.testing.assert_close(wide(X), Ensemble(members)(X), rtol=1e-5, atol=1e-5)
    fused = fuse_transplant(members, X)
    Scrambled().load_state_dict(fused.state_dict())


def test_members_of_different_architectures_are_refused(specs, random_members):
    mlp = random_members(specs["mlp"], 1)[0]
    lenet = random_members(specs["lenet"], 1)[0]
    with pytest.raises(UserError, match="member 0 is MLP, member 1 is LeNet"):
        fuse([mlp, lenet], X, "nt")
    wider = build_model(type(specs["mlp"])("mlp", (1, 8, 8), 10, width=32))
    for method in ("nt", "ot", "wm", "avg"):
        with pytest.raises(
            UserError, match=r"layers.1.bias is \(16,\) in member 0 and \(32,\) in member 1"
        ):
            fuse([mlp, wider], X, method)


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(64, 64), nn.Linear(64, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.b(x + self.a(x))


class WithLayerNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.n, self.b = nn.Linear(64, 16), nn.LayerNorm(16), nn.Linear(16, 10)

    def forward(self, x):
        return self.b(self.n(self.a(x.flatten(1))))


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (Residual(), "branches after"),
        (WithLayerNorm(), r"unsupported operation n \(LayerNorm\)"),
    ],
)
def test_unsupported_networks_are_refused_not_fused_wrongly(model, message):
    with pytest.raises(UserError, match=message):
        fuse([model, copy.deepcopy(model)], X, "nt")


def test_fusion_leaves_the_members_unchanged(specs, random_members):
    members = random_members(specs["lenet-bn"], 2)
    before = [copy.deepcopy(m.state_dict()) for m in members]
    for method in ("nt", "ot", "wm", "avg"):
        fuse(members, X, method)
    for member, state in zip(members, before, strict=True):
        for key, value in member.state_dict().items():
            assert torch.equal(value, state[key])
