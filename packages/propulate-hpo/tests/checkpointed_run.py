"""A run with a checkpoint, for the tests that kill it and resume: python checkpointed_run.py DIR
GENERATIONS SLEEP_S [ISLANDS]. Prints one line 'done N BEST' on rank 0."""

import sys
import time

from propulate_hpo import propulate

SPACE = {"x": (-5.12, 5.12), "y": (-5.12, 5.12), "c": ("a", "b", "c")}


def loss(params):
    time.sleep(SLEEP_S)
    return params["x"] ** 2 + params["y"] ** 2 + (params["c"] != "a")


if __name__ == "__main__":
    directory, generations, SLEEP_S = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    islands = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    result = propulate(
        loss,
        SPACE,
        generations=generations,
        checkpoint_dir=directory,
        seed=3,
        islands=islands,
        migration_probability=0.5 if islands > 1 else 0.0,
    )
    from shared_hpc import get_comm

    if get_comm().Get_rank() == 0:
        print("done", result.n_evaluations, result.best_loss, flush=True)
