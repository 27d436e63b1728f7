"""Every recipe: its data load, its network trains a step, and OIALR switches it exactly."""

from __future__ import annotations

import pytest
import torch
from oialr import OIALR, RECIPES, ScheduleConfig, TrainConfig, get_recipe
from oialr.cli import RECIPE_NAMES
from oialr.data import load_split

from shared_hpc import UserError, load_config

PACKAGES = {"mnist1d": "mnist1d", "seattle": "vega_datasets", "taylor": "pmdarima"}


def test_the_command_line_lists_every_recipe():
    assert set(RECIPE_NAMES) == set(RECIPES)
    with pytest.raises(UserError, match="unknown recipe 'mlp-imagenet'"):
        get_recipe("mlp-imagenet")


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_recipe_switches_exactly_and_trains(name, cifar_root):
    recipe = RECIPES[name]
    if recipe.dataset in PACKAGES:
        pytest.importorskip(PACKAGES[recipe.dataset])
    config = load_config(TrainConfig, recipe.settings, data=str(cifar_root))
    split = load_split(recipe.dataset, config)
    torch.manual_seed(0)
    model = recipe.build(split, config.model).eval()  # no dropout: outputs comparable
    x = torch.stack([split.train[i][0] for i in range(4)])
    before = model(x)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    oialr = OIALR(model, optimizer, ScheduleConfig(switch="delay", delay=0, check_every=1))
    oialr.step()
    assert oialr.low_rank_layers, f"{name}: nothing became low rank"
    torch.testing.assert_close(model(x), before, rtol=1e-3, atol=1e-4)
    model.train()
    y = torch.stack([torch.as_tensor(split.train[i][1]) for i in range(4)])
    out = oialr.model(x)
    loss = (
        torch.nn.functional.cross_entropy(out, y)
        if split.task == "classify"
        else torch.nn.functional.mse_loss(out, y)
    )
    loss.backward()
    optimizer.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
