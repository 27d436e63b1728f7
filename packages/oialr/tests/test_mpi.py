"""Under ``mpiexec -n 2``: data-parallel training equals serial training; DDP stays in step."""

import pytest


@pytest.mark.mpi(ranks=2)
def test_two_ranks_train_what_one_rank_trains(comm):
    from oialr import TrainConfig, get_recipe, train

    from shared_hpc import SerialComm, load_config

    recipe = get_recipe("mlp-digits")
    config = load_config(
        TrainConfig,
        recipe.settings,
        epochs=2,
        model={"width": 32, "depth": 2},
        schedule={"check_every": 5, "frequency": 5, "stability": 0.5},
    )
    parallel = train(recipe, config, comm)
    serial = train(recipe, config, SerialComm())
    # the same global batches, gradients averaged over the two halves: the same run
    assert [e.kind for e in parallel.events] == [e.kind for e in serial.events]
    assert parallel.history[-1].ranks == serial.history[-1].ranks
    for a, b in zip(parallel.history, serial.history, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-4)
    assert parallel.test == pytest.approx(serial.test, abs=0.01)
    assert comm.allgather(parallel.test) == [parallel.test] * 2


@pytest.mark.mpi(ranks=2)
def test_data_parallel_ranks_stay_identical_and_rewrap_only_on_a_shape_change(comm):
    import torch
    from oialr import OIALR, ScheduleConfig
    from torch import nn

    from shared_hpc import torch_distributed

    with torch_distributed(comm) as info:
        assert info.group
        torch.manual_seed(0)  # the same initial model everywhere
        model = nn.Sequential(
            nn.Linear(8, 64),
            nn.Tanh(),
            nn.Linear(64, 48),
            nn.Tanh(),
            nn.Linear(48, 48),
            nn.Tanh(),
            nn.Linear(48, 2),
        )
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        oialr = OIALR(model, optimizer, ScheduleConfig(check_every=2, frequency=2, stability=0.5))
        generator = torch.Generator().manual_seed(100 + comm.Get_rank())  # a shard per rank
        wrapper, rewraps, changes = oialr.model, 0, 0
        for _ in range(12):
            x = torch.randn(16, 8, generator=generator)
            loss = oialr.model(x).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            changed = oialr.step()
            changes += changed
            rewraps += oialr.model is not wrapper
            assert (oialr.model is not wrapper) == changed
            wrapper = oialr.model
        assert changes >= 1 and rewraps == changes
        assert oialr.ranks() == comm.bcast(oialr.ranks())
        assert len(oialr.low_rank_layers) == 2  # spread over both ranks: layer 0 and layer 1
        for tensor in model.state_dict().values():
            assert torch.equal(tensor, comm.bcast(tensor))
