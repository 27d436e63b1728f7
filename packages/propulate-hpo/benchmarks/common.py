"""What every optimizer in the benchmark shares: the test functions and a timed objective.

All optimizers minimise the same Python functions (``propulate_hpo.functions``, the paper's
dimensions and domains). The objective wrapper counts the calls and the seconds spent inside
the function, so that the optimizer's own overhead is the rest. With ``sleep_max_s > 0`` each
call first sleeps a random time in [0, sleep_max_s] (uneven evaluation times).
"""

from __future__ import annotations

import atexit
import json
import random
import shutil
import tempfile
import time

import numpy as np
from propulate_hpo.functions import BENCHMARKS

FUNCTIONS = ["sphere", "rosenbrock", "rastrigin", "griewank", "schwefel", "bukin"]


class Objective:
    """``f(x)`` on a numpy vector, timed; optional random sleep first."""

    def __init__(self, name: str, sleep_max_s: float = 0.0, seed: int = 0) -> None:
        self.bench = BENCHMARKS[name]
        self.bounds = self.bench.domain()
        self.sleep_max_s = sleep_max_s
        self.rng = random.Random(seed)
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, x) -> float:
        started = time.perf_counter()
        if self.sleep_max_s:
            time.sleep(self.rng.uniform(0.0, self.sleep_max_s))
        value = self.bench.function(np.asarray(x, dtype=float))
        self.seconds += time.perf_counter() - started
        self.calls += 1
        return value


def report(**fields) -> None:
    """The one line a runner prints for the orchestrator."""
    print("RESULT " + json.dumps(fields), flush=True)


def scratch_dir(prefix: str) -> str:
    """A fresh directory for one run's checkpoint or storage, deleted when the process exits
    (a full benchmark makes thousands of them)."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
