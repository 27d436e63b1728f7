"""Multi-objective search: propulate-hpo's asynchronous NSGA-II against DEAP's synchronous
NSGA-II and Optuna's NSGA-II sampler on ZDT1, ZDT2, ZDT3 and DTLZ2, side by side.

    python benchmarks/multi_objective.py [--evaluations 4000] [--seeds 3] [--quick]

Every optimizer gets 4 workers (4 MPI ranks for propulate-hpo, a pool of 4 processes for
DEAP as its documentation shows, ``n_jobs=4`` for Optuna) and the same number of evaluations.
The population size of each is first chosen on a validation seed (the hypervolume summed over
the four problems), then the test seeds run. A second part gives every evaluation a random
duration (uniform in [0, 20] ms) and compares the hypervolume reached over wall time. The
results replace the ``multi-objective`` block of BENCHMARKS.md.

A run is one process tree (``--one OPTIMIZER PROBLEM EVALUATIONS SEED SLEEP SIZE``) that
prints every evaluation's objectives and completion time; this orchestrator computes the
hypervolumes at the problem's customary reference point.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from propulate_hpo.mo_functions import MO_BENCHMARKS
from propulate_hpo.pareto import hypervolume

from shared_hpc.bench import machine_line, markdown_table, replace_marked_block
from shared_hpc.mpi import find_mpiexec, serial_environ

HERE = Path(__file__).resolve()
PACKAGE = HERE.parent.parent
PROBLEMS = ["zdt1", "zdt2", "zdt3", "dtlz2"]
WORKERS = 4
SIZES = {"propulate-hpo": [16, 40, 100], "deap-nsga2": [20, 52, 100], "optuna-nsga2": [20, 50]}
VALIDATION_SEED = 1000
SLEEP_MAX_S = 0.02


class Problem:
    """A test problem whose evaluation may first sleep a random time (uneven durations)."""

    def __init__(self, name: str, sleep_max_s: float, seed: int) -> None:
        self.problem = MO_BENCHMARKS[name]
        self.sleep_max_s = sleep_max_s
        self.rng = random.Random(seed)

    def __call__(self, x) -> tuple[float, ...]:
        if self.sleep_max_s:
            time.sleep(self.rng.uniform(0.0, self.sleep_max_s))
        return self.problem.function(np.asarray(x, dtype=float))


def _emit(values: list, t_end: list) -> None:
    print("RESULT " + json.dumps({"f": values, "t": t_end}), flush=True)


def run_propulate(name: str, evaluations: int, seed: int, sleep: float, size: int) -> None:
    from propulate_hpo import propulate

    from shared_hpc import get_comm

    comm = get_comm()
    problem = Problem(name, sleep, seed * 1000 + comm.Get_rank())
    space = problem.problem.space()

    def loss(params):
        return problem(list(params.values()))

    comm.barrier()
    began = time.time()
    result = propulate(
        loss,
        space,
        max_evaluations=evaluations,
        objectives=problem.problem.objectives,
        pop_size=size,
        seed=seed,
        comm=comm,
    )
    if comm.Get_rank() == 0:
        history = result.history  # in order of completion, times since the first start
        offset = float(result.table.t_start.min()) - began
        f = history[list(problem.problem.objectives)].to_numpy()
        _emit(f.tolist(), (history["t_end"].to_numpy() + offset).tolist())


_deap_problem = None


def _deap_init(name: str, sleep: float, seed: int) -> None:
    import multiprocessing as mp

    global _deap_problem
    _deap_problem = Problem(name, sleep, seed + mp.current_process()._identity[0])


def _deap_evaluate(individual):
    return _deap_problem(individual), time.time()


def run_deap(name: str, evaluations: int, seed: int, sleep: float, size: int) -> None:
    """DEAP's NSGA-II example (examples/ga/nsga2.py): SBX and polynomial mutation with
    eta 20, crossover probability 0.9, selTournamentDCD and selNSGA2, a process pool."""
    import multiprocessing as mp

    from deap import base, creator, tools

    problem = MO_BENCHMARKS[name]
    random.seed(seed)
    creator.create("Fitness", base.Fitness, weights=(-1.0,) * problem.n_objectives)
    creator.create("Individual", list, fitness=creator.Fitness)
    dim = problem.dim
    toolbox = base.Toolbox()
    toolbox.register("mate", tools.cxSimulatedBinaryBounded, low=0.0, up=1.0, eta=20.0)
    toolbox.register(
        "mutate", tools.mutPolynomialBounded, low=0.0, up=1.0, eta=20.0, indpb=1.0 / dim
    )
    toolbox.register("select", tools.selNSGA2)
    pool = mp.get_context("fork").Pool(WORKERS, _deap_init, (name, sleep, 1000 * seed))
    pool.map(abs, range(WORKERS))  # start the workers before the clock
    values, t_end = [], []
    began = time.time()

    def evaluate(individuals):
        for ind, (fitness, done) in zip(
            individuals, pool.map(_deap_evaluate, individuals, chunksize=1), strict=True
        ):
            ind.fitness.values = fitness
            values.append(list(fitness))
            t_end.append(done - began)

    population = [creator.Individual(random.random() for _ in range(dim)) for _ in range(size)]
    evaluate(population)
    population = toolbox.select(population, size)  # assigns the crowding distances
    while len(values) < evaluations:
        offspring = [toolbox.clone(i) for i in tools.selTournamentDCD(population, size)]
        for a, b in zip(offspring[::2], offspring[1::2], strict=True):
            if random.random() <= 0.9:
                toolbox.mate(a, b)
            toolbox.mutate(a)
            toolbox.mutate(b)
            del a.fitness.values, b.fitness.values
        offspring = offspring[: evaluations - len(values)]
        evaluate(offspring)
        population = toolbox.select(population + offspring, size)
    pool.terminate()
    order = np.argsort(t_end, kind="stable")
    _emit([values[i] for i in order], [t_end[i] for i in order])


def run_optuna(name: str, evaluations: int, seed: int, sleep: float, size: int) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    problem = MO_BENCHMARKS[name]
    evaluate = Problem(name, sleep, seed)
    sampler = optuna.samplers.NSGAIISampler(population_size=size, seed=seed)
    study = optuna.create_study(directions=["minimize"] * problem.n_objectives, sampler=sampler)

    def objective(trial):
        return evaluate([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(problem.dim)])

    began = time.time()
    study.optimize(objective, n_trials=evaluations, n_jobs=WORKERS)
    trials = sorted(study.trials, key=lambda t: t.datetime_complete)
    _emit(
        [list(t.values) for t in trials],
        [t.datetime_complete.timestamp() - began for t in trials],
    )


RUNNERS = {"propulate-hpo": run_propulate, "deap-nsga2": run_deap, "optuna-nsga2": run_optuna}


def measure(optimizer: str, name: str, evaluations: int, seed: int, sleep: float, size: int):
    """One run in a fresh process tree: objectives in order of completion and their times."""
    command = [sys.executable, str(HERE), "--one", optimizer, name, str(evaluations)]
    command += [str(seed), str(sleep), str(size)]
    if optimizer == "propulate-hpo":
        command = [find_mpiexec() or "mpiexec", "-n", str(WORKERS), *command]
    done = subprocess.run(
        command, env={"OMP_NUM_THREADS": "1", **serial_environ()}, capture_output=True, text=True
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if done.returncode != 0 or not line:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    data = json.loads(line[0][len("RESULT ") :])
    return np.array(data["f"]), np.array(data["t"])


def hv_after(f: np.ndarray, name: str, count: int) -> float:
    return hypervolume(f[:count], np.array(MO_BENCHMARKS[name].reference))


def hv_at_time(f: np.ndarray, t: np.ndarray, name: str, seconds: float) -> float:
    return hv_after(f, name, int(np.searchsorted(t, seconds, side="right")))


def tune(evaluations: int, log) -> dict[str, int]:
    """Each optimizer's population size: the best summed hypervolume on the validation seed."""
    chosen = {}
    for optimizer, sizes in SIZES.items():
        scores = {}
        for size in sizes:
            total = 0.0
            for name in PROBLEMS:
                f, _ = measure(optimizer, name, evaluations, VALIDATION_SEED, 0.0, size)
                total += hv_after(f, name, evaluations) / MO_BENCHMARKS[name].best_hypervolume()
            scores[size] = total
            log(f"tune {optimizer} size {size}: {total:.3f}")
        chosen[optimizer] = max(scores, key=scores.get)
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=6, metavar="ARG")
    parser.add_argument("--evaluations", type=int, default=4000)
    parser.add_argument("--uneven-evaluations", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run; BENCHMARKS.md untouched")
    args = parser.parse_args(argv)
    if args.one:
        optimizer, name, evaluations, seed, sleep, size = args.one
        RUNNERS[optimizer](name, int(evaluations), int(seed), float(sleep), int(size))
        return 0
    started, machine = time.time(), machine_line()

    def log(message: str) -> None:
        print(f"[{time.time() - started:6.0f} s] {message}", flush=True)

    if args.quick:
        args.evaluations, args.uneven_evaluations, args.seeds = 200, 100, 1
        sizes = {optimizer: sizes[0] for optimizer, sizes in SIZES.items()}
    else:
        sizes = tune(args.evaluations, log)
    seeds = list(range(args.seeds))
    even, uneven = [], []
    for name in PROBLEMS:
        for optimizer in RUNNERS:
            runs = [
                measure(optimizer, name, args.evaluations, s, 0.0, sizes[optimizer]) for s in seeds
            ]
            quarters = [
                np.median([hv_after(f, name, args.evaluations * q // 4) for f, _ in runs])
                for q in (1, 2, 4)
            ]
            wall = np.median([t[-1] for _, t in runs])
            even.append([name, optimizer, sizes[optimizer], *quarters, wall, runs])
            log(f"{name} {optimizer}: hypervolume {quarters[-1]:.4f} in {wall:.1f} s")
        for optimizer in RUNNERS:
            n = args.uneven_evaluations
            runs = [measure(optimizer, name, n, s, SLEEP_MAX_S, sizes[optimizer]) for s in seeds]
            uneven.append([name, optimizer, runs])
            log(f"{name} {optimizer} uneven: {np.median([t[-1] for _, t in runs]):.1f} s")
    if args.quick:
        return 0
    write(even, uneven, sizes, args, machine, time.time() - started)
    return 0


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def write(even, uneven, sizes, args, machine: str, seconds: float) -> None:
    rows = []
    for name, optimizer, size, q1, q2, q4, wall, _ in even:
        best = MO_BENCHMARKS[name].best_hypervolume()
        rows.append([name, optimizer, size, _fmt(q1), _fmt(q2), _fmt(q4), _fmt(best)])
        rows[-1].append(f"{1000 * wall / args.evaluations:.2f}")
    uneven_rows = []
    for name in PROBLEMS:
        group = [(o, runs) for n, o, runs in uneven if n == name]
        first_done = min(np.median([t[-1] for _, t in runs]) for _, runs in group)
        for optimizer, runs in group:
            wall = np.median([t[-1] for _, t in runs])
            at = np.median([hv_at_time(f, t, name, first_done) for f, t in runs])
            final = np.median([hv_after(f, name, len(f)) for f, _ in runs])
            uneven_rows.append([name, optimizer, f"{wall:.2f}", _fmt(at), _fmt(final)])
    verdicts = []
    for name in PROBLEMS:
        ours = next(r for r in even if r[0] == name and r[1] == "propulate-hpo")[5]
        deap = next(r for r in even if r[0] == name and r[1] == "deap-nsga2")[5]
        verdicts.append(f"{name}: {'met' if ours >= deap else 'missed'} ({ours:.4f} vs {deap:.4f})")
    faster = []
    for name in PROBLEMS:
        at = {r[1]: float(r[3]) for r in uneven_rows if r[0] == name}
        others = max(v for k, v in at.items() if k != "propulate-hpo")
        ours = at["propulate-hpo"]
        verdict = (
            "no hypervolume yet"
            if max(ours, others) == 0
            else "met"
            if ours >= others
            else "missed"
        )
        faster.append(f"{name}: {verdict} ({ours:.4f} vs {others:.4f})")
    sleep_ms = f"{1000 * SLEEP_MAX_S:.0f}"
    n = args.evaluations
    quarters = [f"HV @ {n * q // 4}" for q in (1, 2, 4)]
    header = ["problem", "optimizer", "population", *quarters, "best possible", "wall / eval [ms]"]
    even_table = markdown_table(header, rows)
    uneven_table = markdown_table(
        ["problem", "optimizer", "wall [s]", "HV when the first finishes", "HV at the end"],
        uneven_rows,
    )
    text = f"""## Multi-objective search (asynchronous NSGA-II)

Written by `benchmarks/multi_objective.py` on {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
in {seconds / 60:.0f} minutes. Machine: {machine}. **4 workers on 2 cores: oversubscribed**
(MPI ranks for propulate-hpo, a process pool for DEAP, threads for Optuna); cheap evaluations
then measure the optimizers' own cost as much as their search.

Each optimizer's population size was chosen on a validation seed ({VALIDATION_SEED}) from
{SIZES} by the hypervolume summed over the four problems: {sizes}. Then {args.seeds} test
seeds; medians. Hypervolume at the problems' customary reference points (1.1 per objective);
*best possible*: the true front's (exact for DTLZ2, of a 2000-point sample for ZDT).
propulate-hpo runs `max_evaluations` over 4 ranks with its default breeding for several
objectives (`nsga2`: crowded tournaments from a steady-state archive, SBX and polynomial
mutation); DEAP runs its NSGA-II example (generations of the population size,
selTournamentDCD, selNSGA2) with `pool.map`; Optuna its `NSGAIISampler` with in-memory storage.

### Equal evaluations ({args.evaluations}), instant evaluations

{even_table}
Goal "a hypervolume at least as high as DEAP's NSGA-II at equal evaluations":
{"; ".join(verdicts)}.

### Uneven evaluation times: {args.uneven_evaluations} evaluations of U[0, {sleep_ms}] ms

*HV when the first finishes*: each optimizer's hypervolume at the wall time at which the fastest
of the three had finished all its evaluations (hypervolume per second, compared at one time).

{uneven_table}
Goal "more hypervolume per second when evaluation times vary": {"; ".join(faster)}.
"""
    replace_marked_block(PACKAGE / "BENCHMARKS.md", "multi-objective", text, append=True)


if __name__ == "__main__":
    sys.exit(main())
