"""OIALR against full rank (and against the authors' fixed-delay switch) on one recipe.

Each arm trains with the same settings and seeds in one process, seed by seed with the arms in
turn, and each run's energy is measured around its training alone (inside a command's recorder
the meters share its sensors).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from oialr.config import TrainConfig
from oialr.recipes import Recipe
from oialr.training import EpochRecord, TrainResult, train
from shared_hpc import Comm, EnergyMeter, Headline, get_comm

__all__ = ["ARMS", "Arm", "Comparison", "compare"]

ARMS = ("full-rank", "oialr", "fixed-delay")
"""Full rank; OIALR switching each layer when its bases are stable; OIALR switching every
layer after ``schedule.delay`` steps, as the authors' released code does."""


def _arm_config(arm: str, config: TrainConfig, seed: int) -> TrainConfig:
    schedule = config.schedule
    if arm == "fixed-delay":
        schedule = dataclasses.replace(schedule, switch="delay")
    elif arm == "oialr":
        schedule = dataclasses.replace(schedule, switch="stable")
    return dataclasses.replace(
        config, full_rank=arm == "full-rank", seed=seed, schedule=schedule, checkpoint_every=0
    )


@dataclass(frozen=True)
class Arm:
    """One arm's runs, one per seed.

    Attributes:
        name: One of ``ARMS``.
        runs: The training results.
        joules: Energy of each run (summed over nodes).
        energy_method: How it was measured or estimated (the meter's ``method``).
    """

    name: str
    runs: list[TrainResult]
    joules: list[float]
    energy_method: str

    def mean(self, values: Sequence[float]) -> tuple[float, float]:
        """Mean and standard deviation (0 for one seed)."""
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return statistics.fmean(values), spread

    def summary(self) -> dict[str, float | str | int]:
        """Mean (and spread) of the figures that matter, over the seeds."""
        test, test_sd = self.mean([r.test for r in self.runs])
        share, _ = self.mean([r.trainable_share for r in self.runs])
        step, _ = self.mean([r.seconds_per_step for r in self.runs])
        joules, _ = self.mean(self.joules)
        return {
            "arm": self.name,
            "seeds": len(self.runs),
            "test": test,
            "test_sd": test_sd,
            "trainable_share": share,
            "ms_per_step": step * 1e3,
            "joules": joules,
            "energy_method": self.energy_method,
        }


@dataclass(frozen=True)
class Comparison:
    """The arms of one recipe, side by side.

    Attributes:
        recipe: The recipe's name.
        metric: ``"accuracy"`` or ``"mse"``.
        arms: By name.
    """

    recipe: str
    metric: str
    arms: dict[str, Arm]

    def rows(self) -> list[dict[str, float | str | int]]:
        """One summary row per arm."""
        return [arm.summary() for arm in self.arms.values()]

    def metrics(self) -> dict[str, object]:
        """The figures a run record keeps."""
        return {"metric": self.metric, "arms": self.rows()}

    def headline(self) -> Headline:
        """OIALR's test metric minus full rank's (points of accuracy, or MSE difference)."""
        oialr = self.arms["oialr"].summary()
        full = self.arms["full-rank"].summary()
        gap = float(oialr["test"]) - float(full["test"])
        accuracy = self.metric == "accuracy"
        return Headline(
            f"OIALR minus full rank, test {self.metric} ({self.recipe}, "
            f"{float(oialr['trainable_share']):.1%} trainable)",
            gap * 100 if accuracy else gap,
            unit="points" if accuracy else "",
            higher_is_better=accuracy,
        )


def compare(
    recipe: Recipe,
    config: TrainConfig,
    seeds: Sequence[int] = (0,),
    arms: Sequence[str] = ARMS,
    comm: Comm | None = None,
    progress: Callable[[str, int, EpochRecord], None] | None = None,
) -> Comparison:
    """Train every arm on every seed with ``config`` and measure each run's energy.

    Args:
        recipe: Dataset and network.
        config: Shared settings; each arm sets ``full_rank`` and ``schedule.switch``.
        seeds: One run per seed and arm.
        arms: Which of ``ARMS`` to run (``full-rank`` and ``oialr`` for the headline).
        comm: Ranks training together (default: ``get_comm()``).
        progress: Called with the arm, the seed and each epoch's record.
    """
    comm = get_comm() if comm is None else comm
    runs: dict[str, list[TrainResult]] = {name: [] for name in arms}
    joules: dict[str, list[float]] = {name: [] for name in arms}
    method = ""
    for seed in seeds:  # seed by seed, the arms in turn: slow drifts of the machine hit all
        for name in arms:

            def report(record: EpochRecord, name: str = name, seed: int = seed) -> None:
                if progress is not None:
                    progress(name, seed, record)

            with EnergyMeter(comm) as meter:
                runs[name].append(
                    train(recipe, _arm_config(name, config, seed), comm, progress=report)
                )
            joules[name].append(meter.report.total_joules)
            method = meter.report.method
    arms_done = {name: Arm(name, runs[name], joules[name], method) for name in arms}
    return Comparison(recipe.name, runs[arms[0]][0].metric, arms_done)
