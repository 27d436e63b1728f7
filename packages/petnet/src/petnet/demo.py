"""The embedded default end to end: simulate a small scanner, train PETNet briefly, compare it
with the paper's sliding window and the GATE sorter, and write a run record and plots."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from petnet.__about__ import __version__
from petnet.evaluate import compare, markdown_table
from petnet.inference import PETNetSorter
from petnet.model import ModelConfig
from petnet.plots import comparison, energy_spectrum
from petnet.sim import SimulationConfig, Source, WaterCylinder, preset, simulate
from petnet.train import PETNetConfig, TrainConfig, train
from shared_hpc import EnergyMeter, RunRecord, get_comm, write_text_atomic

PAPER_F1 = 0.952  # the paper's best coincidence F1 (abstract)


def demo_simulation(seed: int, duration_s: float, activity_bq: float = 5e7) -> SimulationConfig:
    """A water cylinder filled with activity in the small demonstration scanner."""
    return SimulationConfig(
        scanner=preset("small"),
        sources=(Source(kind="cylinder", activity_bq=activity_bq, radius_mm=20.0, length_mm=16.0),),
        water=WaterCylinder(radius_mm=20.0, length_mm=16.0),
        duration_s=duration_s,
        seed=seed,
    )


def run_demo(output: Path, quick: bool = False) -> RunRecord:
    """Run everything into ``output``; ``quick`` trains less (for tests)."""
    output.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the demo's tensors are small: more threads only add overhead
    try:
        return _run(output, quick)
    finally:
        torch.set_num_threads(threads)


def _run(output: Path, quick: bool) -> RunRecord:
    comm = get_comm()
    started = time.perf_counter()
    simulations = {"train": demo_simulation(1, 4e-3), "test": demo_simulation(2, 2e-3)}
    config = PETNetConfig(
        model=ModelConfig(architecture="ring"),
        train=TrainConfig(epochs=2 if quick else 3, max_steps_per_epoch=15 if quick else 60),
    )
    with EnergyMeter(comm) as meter:
        train_singles = simulate(simulations["train"])
        test_singles = simulate(simulations["test"])
        result = train(train_singles, config, output / "model", comm=comm, log=print)
        sorter = PETNetSorter.from_checkpoint(result.best_checkpoint)
        results = compare(
            test_singles,
            {"PETNet (ring)": sorter},
            policies=("takeWinnerOfGoods", "takeAllGoods"),
            repeats=1 if quick else 3,
        )
    table = markdown_table(results)
    print(table)
    write_text_atomic(output / "comparison.md", table)
    energy_spectrum(test_singles, output / "spectrum.png")
    comparison(results, result.history, output / "comparison.png")
    petnet = results[-1]
    config_record: dict[str, Any] = {k: asdict(v) for k, v in simulations.items()}
    config_record["petnet"] = asdict(config)
    record = RunRecord.create(
        "petnet",
        __version__,
        config=config_record,
        metrics={
            "methods": [r.as_dict() for r in results],
            "training": {"history": result.history, "energy": result.energy},
            "test_singles": len(test_singles),
        },
        headline={
            "name": "coincidence F1, PETNet (ring), small scanner",
            "value": round(petnet.scores.f1, 4),
            "unit": "",
            "paper": PAPER_F1,
            "higher_is_better": True,
        },
        energy=meter.report,
        wall_time_s=time.perf_counter() - started,
        artifacts=["comparison.md", "spectrum.png", "comparison.png", "model/best.pt"],
    )
    record.write(output / "results.json")
    return record
