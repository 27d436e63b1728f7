"""ReCycle: residual cyclic transformers for load forecasting.

Heavy modules (torch, statsmodels) load when a name that needs them is first used.
"""

from __future__ import annotations

from recycle_ts.__about__ import __version__
from shared_hpc.lazy import lazy_exports

_HOMES = {
    "ForecastConfig": "recycle_ts.config",
    "CycleSeries": "recycle_ts.data",
    "detect_cycle": "recycle_ts.data",
    "read_csv": "recycle_ts.data",
    "to_cycles": "recycle_ts.data",
    "profile_forecast": "recycle_ts.baselines",
    "Forecaster": "recycle_ts.forecaster",
    "CheckpointError": "recycle_ts.forecaster",
    "FitResult": "recycle_ts.training",
    "fit": "recycle_ts.training",
    "compare": "recycle_ts.comparison",
}

__all__ = ["__version__", *sorted(_HOMES)]

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
