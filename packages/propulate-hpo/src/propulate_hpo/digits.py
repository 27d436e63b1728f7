"""A real hyperparameter search: an MLP on scikit-learn's handwritten digits.

``digits_loss`` is a loss function for ``Propulator`` that trains one
candidate with data parallelism over the worker's communicator (``torch.distributed`` with
gloo on CPU / NCCL on GPU, set up by ``shared_hpc.torch_distributed``), yields the validation
loss after every epoch (so the early-stopping surrogate can cancel hopeless candidates), and
returns the validation and test accuracy and the energy of the candidate, measured with
``shared_hpc.EnergyMeter`` (RAPL/NVML where readable, else estimated; the ``energy_measured``
metric says which).

Search space (``DIGITS_SPACE``, also ``examples/digits_space.toml``): learning rate on a log
scale, hidden width on a log scale, dropout, optimizer as a categorical. ``search_digits`` runs
the whole search of the demo. torch and scikit-learn are the ``demo`` extra
(``pip install propulate-hpo[demo]``).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from propulate_hpo.config import DemoConfig
from propulate_hpo.propulator import Propulator
from propulate_hpo.results import Result
from propulate_hpo.space import Categorical, Float, Int
from shared_hpc.mpi import Comm

if TYPE_CHECKING:
    from shared_hpc.records import Headline

DIGITS_SPACE = {
    "lr": Float(1e-4, 1e-1, log=True),
    "width": Int(16, 256, log=True),
    "dropout": Float(0.0, 0.5),
    "optimizer": Categorical(["adam", "sgd", "rmsprop"]),
}
EPOCHS = 10
BATCH_SIZE = 32


@lru_cache(maxsize=1)
def digits_data() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The 1797 8×8 digits, scaled to [0, 1], split 60/20/20 with a fixed seed."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    n_train, n_val = int(0.6 * len(x)), int(0.2 * len(x))
    parts = np.split(order, [n_train, n_train + n_val])
    return {
        name: (x[idx], y[idx].astype(np.int64))
        for name, idx in zip(("train", "val", "test"), parts, strict=True)
    }


def _model(width: int, dropout: float) -> Any:
    from torch import nn

    return nn.Sequential(
        nn.Linear(64, width),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(width, 10),
    )


def _optimizer(name: str, parameters: Any, lr: float) -> Any:
    import torch

    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=0.9)
    if name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}")


def _evaluate(model: Any, x: Any, y: Any) -> tuple[float, float]:
    """Loss and accuracy summed over the whole split, all-reduced over the group."""
    import torch
    import torch.distributed as dist

    model.eval()
    with torch.no_grad():
        logits = model(x)
        totals = torch.tensor(
            [
                torch.nn.functional.cross_entropy(logits, y, reduction="sum").item(),
                (logits.argmax(1) == y).sum().item(),
                float(len(y)),
            ],
            dtype=torch.float64,
            device=x.device,  # NCCL reduces GPU tensors only
        )
    dist.all_reduce(totals)
    model.train()
    return float(totals[0] / totals[2]), float(totals[1] / totals[2])


def digits_loss(
    params: dict[str, Any],
    comm: Comm,
    epochs: int = EPOCHS,
    seed: int = 0,
    energy_share: int = 1,
) -> Generator[dict[str, float], None, dict[str, float]]:
    """Train one candidate data-parallel over ``comm``; yield the validation loss per epoch.

    Each yield also carries the candidate's energy so far, so that candidates cancelled by
    early stopping have their energy logged too. The energy is that of the nodes the worker
    runs on while it trains, divided by ``energy_share``: workers that share a node share its
    draw, and a meter cannot tell their parts apart.

    Args:
        params: ``lr``, ``width``, ``dropout`` and ``optimizer`` of ``DIGITS_SPACE``.
        comm: The worker's ranks, which train the candidate together.
        epochs: Passes over the training data.
        seed: Seed of the initial weights and the batches.
        energy_share: Workers on the node(s) of this worker (``search_digits`` counts them).

    Yields:
        The validation loss and accuracy and the energy so far, after every epoch.

    Returns:
        The validation and test accuracy and the candidate's energy.
    """
    import torch
    from torch.nn.parallel import DistributedDataParallel

    from shared_hpc import EnergyMeter, rank_info, torch_distributed

    data = digits_data()
    # NCCL needs a GPU of its own for every rank of the worker on a node; with fewer GPUs
    # (e.g. two ranks per worker on a one-GPU machine) train on the CPUs with gloo instead
    on_gpu = torch.cuda.is_available() and torch.cuda.device_count() >= rank_info(comm).local_size
    meter = EnergyMeter(comm)
    joules, measured = 0.0, True
    meter.start()
    running = True
    try:
        backend = None if on_gpu else "gloo"
        with torch_distributed(comm, backend=backend, single_process_group=True) as info:
            device = info.device if on_gpu else torch.device("cpu")
            torch.manual_seed(seed)  # same initial weights on every rank of the worker
            model = _model(int(params["width"]), float(params["dropout"])).to(device)
            ddp = DistributedDataParallel(model)
            optimizer = _optimizer(params["optimizer"], ddp.parameters(), float(params["lr"]))
            shard = slice(info.rank, None, info.world_size)  # each rank trains on its shard
            x_train = torch.from_numpy(data["train"][0][shard]).to(device)
            y_train = torch.from_numpy(data["train"][1][shard]).to(device)
            x_val, y_val = (torch.from_numpy(a[shard]).to(device) for a in data["val"])
            x_test, y_test = (torch.from_numpy(a[shard]).to(device) for a in data["test"])
            generator = torch.Generator().manual_seed(seed + info.rank)
            steps = len(x_train) // BATCH_SIZE
            val_accuracy = 0.0
            for _ in range(epochs):
                order = torch.randperm(len(x_train), generator=generator)
                for step in range(steps):
                    batch = order[step * BATCH_SIZE : (step + 1) * BATCH_SIZE]
                    optimizer.zero_grad(set_to_none=True)
                    loss = torch.nn.functional.cross_entropy(ddp(x_train[batch]), y_train[batch])
                    loss.backward()  # DDP averages the gradients over the worker's ranks
                    optimizer.step()
                val_loss, val_accuracy = _evaluate(ddp.module, x_val, y_val)
                report, running = meter.stop(), False  # collective over the worker's ranks
                joules += report.total_joules / energy_share
                measured = measured and report.measured
                yield {
                    "loss": val_loss,
                    "val_accuracy": val_accuracy,
                    "energy_j": joules,
                    "energy_measured": float(measured),
                }
                meter.start()
                running = True
            _, test_accuracy = _evaluate(ddp.module, x_test, y_test)
    except BaseException:  # also cancelled at a yield (GeneratorExit), with the meter stopped
        if running:  # no collective: the worker's other ranks may never reach one
            meter.abandon()
        raise
    report = meter.stop()
    joules, measured = joules + report.total_joules / energy_share, measured and report.measured
    return {
        "val_accuracy": val_accuracy,
        "test_accuracy": test_accuracy,
        "energy_j": joules,
        "energy_measured": float(measured),
    }


@dataclass(frozen=True)
class DigitsSearch:
    """A finished search of the digits MLP's hyperparameters for accuracy and energy.

    Attributes:
        result: Every candidate of the search.
        config: The demo's settings.
    """

    result: Result
    config: DemoConfig

    def front(self) -> Any:
        """The Pareto front (most accurate first), with each candidate's test accuracy."""
        return self.result.pareto_front()

    def cheapest_within(self, points: float = 0.01) -> dict[str, Any]:
        """The front candidate with the least energy whose validation accuracy is within
        ``points`` of the most accurate one's, beside that most accurate one.

        Args:
            points: Accuracy given up, as a fraction (0.01: one point).
        """
        front = self.front()
        best = front.iloc[0]
        close = front[front["val_accuracy"] >= best["val_accuracy"] - points]
        cheap = close.loc[close["energy_j"].idxmin()]
        return {"most_accurate": best.to_dict(), "cheapest_close": cheap.to_dict()}

    def metrics(self) -> dict[str, Any]:
        """The figures of the run record: the front, the energy its cheapest close candidate
        saves against the most accurate one, the energy of all candidates."""
        result, history = self.result, self.result.history
        pair = self.cheapest_within()
        best, cheap = pair["most_accurate"], pair["cheapest_close"]
        columns = [*result.space.names, "val_accuracy", "test_accuracy", "energy_j", "island"]
        return {
            "objectives": list(result.objectives.to_list()) if result.objectives else None,
            "evaluations": result.n_evaluations,
            **result.counts(),
            "pareto_front": self.front()[columns].to_dict("records"),
            "best_val_accuracy": float(best["val_accuracy"]),
            "best_test_accuracy": float(best["test_accuracy"]),
            "best_energy_j": float(best["energy_j"]),
            "cheapest_within_1_point_test_accuracy": float(cheap["test_accuracy"]),
            "cheapest_within_1_point_energy_j": float(cheap["energy_j"]),
            "energy_saved_within_1_point": 1.0 - float(cheap["energy_j"] / best["energy_j"]),
            "candidate_energy_j": float(history["energy_j"].sum()),
            "energy_per_candidate_measured": bool(history["energy_measured"].min() == 1.0),
            "workers": result.n_workers,
            "islands": result.n_islands,
            "ranks_per_worker": self.config.ranks_per_worker,
        }

    def headline(self) -> Headline:
        """The demo's one figure: the test accuracy of the most accurate front candidate."""
        from shared_hpc.records import Headline

        best = self.cheapest_within()["most_accurate"]
        return Headline(
            "test accuracy of the most accurate candidate", float(best["test_accuracy"])
        )


def search_digits(
    config: DemoConfig, checkpoint: Path | None = None, comm: Comm | None = None
) -> DigitsSearch:
    """Tune the MLP's learning rate, width, dropout and optimizer for validation accuracy and
    energy (collective).

    Each candidate trains data-parallel on its worker's ranks; its energy is its share of its
    node's energy while it trained (see ``digits_loss``).

    Args:
        config: The demo's settings.
        checkpoint: Checkpoint directory of the search (a run resumes from what it holds).
        comm: The ranks of the search (default: ``shared_hpc.get_comm()``).

    Returns:
        The finished search, on every rank.
    """
    from shared_hpc.mpi import get_comm, rank_info

    comm = get_comm() if comm is None else comm
    workers_here = max(1, rank_info(comm).local_size // config.ranks_per_worker)
    workers = comm.Get_size() // config.ranks_per_worker
    propulator = Propulator(
        partial(digits_loss, energy_share=workers_here),
        DIGITS_SPACE,
        config.options(checkpoint, workers=workers),
        comm=comm,
        loss_fingerprint={"name": "propulate_hpo.digits:digits_loss"},
    )
    return DigitsSearch(propulator.run(), config)
