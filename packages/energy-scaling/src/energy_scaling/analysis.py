"""What a finished sweep says: energy against device-hours, its slope, scaling and batch limits.

The paper's findings, each computed from the point records and fitted per model and hardware:

- energy ≈ k · device-hours (+ intercept): ordinary least squares with R² and confidence
  intervals from Student's t (``fit_energy``);
- k itself depends on how busy a device-hour is: each point's own energy per device-hour
  regressed on its samples and gradient updates per device-hour (``fit_rates``);
- accuracy degrades above a critical global batch (``critical_batch``);
- speed-up and parallel efficiency against the rank count (``scaling``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from shared_hpc import RunRecord, UserError

__all__ = [
    "Analysis",
    "EnergyFit",
    "PointRecord",
    "RateFit",
    "analyze",
    "critical_batch",
    "fit_energy",
    "fit_rates",
    "load_points",
    "pareto_front",
    "scaling",
]

KWH = 3.6e6


@dataclass(frozen=True)
class PointRecord:
    """One finished point as the analysis sees it (the ``metrics`` of its run record).

    Attributes:
        model: Model name.
        hardware: Hardware label (fits are per model and hardware).
        metrics: The point's metrics (``training.PointResult.metrics``).
    """

    model: str
    hardware: str
    metrics: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.metrics[key]

    @property
    def energy_kwh(self) -> float:
        return float(self.metrics["energy_j"]) / KWH


def load_points(folders: Iterable[Path]) -> list[PointRecord]:
    """The finished points of one or more sweep folders (failed points have no record).

    Raises:
        UserError: A folder is not a sweep folder or holds no finished point.
    """
    from energy_scaling.runner import POINTS_DIR, SWEEP_FILE, load_sweep

    points = []
    for folder in folders:
        if not (folder / SWEEP_FILE).is_file():
            raise UserError(f"{folder} is not a sweep folder (it has no {SWEEP_FILE})")
        sweep = load_sweep(folder / SWEEP_FILE)
        found = 0
        for path in sorted((folder / POINTS_DIR).glob("*/results.json")):
            try:
                record = RunRecord.read(path)
            except ValueError as err:
                raise UserError(str(err)) from None
            env = record.environment
            device = record.metrics.get("device")
            hardware = sweep.hardware or (
                env.get("gpu_model") if device == "gpu" else env.get("cpu_model")
            )
            points.append(PointRecord(sweep.model.name, str(hardware), record.metrics))
            found += 1
        if not found:
            raise UserError(f"{folder} holds no finished point yet; run the sweep first")
    return points


def _ols(x: np.ndarray, y: np.ndarray, level: float) -> dict[str, Any]:
    """Least squares ``y = x @ beta``: coefficients, their CIs, R², residual variance."""
    n, p = x.shape
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ beta
    dof = n - p
    ss_res = float(residual @ residual)
    centred = y - y.mean()
    ss_tot = float(centred @ centred)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    if dof > 0:
        sigma2 = ss_res / dof
        cov = sigma2 * np.linalg.pinv(x.T @ x)
        half = stats.t.ppf(0.5 + level / 2, dof) * np.sqrt(np.diag(cov))
        ci = [(float(b - h), float(b + h)) for b, h in zip(beta, half, strict=True)]
    else:
        sigma2, cov, ci = float("nan"), None, [(float("nan"), float("nan"))] * p
    return {"beta": beta, "ci": ci, "r2": r2, "sigma2": sigma2, "cov": cov, "dof": dof}


@dataclass(frozen=True)
class EnergyFit:
    """energy [kWh] = k · device-hours + intercept, fitted over the points of one group.

    Attributes:
        model: Model name.
        hardware: Hardware label.
        k: Slope in kWh per device-hour (= mean power per device in kW).
        k_ci: Confidence interval of ``k``.
        intercept: Energy at zero device-hours in kWh (0 without intercept).
        intercept_ci: Its confidence interval.
        r2: Coefficient of determination.
        points: Points fitted.
        level: Confidence level of the intervals.
        measured: Every point's energy comes from hardware counters.
        methods: The energy methods behind the points.
        residual_var: Residual variance (kWh²), for prediction intervals.
        cov: Covariance of (k, intercept).
    """

    model: str
    hardware: str
    k: float
    k_ci: tuple[float, float]
    intercept: float
    intercept_ci: tuple[float, float]
    r2: float
    points: int
    level: float
    measured: bool
    methods: tuple[str, ...]
    residual_var: float = float("nan")
    cov: tuple[tuple[float, float], tuple[float, float]] | None = None

    @property
    def watts_per_device(self) -> float:
        return self.k * 1000.0

    def predict(self, device_hours: float) -> tuple[float, float, float]:
        """Energy in kWh at ``device_hours``: estimate and prediction interval (``nan`` bounds
        when the fit has no residual degrees of freedom; the lower bound stops at 0, since no run
        uses negative energy, where a few noisy points would give a wide interval)."""
        value = self.k * device_hours + self.intercept
        if self.cov is None or not math.isfinite(self.residual_var):
            return value, float("nan"), float("nan")
        x = np.array([device_hours, 1.0])
        var = float(x @ np.array(self.cov) @ x) + self.residual_var
        dof = self.points - 2
        half = float(stats.t.ppf(0.5 + self.level / 2, dof)) * math.sqrt(max(var, 0.0))
        return value, max(value - half, 0.0), value + half

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "hardware": self.hardware,
            "k_kwh_per_device_hour": self.k,
            "k_ci": list(self.k_ci),
            "watts_per_device": self.watts_per_device,
            "intercept_kwh": self.intercept,
            "intercept_ci": list(self.intercept_ci),
            "r2": self.r2,
            "points": self.points,
            "level": self.level,
            "measured": self.measured,
            "methods": list(self.methods),
        }


def _methods(points: Sequence[PointRecord]) -> tuple[tuple[str, ...], bool]:
    methods = sorted({m for p in points for m in p["energy_methods"].values()})
    return tuple(methods), all(bool(p["energy_measured"]) for p in points)


def fit_energy(
    points: Sequence[PointRecord], *, intercept: bool = True, level: float = 0.95
) -> EnergyFit:
    """Fit energy against device-hours over ``points`` (one model on one hardware).

    Raises:
        UserError: Fewer points than parameters, or all at the same device-hours.
    """
    need = 2 if intercept else 1
    if len(points) < need:
        raise UserError(f"fitting energy needs at least {need} finished points, got {len(points)}")
    hours = np.array([float(p["device_hours"]) for p in points])
    energy = np.array([p.energy_kwh for p in points])
    if intercept and np.ptp(hours) == 0:
        raise UserError("every point used the same device-hours; the slope is undetermined")
    x = np.column_stack([hours, np.ones_like(hours)]) if intercept else hours[:, None]
    ols = _ols(x, energy, level)
    methods, measured = _methods(points)
    cov = None
    if ols["cov"] is not None and intercept:
        c = ols["cov"]
        cov = ((float(c[0, 0]), float(c[0, 1])), (float(c[1, 0]), float(c[1, 1])))
    return EnergyFit(
        model=points[0].model,
        hardware=points[0].hardware,
        k=float(ols["beta"][0]),
        k_ci=ols["ci"][0],
        intercept=float(ols["beta"][1]) if intercept else 0.0,
        intercept_ci=ols["ci"][1] if intercept else (0.0, 0.0),
        r2=ols["r2"],
        points=len(points),
        level=level,
        measured=measured,
        methods=methods,
        residual_var=ols["sigma2"],
        cov=cov,
    )


@dataclass(frozen=True)
class RateFit:
    """Each point's energy per device-hour against how busy that device-hour was.

    ``k_i = a + b_s · samples/device-hour + b_u · updates/device-hour``; with the rates in
    millions, ``b_s`` is kWh per device-hour per million samples per device-hour.

    Attributes:
        coefficients: ``intercept``, ``samples`` and ``updates`` (per million per device-hour).
        ci: Their confidence intervals.
        r2: Coefficient of determination.
        points: Points fitted.
    """

    coefficients: dict[str, float]
    ci: dict[str, tuple[float, float]]
    r2: float
    points: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "coefficients": self.coefficients,
            "ci": {k: list(v) for k, v in self.ci.items()},
            "r2": self.r2,
            "points": self.points,
        }


def fit_rates(points: Sequence[PointRecord], level: float = 0.95) -> RateFit | None:
    """Regress energy per device-hour on samples and updates per device-hour (``None`` with
    fewer than four points: no residual degrees of freedom)."""
    if len(points) < 4:
        return None
    k = np.array([p.energy_kwh / float(p["device_hours"]) for p in points])
    samples = np.array([float(p["samples_per_device_hour"]) for p in points]) / 1e6
    updates = np.array([float(p["updates_per_device_hour"]) for p in points]) / 1e6
    x = np.column_stack([np.ones_like(k), samples, updates])
    if np.linalg.matrix_rank(x) < 3:
        return None
    ols = _ols(x, k, level)
    names = ("intercept", "samples", "updates")
    return RateFit(
        {n: float(b) for n, b in zip(names, ols["beta"], strict=True)},
        dict(zip(names, ols["ci"], strict=True)),
        ols["r2"],
        len(points),
    )


@dataclass(frozen=True)
class BatchLimit:
    """Where the validation metric degrades with the global batch.

    Attributes:
        by_batch: Best final metric reached at each global batch (over ranks, local batches).
        best: The best of them.
        critical: The largest global batch from the best one up to which every batch stays
            within ``tolerance`` of ``best``.
        degraded: Global batches above ``critical``.
        tolerance: Allowed distance from the best, in the metric's units.
    """

    by_batch: dict[int, float]
    best: float
    critical: int
    degraded: list[int]
    tolerance: float


def critical_batch(points: Sequence[PointRecord], tolerance: float = 0.01) -> BatchLimit:
    """The critical global batch of ``points`` (one model on one data set)."""
    higher = bool(points[0]["higher_is_better"])
    pick = max if higher else min
    by_batch: dict[int, float] = {}
    for p in points:
        g, value = int(p["global_batch"]), float(p["final_metric"])
        by_batch[g] = pick(by_batch.get(g, value), value)
    by_batch = dict(sorted(by_batch.items()))
    best = pick(by_batch.values())
    best_batch = next(g for g, v in by_batch.items() if v == best)
    critical, worse = best_batch, []
    for g, value in by_batch.items():
        if g <= best_batch:
            continue
        if worse or abs(value - best) > tolerance:
            worse.append(g)
        else:
            critical = g
    return BatchLimit(by_batch, best, critical, worse, tolerance)


def scaling(points: Sequence[PointRecord]) -> list[dict[str, float]]:
    """Speed-up and efficiency against ranks at each global batch (throughput relative to the
    fewest ranks measured at that batch, best local batch)."""
    rows = []
    for g in sorted({int(p["global_batch"]) for p in points}):
        best: dict[int, float] = {}
        for p in points:
            if int(p["global_batch"]) == g and p["throughput_samples_per_s"]:
                r = int(p["ranks"])
                best[r] = max(best.get(r, 0.0), float(p["throughput_samples_per_s"]))
        if not best:
            continue
        base_r = min(best)
        for r in sorted(best):
            speedup = best[r] / best[base_r]
            rows.append(
                {
                    "global_batch": g,
                    "ranks": r,
                    "throughput": best[r],
                    "speedup": speedup,
                    "efficiency": speedup * base_r / r,
                }
            )
    return rows


def pareto_front(pairs: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the pairs (time, energy) that no other pair beats in both, fastest first."""
    order = sorted(range(len(pairs)), key=lambda i: (pairs[i][0], pairs[i][1]))
    front, lowest = [], math.inf
    for i in order:
        if pairs[i][1] < lowest:
            front.append(i)
            lowest = pairs[i][1]
    return front


