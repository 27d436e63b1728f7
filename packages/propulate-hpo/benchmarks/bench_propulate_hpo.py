"""propulate-hpo on N ranks:

    mpiexec -n 4 python bench_propulate_hpo.py FUNCTION EVALS SEED SLEEP [total | cma | paper]

EVALS per worker, or with ``total`` EVALS x ranks for all workers together; with ``cma`` the
CMA-ES propagator breeds instead of the default, with ``paper`` the paper's GA alone (the
default without its elite samples).
"""

import sys
import time

import numpy as np
from common import Objective, report, scratch_dir
from mpi4py import MPI
from propulate_hpo import Propulator, SearchSpace
from propulate_hpo.propagators import BasicCMA, default_propagator

name, evals, seed, sleep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
variant = sys.argv[5] if len(sys.argv) > 5 else ""
total = variant == "total"  # one budget for all workers together
comm = MPI.COMM_WORLD
objective = Objective(name, sleep, seed=1000 * seed + comm.rank)
space = {f"x{i}": (float(lo), float(hi)) for i, (lo, hi) in enumerate(objective.bounds)}
checkpoint = comm.bcast(scratch_dir("bench-ph-") if comm.rank == 0 else None)


def loss(params):
    return objective(np.fromiter(params.values(), float, len(params)))


# same settings as upstream: pop_size = 2 x ranks, checkpointing on
propagators = {
    "cma": BasicCMA(),
    "paper": default_propagator(2 * comm.size, SearchSpace(space), elite_probability=0.0),
}
propulator = Propulator(
    loss,
    space,
    propagator=propagators.get(variant),
    generations=None if total else evals,
    max_evaluations=comm.size * evals if total else None,
    seed=seed,
    checkpoint_dir=checkpoint,
    pop_size=2 * comm.size,
    comm=comm,
)
comm.Barrier()
started = time.perf_counter()
result = propulator.run()
wall = comm.allreduce(time.perf_counter() - started, op=MPI.MAX)
seconds = comm.allreduce(objective.seconds)
if comm.rank == 0:
    report(
        optimizer=f"propulate-hpo-{variant}" if variant else "propulate-hpo",
        wall_s=wall,
        objective_s=seconds,
        evals=result.n_evaluations,
        best=result.best_loss,
        workers=comm.size,
    )
