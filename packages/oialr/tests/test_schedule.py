"""The schedule: exact switch, orthonormal bases, cuts that follow β, state that moves along."""

from __future__ import annotations

import pytest
import torch
from oialr import (
    OIALR,
    LowRankConv,
    LowRankLinear,
    ModelConfig,
    ScheduleConfig,
    count_parameters,
)
from oialr.models import cnn1d
from torch import nn

from shared_hpc import UserError

NOW = ScheduleConfig(switch="delay", delay=0, check_every=1, frequency=1)
"""Switch every eligible layer at the first step, cut at every step after."""


class TinyViTBlock(nn.Module):
    """Attention with separate q, k, v and output projections, then an MLP."""

    def __init__(self, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.embed = nn.Linear(16, dim)
        self.q, self.k, self.v, self.proj = (nn.Linear(dim, dim) for _ in range(4))
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.head = nn.Linear(dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        b, t, d = x.shape
        split = lambda y: y.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        att = nn.functional.scaled_dot_product_attention(
            split(self.q(x)), split(self.k(x)), split(self.v(x))
        )
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return self.head((x + self.mlp(x)).mean(1))


def _cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 24, 3, stride=2, padding=1, bias=False),
        nn.ReLU(),
        nn.Conv2d(24, 24, 3, padding=1, dilation=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(24 * 4 * 4, 10),
    )


def _cnn1d() -> nn.Module:
    return cnn1d(40, 10, ModelConfig(width=16))


@pytest.mark.parametrize(
    ("build", "shape"),
    [
        (
            lambda: nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 24), nn.Linear(24, 4)),
            (5, 8),
        ),
        (_cnn, (2, 3, 8, 8)),
        (_cnn1d, (2, 40)),
        (TinyViTBlock, (2, 6, 16)),
    ],
    ids=["mlp", "cnn", "cnn1d", "attention"],
)
def test_the_switch_preserves_the_function_exactly(build, shape):
    torch.manual_seed(0)
    model = build()
    x = torch.randn(shape, dtype=torch.float64)
    model.double()
    before = model(x)
    oialr = OIALR(model, torch.optim.SGD(model.parameters(), lr=0.1), NOW)
    oialr.step()
    layers = oialr.low_rank_layers
    assert layers and all(isinstance(m, (LowRankLinear, LowRankConv)) for m in layers.values())
    torch.testing.assert_close(model(x), before, rtol=1e-12, atol=1e-12)
    assert [e.kind for e in oialr.events] == ["switch"] * len(layers)


def test_attention_projections_become_low_rank():
    model = TinyViTBlock()
    oialr = OIALR(model, torch.optim.SGD(model.parameters(), lr=0.1), NOW)
    oialr.step()
    assert {"q", "k", "v", "proj", "mlp.0", "mlp.2"} <= set(oialr.low_rank_layers)
    assert "embed" not in oialr.low_rank_layers and "head" not in oialr.low_rank_layers


def _train(model, oialr, optimizer, steps, shape=(16, 8), seed=0):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(shape, generator=generator)
        loss = oialr.model(x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        oialr.step()


def test_bases_stay_orthonormal_through_every_rotation():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(8, 64), nn.Tanh(), nn.Linear(64, 48), nn.Tanh(), nn.Linear(48, 2)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    oialr = OIALR(model, optimizer, NOW)
    for _ in range(6):
        _train(model, oialr, optimizer, 1)
        for layer in oialr.low_rank_layers.values():
            eye = torch.eye(layer.rank)
            torch.testing.assert_close(layer.U.mT @ layer.U, eye, atol=1e-5, rtol=0)
            torch.testing.assert_close(layer.V.mT @ layer.V, eye, atol=1e-5, rtol=0)
    assert sum(e.kind == "cut" for e in oialr.events) == 5


def _layer_with_singular_values(sigma: list[float]) -> tuple[nn.Module, torch.optim.Optimizer]:
    n = len(sigma)
    q1, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64))
    q2, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64))
    model = nn.Sequential(nn.Linear(n, n), nn.Linear(n, n), nn.Linear(n, n)).double()
    with torch.no_grad():
        model[1].weight.copy_(q1 @ torch.diag(torch.tensor(sigma, dtype=torch.float64)) @ q2.T)
    return model, torch.optim.SGD(model.parameters(), lr=0.0)


