"""The embedded default end to end: tune an MLP on scikit-learn's digits, measure, record, plot.

``propulate-hpo demo --output DIR`` (about 20 s on 2 cores; under ``mpiexec -n 4
--ranks-per-worker 2`` two workers train their candidates data-parallel). Rank 0 writes
``results.json`` (the run record, headline: the test accuracy of the best candidate), the
history, the progress plot and the energy of every candidate against its loss.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from propulate_hpo.__about__ import __version__
from propulate_hpo.config import DemoConfig
from shared_hpc import (
    Comm,
    Recorder,
    RunRecord,
    UserError,
    atomic_path,
    check_output_file,
    get_comm,
    lock_folder,
    prepare_output_dir,
    rank0_print,
)

FILES = ["history.csv", "progress.png", "energy.png"]
ARTIFACTS = [*FILES, "checkpoint/"]


def _plot_energy(history: Any, path: Path) -> None:
    """Energy of every candidate against its validation loss, finished and stopped early."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 4), layout="constrained")
    ax = figure.subplots()
    for status, marker in (("ok", "o"), ("cancelled", "x")):
        part = history[history["status"] == status]
        ax.scatter(part["energy_j"], part["loss"], marker=marker, label=status, alpha=0.7)
    measured = bool(len(history)) and bool(history["energy_measured"].min() == 1.0)
    ax.set_xlabel(f"energy per candidate [J] ({'measured' if measured else 'estimated'})")
    ax.set_ylabel("validation loss")
    ax.set_yscale("log")
    ax.legend()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)


def run_demo(
    output: str | Path, config: DemoConfig | None = None, comm: Comm | None = None
) -> RunRecord:
    """Tune the digits MLP into ``output`` (collective; rank 0 writes the files).

    The search always starts afresh: an earlier demo's checkpoint in ``output`` is removed.

    Args:
        output: Folder for results.json, history.csv, progress.png, energy.png and the
            checkpoint.
        config: The demo's settings (default: ``DemoConfig()``).
        comm: The ranks of the demo (default: ``shared_hpc.get_comm()``).

    Returns:
        The run record, on every rank.

    Raises:
        UserError: ``output`` cannot be written or is in use by another run, or torch or
            scikit-learn is missing.
    """
    comm = get_comm() if comm is None else comm
    config = DemoConfig() if config is None else config
    output = prepare_output_dir(output)
    for name in ("results.json", *FILES):
        check_output_file(output / name)
    try:
        import sklearn  # noqa: F401
        import torch  # noqa: F401
    except ImportError as error:
        raise UserError(
            f"the demo needs torch and scikit-learn: pip install propulate-hpo[demo] ({error})"
        ) from None
    # a second demo in this folder would remove the first one's checkpoint under it
    with lock_folder(output, comm):
        return _tune(output, config, comm)


def _tune(output: Path, config: DemoConfig, comm: Comm) -> RunRecord:
    """The demo in its checked and locked folder."""
    from propulate_hpo.digits import digits_data, search_digits
    from shared_hpc import set_torch_threads

    checkpoint = output / "checkpoint"
    if comm.Get_rank() == 0:
        shutil.rmtree(checkpoint, ignore_errors=True)
    set_torch_threads(comm, 1)  # a candidate per rank: the ranks share the cores
    digits_data()
    comm.barrier()
    with Recorder("propulate-hpo", __version__, comm) as run:
        search = search_digits(config, checkpoint, comm)
    result = search.result
    if run.is_writer:
        result.to_csv(output / "history.csv")
        result.plot(output / "progress.png")
        _plot_energy(result.history, output / "energy.png")
    metrics = search.metrics()
    record = run.write(
        output / "results.json",
        config=config,
        metrics=metrics,
        headline=search.headline(),
        artifacts=ARTIFACTS,
    )
    rank0_print(result.summary(), comm=comm)
    rank0_print(
        f"best candidate: test accuracy {metrics['best_test_accuracy']:.3f}; "
        f"{metrics['cancelled']} of {result.n_evaluations} candidates stopped early; "
        f"trained {metrics['epochs_trained']} of {metrics['epochs_without_early_stopping']} "
        "epochs",
        comm=comm,
    )
    rank0_print(f"energy of the whole demo: {run.report}", comm=comm)
    rank0_print(f"results in {output}/", comm=comm)
    return record
