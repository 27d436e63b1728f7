"""Neuron Transplantation: the wide model is the ensemble, pruning restores the members' shapes,
every variant weighs every member equally, and the layer order comes from the forward graph."""

import copy

import pytest
import torch
from neuron_transplantation.fusion import Ensemble, fuse
from neuron_transplantation.graph import trace_network
from neuron_transplantation.models import build_model
from neuron_transplantation.transplant import (
    concatenate,
    fuse_transplant,
    prune,
    transplant,
)
from torch import nn

from shared_hpc import UserError

X = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(99))


ARCHS = ["mlp", "lenet", "lenet-bn", "vgg", "vgg-bn", "resnet", "cnn1d"]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("count", [2, 3])
def test_the_wide_model_computes_the_ensemble_average(arch, count, specs, random_members):
    members = random_members(specs[arch], count)
    network = trace_network(members[0], X)
    wide = concatenate(members, network)
    expected = Ensemble(members)(X)
    torch.testing.assert_close(wide(X), expected, rtol=1e-5, atol=1e-5)
    widths, wider = network.widths(members[0]), network.widths(wide)
    assert {g: wider[g] for g in network.hidden} == {g: count * widths[g] for g in network.hidden}
    assert wider[network.output] == widths[network.output]


def test_the_wide_model_equals_the_ensemble_in_training_mode_too(specs, random_members):
    members = [m.train() for m in random_members(specs["lenet-bn"], 2)]  # batch statistics
    wide = concatenate(members, trace_network(members[0], X))
    torch.testing.assert_close(wide(X), Ensemble(members)(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
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
    result = transplant([quiet, loud], trace_network(quiet, X))
    width = specs["mlp"].width
    assert len(result.kept) == 2
    for kept in result.kept.values():  # wide channels width..2*width-1 are member 1's
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
    network = trace_network(members[0], X)
    assert [layer.name for layer in network.layers] == ["stem", "middle", "head"]
    assert [(n.name, n.group) for n in network.norms] == [("norm", 0)]
    assert network.layers[1].spread == 4
    wide = concatenate(members, network)
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


class SquashedHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(64, 16), nn.Linear(16, 10)

    def forward(self, x):
        return torch.tanh(self.b(torch.relu(self.a(x.flatten(1)))))


class SquaredHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(64, 16), nn.Linear(16, 10)

    def forward(self, x):
        y = self.b(torch.relu(self.a(x.flatten(1))))
        return y * y / 2  # x * x is not linear, though one tensor


class Concatenating(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(64, 16), nn.Linear(64, 16), nn.Linear(32, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.c(torch.cat([self.a(x), self.b(x)], 1))


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (Residual(), "adds the raw input to hidden channels"),
        (WithLayerNorm(), r"n \(LayerNorm\): a LayerNorm over the members' concatenated"),
        (SquashedHead(), "a non-linear operation after the last layer"),
        (SquaredHead(), "a non-linear operation after the last layer"),
        (Concatenating(), "unsupported operation call_function cat"),
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


def test_channels_joined_by_a_residual_addition_share_one_group(specs, random_members):
    members = random_members(specs["resnet"], 2)
    network = trace_network(members[0], X)
    group = {layer.name: layer.target for layer in network.layers}
    stream = {"stem.0", "blocks.0.conv2", "blocks.1.conv2"}  # stage 1: identity shortcuts
    assert len({group[name] for name in stream}) == 1
    assert group["blocks.2.conv2"] == group["blocks.2.shortcut.0"] == group["blocks.3.conv2"]
    assert len(set(group.values())) == 12 + 1  # 4 streams + 8 block interiors + output
    wide = concatenate(members, network)
    torch.testing.assert_close(wide(X), Ensemble(members)(X), rtol=1e-5, atol=1e-5)
    # the projection shortcut of the wide model is block-diagonal: no member reads another's
    shortcut = wide.get_submodule("blocks.2.shortcut.0").weight
    half_out, half_in = shortcut.shape[0] // 2, shortcut.shape[1] // 2
    assert shortcut[:half_out, half_in:].abs().sum() == 0
    assert shortcut[half_out:, :half_in].abs().sum() == 0
    assert shortcut[:half_out, :half_in].abs().sum() > 0


def test_torchvision_resnet18_is_fused_exactly_and_loads_into_its_class():
    torchvision = pytest.importorskip("torchvision")
    members = []
    for i in range(2):
        torch.manual_seed(i)
        members.append(torchvision.models.resnet18(num_classes=10).eval())
    images = torch.randn(2, 3, 32, 32)
    network = trace_network(members[0], images)
    wide = concatenate(members, network)
    torch.testing.assert_close(wide(images), Ensemble(members)(images), rtol=1e-4, atol=1e-4)
    result = transplant(members, network)
    fresh = torchvision.models.resnet18(num_classes=10)
    fresh.load_state_dict(result.model.state_dict(), strict=True)


@pytest.mark.parametrize("arch", ["mlp", "lenet-bn", "vgg", "resnet", "cnn1d"])
@pytest.mark.parametrize("weights", [None, [0.75, 0.25]])
def test_pruning_from_the_members_equals_pruning_the_built_wide_model(
    arch, weights, specs, random_members
):
    members = random_members(specs[arch], 2)
    network = trace_network(members[0], X)
    expected, expected_kept = prune(concatenate(members, network, weights), network, members[0])
    result = transplant(members, network, weights)
    assert {g: k.tolist() for g, k in result.kept.items()} == {
        g: k.tolist() for g, k in expected_kept.items()
    }
    for key, value in expected.state_dict().items():
        torch.testing.assert_close(result.model.state_dict()[key], value)


class ScaledHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(64, 16), nn.Linear(16, 10)

    def forward(self, x):
        y = self.b(torch.relu(self.a(x.flatten(1)))) / 2 + 1
        return nn.functional.dropout(y, 0.1, self.training)


def test_linear_operations_after_the_last_layer_are_fused_exactly():
    members = []
    for i in range(2):
        torch.manual_seed(i)
        members.append(ScaledHead().eval())
    wide = concatenate(members, trace_network(members[0], X))
    torch.testing.assert_close(wide.eval()(X), Ensemble(members)(X), rtol=1e-5, atol=1e-5)
