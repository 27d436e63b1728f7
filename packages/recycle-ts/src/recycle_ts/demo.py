"""The embedded default end to end: ReCycle on Taylor's half-hourly demand, beside every
baseline, recorded and plotted (seconds on a laptop)."""

from __future__ import annotations

from pathlib import Path

from recycle_ts.__about__ import __version__
from recycle_ts.config import ForecastConfig
from recycle_ts.data import EMBEDDED, to_cycles
from recycle_ts.training import fit
from shared_hpc import (
    Comm,
    Recorder,
    RunRecord,
    get_comm,
    prepare_output_dir,
    rank0_print,
    set_torch_threads,
)


def run_demo(output: Path, comm: Comm | None = None) -> RunRecord:
    """Train ReCycle on Taylor's data into ``output``: results.json and forecast.png.

    Raises:
        UserError: ``output`` cannot be written, or pmdarima or matplotlib is missing.
    """
    from recycle_ts.plots import plot_forecast

    comm = get_comm() if comm is None else comm
    prepare_output_dir(output)
    loader, settings = EMBEDDED["taylor"]
    config = ForecastConfig(date_column="date", target=["load"], **settings)
    series = to_cycles(loader(), "date", ["load"], cycle=config.cycle_length)
    set_torch_threads(comm)
    with Recorder("recycle-ts", __version__, comm) as run:
        result = fit(series, config, {"name": "taylor"})
    if run.is_writer:
        plot_forecast(result.test_forecasts, "load", output / "forecast.png")
    record = run.write(
        output / "results.json",
        config=result.forecaster.config,
        metrics=result.metrics(),
        headline=result.headline(),
        artifacts=["forecast.png"],
    )
    rank0_print(f"{result.headline().name}: {result.test['recycle']['mae']:.4g}; "
                f"energy: {run.report}", comm=comm)  # fmt: skip
    return record
