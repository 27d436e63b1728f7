"""WeatherMixer global weather model with Jigsaw domain × tensor parallelism.

Also: an ERA5-style xarray reader (:mod:`weathermixer.data`), a shallow-water data generator
(:mod:`weathermixer.simulate`) and WeatherBench 2 scores (:mod:`weathermixer.metrics`).
"""

from weathermixer.__about__ import __version__
from weathermixer.config import ArchConfig, DataConfig, RunConfig, TrainConfig
from weathermixer.data import Era5Store, ForecastSamples, NormStats, Variables
from weathermixer.evaluate import evaluate
from weathermixer.grid import GridSpec, ProcessGrid
from weathermixer.jigsaw import JigsawWeatherMixer
from weathermixer.model import ModelConfig, WeatherMixer
from weathermixer.simulate import SimulationConfig, generate
from weathermixer.train import train

__all__ = [
    "ArchConfig",
    "DataConfig",
    "Era5Store",
    "ForecastSamples",
    "GridSpec",
    "JigsawWeatherMixer",
    "ModelConfig",
    "NormStats",
    "ProcessGrid",
    "RunConfig",
    "SimulationConfig",
    "TrainConfig",
    "Variables",
    "WeatherMixer",
    "__version__",
    "evaluate",
    "generate",
    "train",
]