@pytest.mark.parametrize(
    ("sigma", "beta", "max_cut", "min_rank", "kept"),
    [
        ([10, 9, 5, 2, 1.5, 0.9, 0.5, 0.1], 0.1, 0.5, 0.0, 5),  # σ >= 1.0 kept
        ([10, 9, 5, 2, 1.5, 0.9, 0.5, 0.1], 0.4, 0.5, 0.0, 4),  # at most half cut at once
        ([10, 9, 5, 2, 1.5, 0.9, 0.5, 0.1], 0.4, 0.9, 0.0, 3),  # σ >= 4.0 kept
        ([10, 9, 5, 2, 1.5, 0.9, 0.5, 0.1], 0.4, 0.9, 0.5, 4),  # never below half the full rank
    ],
)
def test_the_cut_follows_beta_with_its_limits(sigma, beta, max_cut, min_rank, kept):
    torch.manual_seed(0)
    model, optimizer = _layer_with_singular_values(sigma)
    config = ScheduleConfig(
        switch="delay",
        delay=0,
        check_every=1,
        frequency=1,
        beta=beta,
        max_cut=max_cut,
        min_rank=min_rank,
    )
    oialr = OIALR(model, optimizer, config)
    oialr.step()  # switch: rank 8, exact
    assert oialr.ranks() == {"1": 8}
    oialr.step()  # cut
    assert oialr.ranks() == {"1": kept}
    layer = oialr.low_rank_layers["1"]
    values = torch.linalg.svdvals(layer.weight_matrix())
    torch.testing.assert_close(values[:kept], torch.tensor(sigma[:kept], dtype=torch.float64))
    assert values[kept:].abs().max() < 1e-12  # the cut directions are gone


def test_momentum_is_projected_at_the_switch_and_kept_through_a_cut():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 6))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    config = ScheduleConfig(switch="delay", delay=0, check_every=1, frequency=1)
    oialr = OIALR(model, optimizer, config)
    weight = model[1].weight
    x = torch.randn(4, 6)
    model(x).square().mean().backward()
    optimizer.step()
    momentum = optimizer.state[weight]["momentum_buffer"].clone()
    oialr.step()  # the switch
    layer = oialr.low_rank_layers["1"]
    assert all(p is not weight for group in optimizer.param_groups for p in group["params"])
    moved = optimizer.state[layer.S]["momentum_buffer"]
    torch.testing.assert_close(moved, layer.U.mT @ momentum @ layer.V)
    # A cut keeps the moments of the surviving directions: rotate by P, Q and take the block.
    s_before, m_before, r = layer.S.detach().clone(), moved.clone(), layer.rank
    oialr.step()
    p, _, q = torch.linalg.svd(s_before.double())
    keep = layer.rank
    expected = (p[:, :keep].mT @ m_before.double() @ q.mT[:, :keep]).float()
    torch.testing.assert_close(
        optimizer.state[layer.S]["momentum_buffer"], expected, atol=1e-6, rtol=1e-5
    )
    assert keep <= r


def test_adam_moments_move_and_stay_non_negative():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(8, 64), nn.Tanh(), nn.Linear(64, 48), nn.Tanh(), nn.Linear(48, 2)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    oialr = OIALR(
        model, optimizer, ScheduleConfig(switch="delay", delay=3, check_every=3, frequency=2)
    )
    _train(model, oialr, optimizer, 12)
    for layer in oialr.low_rank_layers.values():
        state = optimizer.state[layer.S]
        assert state["exp_avg"].shape == layer.S.shape == state["exp_avg_sq"].shape
        assert (state["exp_avg_sq"] >= 0).all() and state["exp_avg_sq"].sum() > 0
        assert int(state["step"]) == 12  # the step count (bias correction) is kept


def test_parameter_counts_fall_after_cuts():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(8, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 2)
    )
    full_trainable, full_total = count_parameters(model)
    assert full_total == full_trainable
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    oialr = OIALR(
        model,
        optimizer,
        ScheduleConfig(switch="delay", delay=0, check_every=1, frequency=1, beta=0.5),
    )
    _train(model, oialr, optimizer, 4)
    trainable, total = count_parameters(model)
    rank = oialr.ranks()["2"]
    assert rank < 128
    assert trainable == full_trainable - 128 * 128 + rank * rank
    assert total == trainable + 2 * 128 * rank


