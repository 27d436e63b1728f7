"""DEAP: a synchronous generational GA (eaSimple's loop) evaluating each generation on a pool of
4 processes (``toolbox.register("map", pool.map)``, as DEAP's docs show):
python bench_deap.py FUNCTION TOTAL_EVALS SEED SLEEP [PROCESSES [POPULATION]].

Blend crossover, Gaussian mutation (σ = 10 % of the range, per gene with p = 0.2), tournament
selection of 3, population 40 (4 x 250 evaluations) or 80 (more), generations until the
budget is spent. With uneven evaluation times the pool hands out one individual at a time."""

import functools
import multiprocessing as mp
import random
import sys
import time

import numpy as np
from common import Objective, report
from deap import base, creator, tools

_objective = None


def _init(name, sleep, seed):
    global _objective
    _objective = Objective(name, sleep, seed=seed + mp.current_process()._identity[0])


def evaluate(individual):
    started = _objective.seconds
    value = _objective(individual)
    return (value,), _objective.seconds - started


if __name__ == "__main__":
    name, budget, seed, sleep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    processes = int(sys.argv[5]) if len(sys.argv) > 5 else 4
    size = int(sys.argv[6]) if len(sys.argv) > 6 else (40 if budget <= 1000 else 80)
    random.seed(seed)
    bounds = np.array(Objective(name).bounds)
    low, high = bounds[:, 0], bounds[:, 1]
    creator.create("FitnessMin", base.Fitness, weights=(-1.0,))
    creator.create("Individual", list, fitness=creator.FitnessMin)
    toolbox = base.Toolbox()
    toolbox.register(
        "individual", lambda: creator.Individual(random.uniform(lo, hi) for lo, hi in bounds)
    )
    toolbox.register("population", tools.initRepeat, list, toolbox.individual)
    toolbox.register("mate", tools.cxBlend, alpha=0.5)
    toolbox.register("mutate", tools.mutGaussian, mu=0.0, sigma=list(0.1 * (high - low)), indpb=0.2)
    toolbox.register("select", tools.selTournament, tournsize=3)
    pool = mp.get_context("fork").Pool(
        processes, initializer=_init, initargs=(name, sleep, 1000 * seed)
    )
    chunks = {"chunksize": 1} if sleep else {}
    toolbox.register("map", functools.partial(pool.map, **chunks))
    pool.map(abs, range(processes))  # start the workers before the clock

    def clip(individual):
        individual[:] = np.clip(individual, low, high).tolist()
        return individual

    started = time.perf_counter()
    evals, seconds = 0, 0.0
    population = toolbox.population(n=size)
    best = np.inf
    while evals < budget:
        invalid = [ind for ind in population if not ind.fitness.valid][: budget - evals]
        for ind, (fitness, dt) in zip(invalid, toolbox.map(evaluate, invalid), strict=True):
            ind.fitness.values = fitness
            seconds += dt
        evals += len(invalid)
        population = [ind for ind in population if ind.fitness.valid]
        best = min(best, min(ind.fitness.values[0] for ind in population))
        offspring = [toolbox.clone(ind) for ind in toolbox.select(population, len(population))]
        # varAnd with cxpb = 0.5 and mutpb = 0.2
        for a, b in zip(offspring[::2], offspring[1::2], strict=False):
            if random.random() < 0.5:
                toolbox.mate(a, b)
                del a.fitness.values, b.fitness.values
        for ind in offspring:
            if random.random() < 0.2:
                toolbox.mutate(ind)
                del ind.fitness.values
        population = [clip(ind) for ind in offspring]
    wall = time.perf_counter() - started
    pool.close()
    pool.join()
    report(
        optimizer="deap-sync-ga" if len(sys.argv) <= 6 else f"deap-sync-ga-pop{size}",
        wall_s=wall,
        objective_s=seconds,
        evals=evals,
        best=best,
        workers=processes,
    )
