import pytest
import torch
from petnet.config import ModelConfig
from petnet.loss import count_timing_loss, distance_to_target, windowed_counts
from petnet.model import LIFLayer, PETNet
from petnet.scanner import preset

from shared_hpc import UserError


def test_lif_layer_integrates_leaks_and_resets():
    layer = LIFLayer(1, beta=0.5, config=ModelConfig(current_noise=0.0))
    current = torch.tensor([0.6, 0.6, 0.0, 1.2, 0.6]).view(1, 5, 1)
    # v: 0.6 → 0.9 → 0.45 → 1.425 (spike, reset to 0) → 0.6
    assert layer(current).view(-1).tolist() == [0.0, 0.0, 0.0, 1.0, 0.0]
    assert layer.beta.item() == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("architecture", "shape"), [("dense", (3, 20, 2, 256)), ("ring", (7, 21, 6))]
)
def test_forward_and_backward_shapes(architecture, shape):
    scanner = preset("small")
    net = PETNet(scanner, 2, ModelConfig(architecture=architecture, hidden=(16, 8)))
    x = (torch.rand(shape) < 0.05).float()
    out = net(x)
    assert out.shape == ((*shape[:2], 256) if architecture == "dense" else shape[:2])
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    target = torch.zeros_like(out)
    target[0, 5] = 1
    count_timing_loss(out, target).backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_untrained_ring_network_is_a_coincidence_detector():
    net = PETNet(preset("small"), 2, ModelConfig()).eval()
    x = torch.zeros(3, 21, 6)
    x[0, 10, 0] = 1  # own hit alone
    x[1, 10, 0] = 1  # own hit and a partner on the opposite arc one bin later
    x[1, 11, 2] = 1
    x[2, 10, 2] = 1  # partner alone (no own hit)
    x[2, 10, 3] = 1
    out = net(x)
    assert out[0].sum() == 0 and out[2].sum() == 0
    assert out[1].nonzero().view(-1).tolist() == [11]


def test_bad_shapes_and_settings_are_refused():
    scanner = preset("small")
    with pytest.raises(ValueError, match="patches"):
        PETNet(scanner, 2, ModelConfig())(torch.zeros(2, 10, 3))
    with pytest.raises(ValueError, match="crystals"):
        PETNet(scanner, 2, ModelConfig(architecture="dense"))(torch.zeros(1, 10, 2, 100))
    with pytest.raises(UserError, match="architecture"):
        ModelConfig(architecture="transformer")
    with pytest.raises(UserError, match="beta"):
        ModelConfig(beta=1.0)
    with pytest.raises(ValueError, match="differ"):
        count_timing_loss(torch.zeros(2, 5), torch.zeros(2, 6))


def test_loss_is_zero_for_a_perfect_answer_and_grows_with_timing_and_count_errors():
    target = torch.zeros(1, 30, 1)
    target[0, 10] = 1
    assert count_timing_loss(target.clone(), target) == 0
    late = torch.zeros_like(target)
    late[0, 12] = 1
    later = torch.zeros_like(target)
    later[0, 20] = 1
    extra = target.clone()
    extra[0, 25] = 1
    assert 0 < count_timing_loss(late, target) < count_timing_loss(later, target)
    assert count_timing_loss(extra, target) > 0
    paper = count_timing_loss(late, target, count_window_bins=None)  # whole-window count
    assert paper < count_timing_loss(late, target)  # the count matches; only timing pays


def test_distance_map_and_windowed_counts():
    target = torch.zeros(1, 8, 1)
    target[0, 2] = 1
    target[0, 6] = 1
    assert distance_to_target(target, cap=10).view(-1).tolist() == [2, 1, 0, 1, 2, 1, 0, 1]
    assert distance_to_target(torch.zeros(1, 4, 1), cap=3).view(-1).tolist() == [3] * 4
    spikes = torch.tensor([1.0, 0, 1, 1, 0]).view(1, 5, 1)
    assert windowed_counts(spikes, 2).view(-1).tolist() == [1, 1, 2, 1]
    assert windowed_counts(spikes, None).view(-1).tolist() == [3]


@pytest.mark.parametrize("architecture", ["ring", "dense"])
def test_predict_on_empty_singles_flags_nothing(architecture):
    import numpy as np
    from petnet.config import EncodingConfig
    from petnet.inference import PETNetSorter, build_model
    from petnet.singles import Singles

    scanner = preset("small")
    config = ModelConfig(architecture=architecture, hidden=(8,))
    sorter = PETNetSorter(build_model(scanner, EncodingConfig(), config), scanner, EncodingConfig())
    empty = Singles(np.zeros(0), np.zeros(0, int), np.zeros(0), scanner=scanner)
    decoded = sorter.predict(empty)
    assert decoded.flags.shape == (0,) and decoded.spurious == 0
