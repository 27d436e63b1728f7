"""Energy cost of scaling out data-parallel training: sweep, fit, recommend.

Every name is imported when first used, so ``import energy_scaling`` does not load torch.
"""

from energy_scaling.__about__ import __version__
from shared_hpc.lazy import lazy_exports

_HOMES = {
    "DataConfig": "energy_scaling.config",
    "ModelConfig": "energy_scaling.config",
    "SweepConfig": "energy_scaling.config",
    "TrainConfig": "energy_scaling.config",
    "Point": "energy_scaling.sweep",
    "expand": "energy_scaling.sweep",
    "load_samples": "energy_scaling.data",
    "PointResult": "energy_scaling.training",
    "train_point": "energy_scaling.training",
    "AFNO": "energy_scaling.afno",
    "run_sweep": "energy_scaling.runner",
    "write_slurm": "energy_scaling.slurm",
    "analyze": "energy_scaling.analysis",
    "fit_energy": "energy_scaling.analysis",
    "Recommendation": "energy_scaling.recommend",
    "recommend_run": "energy_scaling.recommend",
}

__all__ = ["__version__", *sorted(_HOMES)]

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
