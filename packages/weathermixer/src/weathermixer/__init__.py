"""WeatherMixer global weather model with Jigsaw domain × tensor parallelism.

Also: an ERA5-style xarray reader (``weathermixer.data``), a two-layer baroclinic data
generator (``weathermixer.simulate``), WeatherBench 2 scores (``weathermixer.metrics``) and
baselines (``weathermixer.baselines``). Training returns a ``TrainResult``, evaluation a
``Skill``; the command line writes their run records.
"""

from weathermixer.__about__ import __version__
from weathermixer.config import (
    BenchmarkConfig,
    DataConfig,
    EvaluateConfig,
    ModelConfig,
    RunConfig,
    SimulationConfig,
    TrainConfig,
)
from weathermixer.data import Era5Store, ForecastSamples, NormStats, Variables
from weathermixer.evaluate import Skill, TrainedRun, evaluate
from weathermixer.grid import GridSpec, ProcessGrid
from weathermixer.jigsaw import JigsawWeatherMixer
from weathermixer.model import WeatherMixer
from weathermixer.simulate import generate
from weathermixer.train import Trainer, TrainResult, train

__all__ = [
    "BenchmarkConfig",
    "DataConfig",
    "Era5Store",
    "EvaluateConfig",
    "ForecastSamples",
    "GridSpec",
    "JigsawWeatherMixer",
    "ModelConfig",
    "NormStats",
    "ProcessGrid",
    "RunConfig",
    "SimulationConfig",
    "Skill",
    "TrainConfig",
    "TrainResult",
    "TrainedRun",
    "Trainer",
    "Variables",
    "WeatherMixer",
    "__version__",
    "evaluate",
    "generate",
    "train",
]
