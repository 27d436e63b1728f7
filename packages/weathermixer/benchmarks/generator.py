"""The generated two-layer atmosphere: time per simulated year, how different the 500 and
850 hPa levels are, how fast the weather changes and how fast a small perturbation grows.
Writes the `generator` section of BENCHMARKS.md.

    python benchmarks/generator.py          # about a minute on one idle core
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # one core, before numpy starts its pools

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from common import RESULTS, write_section  # noqa: E402
from weathermixer.data import Era5Store, latitude_weights  # noqa: E402
from weathermixer.metrics import Climatology  # noqa: E402
from weathermixer.simulate import SimulationConfig, TwoLayerAtmosphere, generate  # noqa: E402

from shared_hpc import write_json_atomic  # noqa: E402
from shared_hpc.bench import machine_line, markdown_table  # noqa: E402


def anomaly_correlations(store: Era5Store) -> dict[str, float]:
    """Area-weighted correlation of the 500 and 850 hPa anomalies (from a harmonic
    climatology of the same year: mean, annual and diurnal terms) per variable."""
    times = np.arange(store.times.size)
    clim = Climatology.fit(store, times)
    names = store.variables.state_channels
    w = latitude_weights(store.latitude)[:, None]
    sums: dict[str, np.ndarray] = {v: np.zeros(3) for v in store.variables.pressure}
    for t in times:
        anomaly = store.read(int(t)).astype(np.float64) - clim.at(store.times[t : t + 1])[0]
        for v in sums:
            a, b = anomaly[names.index(f"{v}500")], anomaly[names.index(f"{v}850")]
            sums[v] += [(w * a * b).sum(), (w * a * a).sum(), (w * b * b).sum()]
    return {v: float(s[0] / np.sqrt(s[1] * s[2])) for v, s in sums.items()}


def perturbation_growth(days: float) -> tuple[float, float]:
    """Energy growth of the difference of two runs from radiative equilibrium whose
    perturbations differ by 1e-6 of the shear, and its e-folding time in days (after the
    first two days, in which the smallest scales decay)."""
    when = np.datetime64("2000-01-01T00:00", "s")
    runs = [TwoLayerAtmosphere(SimulationConfig(nlat=32, seed=s)) for s in (1, 2)]
    states = [[m.initial_state(when, amplitude=1e-6)] * 2 for m in runs]
    step = np.timedelta64(int(runs[0].dt), "s")
    energy = []
    for k in range(round(days * 86400 / runs[0].dt)):
        for model, state in zip(runs, states, strict=True):
            state[:] = model.step(state[0], state[1], when)
        when = when + step
        if (k + 1) % round(86400 / runs[0].dt) == 0:
            energy.append(runs[0].energy(states[0][1][0] - states[1][1][0]))
    growth = energy[-1] / energy[1]
    return growth, (len(energy) - 2) / np.log(growth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "wm-gen")
    args = parser.parse_args()
    path = args.work / "year.nc"
    cfg = SimulationConfig(nlat=32, days=365.0, spinup_days=60.0, seed=0)
    began = time.perf_counter()
    generate(path, cfg)
    seconds = time.perf_counter() - began
    store = Era5Store(path)
    corr = anomaly_correlations(store)
    z500 = np.stack([store.read(t, channels=[0])[0] for t in range(store.times.size)])
    change = float(np.sqrt((np.diff(z500, axis=0) ** 2).mean()))
    growth, efold = perturbation_growth(12.0)
    result = {
        "seconds_per_year": seconds * 365.0 / (cfg.days + cfg.spinup_days),
        "seconds": seconds,
        "anomaly_correlation_500_850": corr,
        "z500_6h_change_rms": change,
        "perturbation_growth_12d": growth,
        "efolding_days": efold,
    }
    write_json_atomic(RESULTS / "generator.json", result)
    rows = [[v, f"{corr[v]:.3f}"] for v in corr]
    text = (
        "## The generated atmosphere\n\n"
        "`benchmarks/generator.py`: one year of seed 0 at 32 × 64 (T21), 6-hourly, after 60 "
        "days of spin-up, numpy on one thread. Anomaly correlation between the 500 and 850 hPa "
        "fields (anomalies from a harmonic climatology of the same year: mean, annual and "
        "diurnal terms; area-weighted over all times and points). The one-layer generator of "
        "0.1 gave 1.0000 for every variable (issue 19).\n\n"
        + markdown_table(["variable", "corr(500 hPa, 850 hPa)"], rows)
        + f"\nRMS change of z500 in 6 h: {change:.0f} m²/s². Two runs from radiative "
        f"equilibrium whose perturbations differ by 10⁻⁶ of the shear: their difference grows "
        f"by {growth:.2g} in energy from day 1 to day 12 (e-folding {efold:.2f} days; "
        f"baroclinic instability). The simulated year with its spin-up took {seconds:.0f} s "
        f"({result['seconds_per_year']:.0f} s per simulated year, writing included). Machine: "
        f"{machine_line()}; the 2 cores were shared with other jobs, so the time is noisy.\n"
    )
    write_section("generator", text)


if __name__ == "__main__":
    main()
