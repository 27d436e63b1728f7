"""Under ``mpiexec -n 4``: one member per rank, gathered on rank 0, equal to serial training."""

import pytest
import torch
from neuron_transplantation.config import TrainConfig
from neuron_transplantation.data import load_split
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
