"""Under ``mpiexec``: one member (or one shard of FedAvg) per rank, equal to serial training."""

import dataclasses

import pytest
import torch
from neuron_transplantation.config import TrainConfig
from neuron_transplantation.data import load_split
from neuron_transplantation.federated import fedavg
from neuron_transplantation.train import train_members

from shared_hpc import SerialComm


@pytest.mark.mpi(ranks=4)
def test_members_trained_one_per_rank_equal_those_trained_serially(comm):
    torch.set_num_threads(1)
    config = TrainConfig(members=4, epochs=2, width=16)
    split = load_split("digits", config.validation, config.seed)
    parallel = train_members(config, split, comm)
    assert parallel.ranks == comm.Get_size() and len(parallel.validation) == 4
    assert comm.allgather(parallel.validation) == [parallel.validation] * comm.Get_size()
    if comm.Get_rank() == 0:
        serial = train_members(config, split, SerialComm())
        assert len(parallel.models) == 4 and serial.validation == parallel.validation
        for a, b in zip(parallel.models, serial.models, strict=True):
            for key, value in a.state_dict().items():
                torch.testing.assert_close(value, b.state_dict()[key])
        first, second = parallel.models[0].layers[1].weight, parallel.models[1].layers[1].weight
        assert not torch.allclose(first, second)  # different seeds, different members
    else:
        assert parallel.models == []


@pytest.mark.mpi(ranks=2)
def test_fedavg_with_one_shard_per_rank_equals_fedavg_in_one_process(comm):
    torch.set_num_threads(1)
    config = TrainConfig(members=2, epochs=2, width=16, shards=True)
    split = load_split("digits", config.validation, config.seed)
    parallel, curve = fedavg(config, split, rounds=2, comm=comm)
    serial, serial_curve = fedavg(config, split, rounds=2, comm=SerialComm())
    assert curve == serial_curve
    for key, value in parallel.state_dict().items():
        torch.testing.assert_close(value, serial.state_dict()[key])


@pytest.mark.mpi(ranks=4)
def test_two_ranks_per_member_train_the_members_serial_training_gives(comm):
    torch.set_num_threads(1)
    config = TrainConfig(members=2, epochs=2, width=16, batch=31, ranks_per_member=2)
    split = load_split("digits", config.validation, config.seed)
    parallel = train_members(config, split, comm)  # ranks 0-1 train member 0, ranks 2-3 member 1
    if comm.Get_rank() == 0:
        serial = train_members(dataclasses.replace(config, ranks_per_member=1), split, SerialComm())
        assert len(parallel.models) == 2
        for a, b in zip(parallel.models, serial.models, strict=True):
            for key, value in a.state_dict().items():
                torch.testing.assert_close(value, b.state_dict()[key], rtol=1e-4, atol=1e-5)
