"""Optuna TPE with 4 processes sharing one storage, the way Optuna parallelises:
python bench_optuna.py STORAGE FUNCTION EVALS_PER_PROCESS SEED SLEEP [PROCESSES],
STORAGE = journal (JournalStorage on a file) or sqlite (RDBStorage)."""

import multiprocessing as mp
import sys
import time
from pathlib import Path

from common import Objective, report, scratch_dir


def storage_for(kind: str, directory: Path):
    import optuna

    if kind == "journal":
        backend = optuna.storages.journal.JournalFileBackend(str(directory / "journal.log"))
        return optuna.storages.JournalStorage(backend)
    return f"sqlite:///{directory / 'study.db'}"


def worker(kind, directory, name, trials, seed, sleep, index, barrier, results):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objective = Objective(name, sleep, seed=1000 * seed + index)
    sampler = optuna.samplers.TPESampler(seed=1000 * seed + index)
    study = optuna.load_study(
        study_name="bench", storage=storage_for(kind, directory), sampler=sampler
    )
    bounds = objective.bounds

    def loss(trial):
        return objective(
            [trial.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(bounds)]
        )

    barrier.wait()
    started = time.time()
    study.optimize(loss, n_trials=trials)
    results.put((started, time.time(), objective.seconds))


if __name__ == "__main__":
    kind, name, trials, seed, sleep = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
        float(sys.argv[5]),
    )
    processes = int(sys.argv[6]) if len(sys.argv) > 6 else 4
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directory = Path(scratch_dir("bench-optuna-"))
    study = optuna.create_study(study_name="bench", storage=storage_for(kind, directory))
    context = mp.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(
            target=worker, args=(kind, directory, name, trials, seed, sleep, i, barrier, results)
        )
        for i in range(processes)
    ]
    for p in workers:
        p.start()
    timings = [results.get() for _ in workers]
    for p in workers:
        p.join()
    study = optuna.load_study(study_name="bench", storage=storage_for(kind, directory))
    done = [t for t in study.trials if t.value is not None]
    wall = max(t[1] for t in timings) - min(t[0] for t in timings)
    report(
        optimizer=f"optuna-{kind}",
        wall_s=wall,
        objective_s=sum(t[2] for t in timings),
        evals=len(done),
        best=study.best_value,
        workers=processes,
    )
