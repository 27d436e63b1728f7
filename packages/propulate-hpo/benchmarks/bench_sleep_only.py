"""The ceiling of the uneven-times table: N ranks only evaluate random points, no optimizer.

    mpiexec -n 4 python bench_sleep_only.py FUNCTION EVALS SEED SLEEP

Each rank calls the objective EVALS times (the same per-rank sleep draws as the Propulates)
and nothing else: no breeding, no messages, no checkpoint. Its throughput is what this machine
allows for a fixed number of evaluations per worker; what an optimizer loses below it is its
own overhead plus the wait for the slowest worker at the end, which this run has as well.
"""

import sys
import time

import numpy as np
from common import Objective, report
from mpi4py import MPI

name, evals, seed, sleep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
comm = MPI.COMM_WORLD
objective = Objective(name, sleep, seed=1000 * seed + comm.rank)
bounds = np.array(objective.bounds, dtype=float)
points = np.random.default_rng([seed, comm.rank]).uniform(
    bounds[:, 0], bounds[:, 1], (evals, len(bounds))
)
comm.Barrier()
started = time.perf_counter()
best = min(objective(x) for x in points)
wall = comm.allreduce(time.perf_counter() - started, op=MPI.MAX)
seconds = comm.allreduce(objective.seconds)
best = comm.allreduce(best, op=MPI.MIN)
if comm.rank == 0:
    report(
        optimizer="sleep-only",
        wall_s=wall,
        objective_s=seconds,
        evals=comm.size * evals,
        best=best,
        workers=comm.size,
    )