@dataclass
class Analysis:
    """The analysis of one or more sweeps.

    Attributes:
        points: Every finished point.
        fits: Energy against device-hours per (model, hardware).
        rates: k against samples and updates per device-hour per (model, hardware), if
            enough points.
        limits: Critical global batch per model.
        scaling: Speed-up and efficiency rows per model.
    """

    points: list[PointRecord]
    fits: list[EnergyFit]
    rates: dict[tuple[str, str], RateFit | None] = field(default_factory=dict)
    limits: dict[str, BatchLimit] = field(default_factory=dict)
    scaling: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def fit_for(self, model: str, hardware: str) -> EnergyFit | None:
        return next((f for f in self.fits if (f.model, f.hardware) == (model, hardware)), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fits": [f.to_dict() for f in self.fits],
            "rates": [
                {"model": m, "hardware": h, **(r.to_dict() if r else {"fit": None})}
                for (m, h), r in self.rates.items()
            ],
            "critical_batch": {
                m: {
                    "critical": lim.critical,
                    "best": lim.best,
                    "degraded": lim.degraded,
                    "tolerance": lim.tolerance,
                    "by_batch": {str(g): v for g, v in lim.by_batch.items()},
                }
                for m, lim in self.limits.items()
            },
            "scaling": self.scaling,
        }


def analyze(points: Sequence[PointRecord], *, tolerance: float = 0.01) -> Analysis:
    """Fit and summarise the points, grouped by model and hardware.

    Raises:
        UserError: A group has too few points for a fit.
    """
    if not points:
        raise UserError("no finished points to analyse")
    groups: dict[tuple[str, str], list[PointRecord]] = {}
    for p in points:
        groups.setdefault((p.model, p.hardware), []).append(p)
    analysis = Analysis(list(points), [fit_energy(g) for g in groups.values()])
    analysis.rates = {key: fit_rates(g) for key, g in groups.items()}
    for model in sorted({p.model for p in points}):
        mine = [p for p in points if p.model == model]
        analysis.limits[model] = critical_batch(mine, tolerance)
        analysis.scaling[model] = scaling(mine)
    return analysis
