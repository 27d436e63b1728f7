"""Neuron Transplantation: the wide model is the ensemble, pruning restores the members' shapes,
every variant weighs every member equally, and the layer order comes from the forward graph."""

import copy

import pytest
import torch
from neuron_transplantation.fusion import Ensemble, fuse
from neuron_transplantation.graph import trace_network
from neuron_transplantation.models import build_model
from neuron_transplantation.transplant import (
    BlockLayerNorm,
    concatenate,
    fuse_transplant,
    prune,
    transplant,
)
from torch import nn

from shared_hpc import UserError

X = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(99))


ARCHS = ["mlp", "lenet", "lenet-bn", "vgg", "vgg-bn", "resnet", "cnn1d", "vit"]


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


class WithAttentionModule(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.attention = nn.Linear(8, 16), nn.MultiheadAttention(16, 4, batch_first=True)
        self.b = nn.Linear(16, 10)

    def forward(self, x):
        x = self.a(x[:, 0])
        return self.b(self.attention(x, x, x)[0][:, 0])


class InputScaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale, self.a = nn.Parameter(torch.ones(64)), nn.Linear(64, 10)

    def forward(self, x):
        return self.a(x.flatten(1) * self.scale)


class MixingReshape(nn.Module):
    """Rows of the image become channels: (batch, 4, 8, 8) to (batch, 32, 8)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(8, 10)

    def forward(self, x):
        return self.b(self.a(x).reshape(x.shape[0], 32, 8)).mean(1)


class DenseBlock(nn.Module):
    """DenseNet's pattern: a batch norm over concatenated channels (refused)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.norm, self.c = nn.BatchNorm2d(8), nn.Linear(8, 10)

    def forward(self, x):
        a = torch.relu(self.a(x))
        y = torch.relu(self.norm(torch.cat([a, self.b(a)], 1)))
        return self.c(y.mean((2, 3)))


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (Residual(), "adds the raw input to hidden channels"),
        (WithAttentionModule(), r"attention \(MultiheadAttention\): write attention with"),
        (InputScaled(), "scale is combined with the raw input"),
        (MixingReshape(), "reshapes a layer's channels together with other axes"),
        (SquashedHead(), "a non-linear operation after the last layer"),
        (SquaredHead(), "a non-linear operation after the last layer"),
        (DenseBlock(), r"norm \(BatchNorm2d\) on channels concatenated from several layers"),
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


@pytest.mark.parametrize("arch", ["mlp", "lenet-bn", "vgg", "resnet", "cnn1d", "vit"])
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


class HardCodedHeads(nn.Module):
    """Attention written with the number of heads fixed in its reshapes, a layer norm and
    tokens averaged instead of a class token."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.norm = nn.Linear(8, 16), nn.LayerNorm(16)
        self.q, self.k, self.v, self.out = (nn.Linear(16, 16) for _ in range(4))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.embed(x[:, 0])  # (batch, 8 tokens, 16 channels)
        y = self.norm(x)
        q, k, v = (f(y).view(-1, 8, 4, 4).transpose(1, 2) for f in (self.q, self.k, self.v))
        y = nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2)
        x = x + self.out(y.reshape(-1, 8, 16))
        return self.head(x.mean(1))


def test_attention_heads_are_concatenated_and_pruned_whole():
    members = []
    for i in range(3):
        torch.manual_seed(i)
        members.append(HardCodedHeads().eval())
    network = trace_network(members[0], X)
    heads = network.layers[1].target  # q, k and v write one group, in heads of 4 channels
    assert {layer.target for layer in network.layers[1:4]} == {heads}
    assert network.unit(heads) == 4 and network.unit(network.layers[0].target) == 1
    wide = concatenate(members, network)  # 12 heads; the hard-coded 4 heads became -1
    torch.testing.assert_close(wide(X), Ensemble(members)(X), rtol=1e-5, atol=1e-5)
    result = transplant(members, network)
    kept = result.kept[heads].reshape(-1, 4)
    assert len(kept) == 4
    assert (kept - kept[:, :1] == torch.arange(4)).all() and (kept[:, 0] % 4 == 0).all()
    HardCodedHeads().load_state_dict(result.model.state_dict())


def test_the_block_layer_norm_normalises_each_members_channels_alone():
    norm = nn.LayerNorm(6)
    weight, bias = torch.randn(12), torch.randn(12)
    x = torch.randn(5, 3, 12)
    wide = BlockLayerNorm(norm, weight, bias, 2)(x)
    for k in range(2):
        block = slice(6 * k, 6 * k + 6)
        expected = nn.functional.layer_norm(x[..., block], (6,), weight[block], bias[block])
        torch.testing.assert_close(wide[..., block], expected)
    one = nn.functional.layer_norm(x, (12,), weight, bias)  # what one plain norm would compute
    assert (one - wide).abs().max() > 1e-2


def test_a_pruned_vit_has_its_class_token_and_position_embedding_from_the_kept_channels(
    specs, random_members
):
    members = random_members(specs["vit"], 2)
    network = trace_network(members[0], X)
    stream = network.layers[0].target
    assert {(e.name, e.group, e.axis) for e in network.extras} == {
        ("class_token", stream, 2),
        ("position", stream, 2),
    }
    result = transplant(members, network)
    kept = result.kept[stream]
    wide_position = torch.cat([m.position for m in members], 2)
    torch.testing.assert_close(result.model.position, wide_position[:, :, kept])


def test_a_depthwise_convolution_is_widened_filter_by_filter_and_pruned_row_by_row(
    depthwise_members,
):
    members = depthwise_members(3)
    network = trace_network(members[0], X)
    layer = next(la for la in network.layers if la.name == "depthwise")
    assert layer.channelwise and layer.source == layer.target
    wide = concatenate(members, network)
    assert wide.depthwise.groups == wide.depthwise.in_channels == 24
    torch.testing.assert_close(wide(X), Ensemble(members)(X), rtol=1e-5, atol=1e-5)
    result = transplant(members, network)
    type(members[0])().load_state_dict(result.model.state_dict())
    expected, _ = prune(wide, network, members[0])
    for key, value in expected.state_dict().items():
        torch.testing.assert_close(result.model.state_dict()[key], value)


def test_torchvision_mobilenet_v2_is_fused_exactly_and_loads_into_its_class():
    torchvision = pytest.importorskip("torchvision")
    members = []
    for i in range(2):
        torch.manual_seed(i)
        members.append(torchvision.models.mobilenet_v2(num_classes=10, width_mult=0.25).eval())
    images = torch.randn(2, 3, 32, 32)
    network = trace_network(members[0], images)
    assert sum(layer.channelwise for layer in network.layers) == 17
    wide = concatenate(members, network)
    torch.testing.assert_close(wide(images), Ensemble(members)(images), rtol=1e-4, atol=1e-4)
    fresh = torchvision.models.mobilenet_v2(num_classes=10, width_mult=0.25)
    fresh.load_state_dict(transplant(members, network).model.state_dict(), strict=True)


class GroupedConvolution(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 8, 3), nn.Conv2d(8, 16, 3, groups=2)
        self.c = nn.Linear(16, 10)

    def forward(self, x):
        return self.c(self.b(torch.relu(self.a(x))).mean((2, 3)))


def test_grouped_convolutions_with_more_outputs_than_inputs_are_refused():
    with pytest.raises(UserError, match="b: grouped convolutions with more or fewer output"):
        fuse([GroupedConvolution(), GroupedConvolution()], X, "nt")


def test_concatenated_channels_are_widened_and_pruned_part_by_part(inception_members):
    members = inception_members(3)
    network = trace_network(members[0], X)
    parts = [(la.name, la.columns) for la in network.layers if la.columns is not None]
    assert parts == [("c", (0, 4)), ("c", (4, 10)), ("d", (0, 32)), ("d", (32, 48))]
    wide = concatenate(members, network)
    torch.testing.assert_close(wide(X), Ensemble(members)(X), rtol=1e-5, atol=1e-5)
    expected, expected_kept = prune(wide, network, members[0])
    result = transplant(members, network)
    assert {g: k.tolist() for g, k in result.kept.items()} == {
        g: k.tolist() for g, k in expected_kept.items()
    }
    for key, value in expected.state_dict().items():
        torch.testing.assert_close(result.model.state_dict()[key], value)
    type(members[0])().load_state_dict(result.model.state_dict())
    for variant in ("iterative", "hierarchical"):
        fuse_transplant(members, X, variant)(X)


def test_concatenated_linear_branches_are_fused_exactly():
    members = []
    for i in range(2):
        torch.manual_seed(i)
        members.append(Concatenating().eval())
    network = trace_network(members[0], X)
    wide = concatenate(members, network)
    torch.testing.assert_close(wide(X), Ensemble(members)(X), rtol=1e-5, atol=1e-5)
    Concatenating().load_state_dict(fuse_transplant(members, X).state_dict())


@pytest.mark.slow  # the Inception test above covers concatenation in a lighter form
def test_torchvision_googlenet_is_fused_exactly_and_loads_into_its_class():
    torchvision = pytest.importorskip("torchvision")
    members = []
    for i in range(2):
        torch.manual_seed(i)
        model = torchvision.models.googlenet(num_classes=10, aux_logits=False, init_weights=True)
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
        members.append(model.eval())
    images = torch.randn(2, 3, 64, 64)
    network = trace_network(members[0], images)
    assert sum(layer.columns is not None for layer in network.layers) > 0
    wide = concatenate(members, network)
    torch.testing.assert_close(wide(images), Ensemble(members)(images), rtol=1e-4, atol=1e-4)
    fresh = torchvision.models.googlenet(num_classes=10, aux_logits=False, init_weights=False)
    fresh.load_state_dict(transplant(members, network).model.state_dict(), strict=True)


def test_a_grouped_convolution_is_widened_in_more_groups_and_pruned_in_whole_groups(
    grouped_members,
):
    members = grouped_members(3)
    network = trace_network(members[0], X)
    layer = next(la for la in network.layers if la.name == "grouped")
    assert layer.channelwise and network.unit(layer.target) == 4
    wide = concatenate(members, network)
    assert wide.grouped.groups == 3 * 2 and wide.grouped.in_channels == 24
    torch.testing.assert_close(wide(X), Ensemble(members)(X), rtol=1e-5, atol=1e-5)
    result = transplant(members, network)
    kept = result.kept[layer.target].reshape(-1, 4)
    assert (kept - kept[:, :1] == torch.arange(4)).all() and (kept[:, 0] % 4 == 0).all()
    type(members[0])().load_state_dict(result.model.state_dict())
    expected, _ = prune(wide, network, members[0])
    for key, value in expected.state_dict().items():
        torch.testing.assert_close(result.model.state_dict()[key], value)


@pytest.mark.slow  # the Grouped block test above covers grouped convolutions in a lighter form
def test_torchvision_regnet_with_grouped_convolutions_is_fused_exactly_and_loads():
    torchvision = pytest.importorskip("torchvision")
    members = []
    for i in range(2):
        torch.manual_seed(i)
        members.append(torchvision.models.regnet_x_400mf(num_classes=10).eval())
    images = torch.randn(2, 3, 64, 64)
    network = trace_network(members[0], images)
    assert set(network.units.values()) == {16}  # convolution groups of 16 channels
    wide = concatenate(members, network)
    torch.testing.assert_close(wide(images), Ensemble(members)(images), rtol=1e-4, atol=1e-4)
    fresh = torchvision.models.regnet_x_400mf(num_classes=10)
    fresh.load_state_dict(transplant(members, network).model.state_dict(), strict=True)