def test_a_stable_layer_switches_when_measured_stable_not_before():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.Linear(32, 32), nn.Linear(32, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # nothing moves: perfectly stable
    oialr = OIALR(model, optimizer, ScheduleConfig(check_every=5, frequency=1000))
    _train(model, oialr, optimizer, 9)
    assert [e.kind for e in oialr.events] == ["check"]  # the first check has nothing to compare
    _train(model, oialr, optimizer, 1)
    assert [(e.kind, e.step) for e in oialr.events] == [("check", 5), ("check", 10), ("switch", 10)]
    assert oialr.events[-1].similarity == pytest.approx(1.0)


def test_a_moving_layer_does_not_switch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.Linear(32, 32), nn.Linear(32, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    oialr = OIALR(model, optimizer, ScheduleConfig(check_every=1, frequency=1000))
    for _ in range(4):
        with torch.no_grad():
            model[1].weight.copy_(torch.randn(32, 32))  # new bases every step
        oialr.step()
    assert not oialr.low_rank_layers
    similarities = [e.similarity for e in oialr.events if e.similarity is not None]
    assert len(similarities) == 3 and max(similarities) < 0.5


def test_the_same_seed_gives_the_same_run():
    def run():
        torch.manual_seed(3)
        model = nn.Sequential(
            nn.Linear(8, 64), nn.Tanh(), nn.Linear(64, 48), nn.Tanh(), nn.Linear(48, 2)
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        oialr = OIALR(model, optimizer, ScheduleConfig(check_every=2, frequency=2, stability=0.5))
        _train(model, oialr, optimizer, 10)
        return oialr.ranks(), [p.detach().clone() for p in model.parameters()]

    (ranks_a, params_a), (ranks_b, params_b) = run(), run()
    assert ranks_a == ranks_b
    for a, b in zip(params_a, params_b, strict=True):
        assert torch.equal(a, b)


def test_a_model_without_eligible_layers_is_refused():
    model = nn.Sequential(nn.Linear(4, 256), nn.Linear(256, 2))  # first and last only
    with pytest.raises(UserError, match="no Linear or convolution that OIALR could make low rank"):
        OIALR(model, torch.optim.SGD(model.parameters(), lr=0.1))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("beta", 0.0, "beta must lie in (0, 1)"),
        ("beta", 1.5, "beta must lie in (0, 1)"),
        ("frequency", 0, "frequency must be >= 1"),
        ("switch", "later", "switch must be 'stable' or 'delay'"),
    ],
)
def test_bad_settings_are_refused(field, value, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ScheduleConfig(**{field: value})


def test_a_resumed_run_continues_exactly(tmp_path):
    def build():
        torch.manual_seed(5)
        model = nn.Sequential(
            nn.Linear(8, 64), nn.Tanh(), nn.Linear(64, 48), nn.Tanh(), nn.Linear(48, 2)
        )
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        config = ScheduleConfig(check_every=2, frequency=3, stability=0.5)
        return model, optimizer, OIALR(model, optimizer, config)

    model, optimizer, oialr = build()
    _train(model, oialr, optimizer, 8)
    assert oialr.low_rank_layers  # the checkpoint holds switched and cut layers
    path = tmp_path / "ckpt.pt"
    torch.save(
        {"model": model.state_dict(), "opt": optimizer.state_dict(), "oialr": oialr.state_dict()},
        path,
    )
    _train(model, oialr, optimizer, 7, seed=1)

    resumed, resumed_optimizer, resumed_oialr = build()
    saved = torch.load(path, weights_only=True)
    resumed_oialr.load_state_dict(saved["oialr"])
    resumed.load_state_dict(saved["model"])
    resumed_optimizer.load_state_dict(saved["opt"])
    _train(resumed, resumed_oialr, resumed_optimizer, 7, seed=1)
    assert resumed_oialr.ranks() == oialr.ranks()
    assert resumed_oialr.events == oialr.events
    for a, b in zip(model.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
