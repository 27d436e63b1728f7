"""The embedded default end to end: OIALR, full rank and a fixed-delay switch on the digits MLP.

About half a minute on two cores: the ``mlp-digits`` recipe trained by each arm with three
seeds, each run measured, then the table, the plot and the run record (``oialr compare``).
"""

from __future__ import annotations

from pathlib import Path

from oialr.cli import run_comparison
from oialr.config import TrainConfig
from oialr.recipes import get_recipe
from shared_hpc import load_config

DEMO_SEEDS = (0, 1, 2)


def run_demo(output: Path) -> int:
    """Compare the arms on ``mlp-digits`` into ``output`` (results.json, comparison.md/.png)."""
    config = load_config(TrainConfig, get_recipe("mlp-digits").settings)
    return run_comparison("mlp-digits", config, DEMO_SEEDS, output)
