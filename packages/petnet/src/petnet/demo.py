"""The embedded default end to end: simulate a small scanner, train PETNet briefly, compare it
with the paper's sliding window and the GATE sorter, and write a run record and plots."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import torch

from petnet.__about__ import __version__
from petnet.config import CompareConfig, ModelConfig, PETNetConfig, TrainConfig
from petnet.evaluate import compare
from petnet.inference import PETNetSorter
from petnet.metrics import PAPER_F1
from petnet.plots import comparison, energy_spectrum
from petnet.sim import SimulationConfig, Source, WaterCylinder, preset, simulate
from petnet.train import BEST_CHECKPOINT, train
from shared_hpc import (
    Comm,
    Headline,
    Recorder,
    RunRecord,
    check_output_file,
    get_comm,
    lock_folder,
    rank0_print,
    set_torch_threads,
    write_text_atomic,
)

FILES = ("results.json", "comparison.md", "spectrum.png", "comparison.png")


def demo_simulation(seed: int, duration_s: float, activity_bq: float = 5e7) -> SimulationConfig:
    """A water cylinder filled with activity in the small demonstration scanner.

    Args:
        seed: Seed of the acquisition.
        duration_s: Its length in s.
        activity_bq: Activity of the cylinder in Bq.
    """
    return SimulationConfig(
        scanner=preset("small"),
        sources=(Source(kind="cylinder", activity_bq=activity_bq, radius_mm=20.0, length_mm=16.0),),
        water=WaterCylinder(radius_mm=20.0, length_mm=16.0),
        duration_s=duration_s,
        seed=seed,
    )


def run_demo(
    output: str | os.PathLike[str], comm: Comm | None = None, quick: bool = False
) -> RunRecord:
    """Simulate, train and compare, measured by one ``Recorder``; rank 0 writes the files.

    Args:
        output: Folder for ``results.json``, ``comparison.md``, the plots and the model.
        comm: Communicator of the ranks that train (default: ``get_comm()``).
        quick: Train less (for tests).

    Returns:
        The run record, on every rank.

    Raises:
        UserError: The folder cannot be written, or another run uses it.
    """
    comm = get_comm() if comm is None else comm
    with lock_folder(output, comm) as folder:
        for name in FILES:
            check_output_file(folder / name)
        threads = torch.get_num_threads()
        set_torch_threads(comm, 1)  # the demo's tensors are small: more threads add overhead
        try:
            return _run(folder, comm, quick)
        finally:
            torch.set_num_threads(threads)


def _run(output: Path, comm: Comm, quick: bool) -> RunRecord:
    simulations = {"train": demo_simulation(1, 4e-3), "test": demo_simulation(2, 2e-3)}
    config = PETNetConfig(
        model=ModelConfig(architecture="ring"),
        train=TrainConfig(epochs=2 if quick else 3, max_steps_per_epoch=15 if quick else 60),
    )
    settings = CompareConfig(
        policies=("takeWinnerOfGoods", "takeAllGoods"), repeats=1 if quick else 3
    )
    log = partial(rank0_print, comm=comm)
    with Recorder("petnet", __version__, comm) as run:
        train_singles = simulate(simulations["train"])
        test_singles = simulate(simulations["test"])
        result = train(train_singles, config, output / "model", comm=comm, log=log)
        sorter = PETNetSorter.from_checkpoint(result.best_checkpoint)
        results = compare(test_singles, {"PETNet (ring)": sorter}, settings)
    table = results.markdown()
    log(table)
    if run.is_writer:
        write_text_atomic(output / "comparison.md", table)
        energy_spectrum(test_singles, output / "spectrum.png")
        comparison(results.methods, result.history, output / "comparison.png")
    petnet = results.methods[-1]
    return run.write(
        output / "results.json",
        config={**simulations, "petnet": config, "compare": settings},
        metrics={
            **results.metrics(),
            "training": {"history": result.history, "energy": result.energy},
            "test_singles": len(test_singles),
        },
        headline=Headline(
            "coincidence F1, PETNet (ring), small scanner",
            round(petnet.scores.f1, 4),
            paper=PAPER_F1,
        ),
        artifacts=["comparison.md", "spectrum.png", "comparison.png", f"model/{BEST_CHECKPOINT}"],
    )
