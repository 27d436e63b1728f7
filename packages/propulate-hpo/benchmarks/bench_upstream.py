"""Upstream Propulate 1.2.2 on N ranks: mpiexec -n 4 python bench_upstream.py FUNCTION EVALS SEED
SLEEP. Its default propagator, pop_size = 2 x ranks, one island, as in its own examples."""

import logging
import random
import sys
import time

import numpy as np
from common import Objective, report, scratch_dir
from mpi4py import MPI
from propulate import Islands
from propulate.utils import get_default_propagator

name, evals, seed, sleep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
comm = MPI.COMM_WORLD
objective = Objective(name, sleep, seed=1000 * seed + comm.rank)
limits = {f"x{i}": (float(lo), float(hi)) for i, (lo, hi) in enumerate(objective.bounds)}
checkpoint = comm.bcast(scratch_dir("bench-up-") if comm.rank == 0 else None)


def loss(params):
    return objective(np.fromiter((params[k] for k in limits), float, len(limits)))


rng = random.Random(1000 * seed + comm.rank)
propagator = get_default_propagator(pop_size=2 * comm.size, limits=limits, rng=rng)
logging.getLogger("propulate").setLevel(logging.WARNING)
islands = Islands(
    loss, propagator, rng, generations=evals, num_islands=1, checkpoint_path=checkpoint
)
comm.Barrier()
started = time.perf_counter()
islands.propulate(logging_interval=10**9, debug=0)
wall = comm.allreduce(time.perf_counter() - started, op=MPI.MAX)
seconds = comm.allreduce(objective.seconds)
population = islands.propulator.population
if comm.rank == 0:
    report(
        optimizer="propulate 1.2.2",
        wall_s=wall,
        objective_s=seconds,
        evals=len(population),
        best=min(float(ind.loss) for ind in population),
        workers=comm.size,
    )
