"""The embedded default end to end: tune an MLP on scikit-learn's digits for validation
accuracy and energy at once, on 4 ranks in 2 islands, then record and plot the trade-off.

``propulate-hpo demo --output DIR`` (about a minute on 2 cores). Run as one process, it starts
itself under ``mpiexec -n 4`` when a launcher is found (``--launch-ranks 0``: never; without a
launcher it says so and runs one worker). Rank 0 writes ``results.json`` (the run record,
headline: the test accuracy of the most accurate candidate; metrics: the Pareto front and the
energy its cheapest candidate within one point of accuracy saves), the history, the front
(``pareto-front.csv``), its plot with the hypervolume per island, and the best accuracy per
island.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
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
    find_mpiexec,
    get_comm,
    lock_folder,
    prepare_output_dir,
    rank0_print,
    serial_environ,
    write_text_atomic,
)

FILES = ["history.csv", "pareto-front.csv", "progress.png", "islands.png"]
ARTIFACTS = [*FILES, "checkpoint/"]


def _plot_islands(history: Any, path: Path) -> None:
    """Best validation accuracy so far per island, over each island's evaluations."""
    import numpy as np
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 4), layout="constrained")
    ax = figure.subplots()
    ok = history[history["status"] == "ok"]
    for island in sorted(ok["island"].unique()):
        accuracy = ok[ok["island"] == island]["val_accuracy"].to_numpy()
        best = np.maximum.accumulate(accuracy)
        ax.step(np.arange(1, len(best) + 1), best, where="post", label=f"island {island}")
    ax.set_xlabel("evaluations of the island (in order of completion)")
    ax.set_ylabel("best validation accuracy so far")
    ax.grid(alpha=0.3)
    ax.legend()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)


def _flags(config: DemoConfig) -> list[str]:
    """``config`` as the command line's flags (the launched ranks get the same settings)."""
    flags = []
    for field in dataclasses.fields(config):
        flags += [f"--{field.name.replace('_', '-')}", str(getattr(config, field.name))]
    return flags


def _launch(mpiexec: str, output: Path, config: DemoConfig) -> RunRecord:
    """Run the demo again under ``mpiexec -n launch_ranks``; its output goes to ours."""
    ranks = config.launch_ranks
    print(
        f"propulate-hpo demo: starting {ranks} ranks with {mpiexec} "
        f"({min(config.islands, ranks)} islands; --launch-ranks 0 runs in this process)",
        flush=True,
    )
    inner = dataclasses.replace(config, launch_ranks=0)
    command = [mpiexec, "-n", str(ranks), sys.executable, "-m", "propulate_hpo", "demo"]
    command += ["--output", str(output), *_flags(inner)]
    job = subprocess.run(command, env={"OMP_NUM_THREADS": "1", **serial_environ()}, check=False)
    if job.returncode != 0:  # the ranks said why above
        raise UserError(f"the demo under {mpiexec} ended with exit code {job.returncode}")
    return RunRecord.read(output / "results.json")


def run_demo(
    output: str | Path, config: DemoConfig | None = None, comm: Comm | None = None
) -> RunRecord:
    """Tune the digits MLP into ``output`` (collective; rank 0 writes the files).

    The search always starts afresh: an earlier demo's checkpoint in ``output`` is removed.

    Args:
        output: Folder for results.json, the history, the front, the plots and the checkpoint.
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
    if comm.Get_size() == 1 and config.launch_ranks > 1:
        mpiexec = find_mpiexec()
        if mpiexec is not None:
            with lock_folder(output, comm):  # refused here, not by every launched rank
                pass
            return _launch(mpiexec, output, config)
        print(
            "propulate-hpo demo: no MPI launcher found, so one worker searches on one island "
            "(pip install mpich for the asynchronous run on 4 ranks)",
            flush=True,
        )
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
        write_text_atomic(output / "pareto-front.csv", search.front().to_csv(index=False))
        result.plot(output / "progress.png")
        _plot_islands(result.history, output / "islands.png")
    metrics = search.metrics()
    record = run.write(
        output / "results.json",
        config=config,
        metrics=metrics,
        headline=search.headline(),
        artifacts=ARTIFACTS,
    )
    rank0_print(result.summary(), comm=comm)
    kind = "measured" if metrics["energy_per_candidate_measured"] else "estimated"
    rank0_print(
        f"most accurate: test accuracy {metrics['best_test_accuracy']:.3f} with "
        f"{metrics['best_energy_j']:.1f} J; the cheapest candidate within one point of its "
        f"validation accuracy: {metrics['cheapest_within_1_point_test_accuracy']:.3f} with "
        f"{metrics['cheapest_within_1_point_energy_j']:.1f} J "
        f"({100 * metrics['energy_saved_within_1_point']:.0f} % less energy, {kind})",
        comm=comm,
    )
    rank0_print(f"energy of the whole demo: {run.report}", comm=comm)
    rank0_print(f"results in {output}/", comm=comm)
    return record
