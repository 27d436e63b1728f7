"""AFNO mixes tokens globally: a change in one patch reaches every output token."""

import torch
from energy_scaling.afno import AFNO, AFNOMixing


def test_the_fourier_mixing_of_one_token_reaches_every_token():
    torch.manual_seed(0)
    mixing = AFNOMixing(dim=16, blocks=4, sparsity=0.01)
    tokens = torch.randn(1, 6, 8, 16)
    changed = tokens.clone()
    changed[0, 2, 3] += 1.0
    delta = (mixing(changed) - mixing(tokens)).abs().sum(-1)[0]
    assert delta.shape == (6, 8)
    assert (delta > 1e-6).all(), f"tokens untouched: {(delta <= 1e-6).nonzero().tolist()}"


def test_a_change_in_one_patch_reaches_every_output_patch_of_the_model():
    torch.manual_seed(0)
    model = AFNO(3, 2, (13, 20), patch=4, embed_dim=16, depth=2, blocks=4).eval()
    x = torch.randn(1, 3, 13, 20)
    changed = x.clone()
    changed[0, :, 0:4, 8:12] += 1.0  # the patch at token (0, 2)
    with torch.no_grad():
        out, out2 = model(x), model(changed)
    assert out.shape == (1, 2, 13, 20)  # padded to 16 x 20 inside, cropped back
    per_patch = (out2 - out).abs()[0].sum(0)
    per_patch = torch.nn.functional.pad(per_patch, (0, 0, 0, 3)).reshape(4, 4, 5, 4).sum((1, 3))
    assert (per_patch > 1e-6).all()


def test_the_shrinkage_makes_the_fourier_mixing_sparse():
    torch.manual_seed(0)
    tokens = torch.randn(2, 4, 4, 8)
    dense = AFNOMixing(8, 2, sparsity=0.0)
    sparse = AFNOMixing(8, 2, sparsity=10.0)  # everything below 10 is shrunk to zero
    sparse.load_state_dict(dense.state_dict())
    assert dense(tokens).abs().sum() > 0
    assert torch.count_nonzero(sparse(tokens)) == 0
