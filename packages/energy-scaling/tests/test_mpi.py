"""Under ``mpiexec -n 2``: data-parallel training equals the serial run's first steps."""

import pytest
import torch
from energy_scaling.config import DataConfig, SweepConfig, TrainConfig
from energy_scaling.data import load_samples
from energy_scaling.sweep import Point
from energy_scaling.training import train_point

from shared_hpc import SerialComm


@pytest.mark.mpi(ranks=2)
def test_two_ranks_take_the_serial_runs_first_steps(comm):
    sweep = SweepConfig(
        ranks=[1, 2],
        global_batch=[32],
        data=DataConfig(image_size=16, limit=400),
        train=TrainConfig(max_steps=3, warmup_epochs=0, schedule="constant", base_lr=0.05),
    )
    samples = load_samples(sweep.data)
    parallel = train_point(sweep, Point(2, 32, 16, 0.05), samples, comm)
    # one rank with two accumulated passes takes exactly the two ranks' micro-batches
    serial = train_point(sweep, Point(1, 32, 16, 0.05), samples, SerialComm())
    assert parallel.updates == serial.updates == 3
    for (name, p), s in zip(
        parallel.model.named_parameters(), serial.model.parameters(), strict=True
    ):
        torch.testing.assert_close(p, s, rtol=1e-4, atol=1e-5, msg=name)
    assert parallel.final == pytest.approx(serial.final, abs=0.02)
    assert comm.allgather(parallel.final) == [parallel.final] * 2
    assert parallel.metrics()["device_hours"] == pytest.approx(2 * parallel.seconds / 3600)
