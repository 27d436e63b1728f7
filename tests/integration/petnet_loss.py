"""A loss function for propulate-hpo that trains PETNet briefly on the worker's ranks.

``propulate-hpo run --loss tests/integration/petnet_loss.py:train_petnet`` passes each
candidate's parameters and the worker's communicator; the candidate trains data parallel on
that worker's ranks and reports 1 - validation F1 as its loss and the energy of its training.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from typing import Any

from petnet.config import PETNetConfig, TrainConfig
from petnet.demo import demo_simulation
from petnet.sim import simulate
from petnet.singles import Singles
from petnet.train import train

from shared_hpc import Comm


@functools.cache
def _singles() -> Singles:
    """One short acquisition of the demonstration scanner, simulated once per process."""
    return simulate(demo_simulation(seed=1, duration_s=1e-3))


def train_petnet(params: dict[str, Any], comm: Comm) -> dict[str, float]:
    """Train one candidate (learning rate, miss weight) for three steps on ``comm``'s ranks."""
    import torch

    torch.set_num_threads(1)  # four ranks share the cores
    config = PETNetConfig(
        train=TrainConfig(
            epochs=1,
            max_steps_per_epoch=3,
            batch_size=64,
            lr=float(params["lr"]),
            miss_weight=float(params["miss_weight"]),
        )
    )
    folder = comm.bcast(tempfile.mkdtemp(prefix="petnet-candidate-") if comm.rank == 0 else None)
    try:
        result = train(_singles(), config, folder, comm=comm)
    finally:
        comm.barrier()
        if comm.rank == 0:
            shutil.rmtree(folder, ignore_errors=True)
    return {"loss": 1.0 - result.best_f1, "energy_j": result.energy.total_joules}
