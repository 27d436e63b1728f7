"""The Markdown report of an analysed sweep: points, fits, batch limit, scaling, choice."""

from __future__ import annotations

from energy_scaling.analysis import Analysis
from energy_scaling.recommend import Recommendation
from shared_hpc.bench import markdown_table

__all__ = ["markdown_report"]


def _num(value: object, spec: str = ".4g") -> str:
    return "–" if value is None else format(value, spec)


def markdown_report(analysis: Analysis, recommendation: Recommendation, title: str) -> str:
    """The whole report as Markdown (figures referenced by their file names)."""
    points = markdown_table(
        ["point", "ranks", "global", "local", "acc.", "lr", "final metric", "time [s]",
         "device-h", "energy [Wh]", "method", "time to target [s]", "energy to target [Wh]",
         "samples/s"],
        [
            [p["point"], p["ranks"], p["global_batch"], p["local_batch"], p["accumulation"],
             _num(p["lr"], ".3g"), _num(p["final_metric"]), _num(p["wall_time_s"], ".1f"),
             _num(p["device_hours"], ".3g"), _num(p["energy_j"] / 3600, ".3g"),
             "+".join(sorted(set(p["energy_methods"].values()))),
             _num(p["time_to_target_s"], ".1f"),
             _num(None if p["energy_to_target_j"] is None else p["energy_to_target_j"] / 3600,
                  ".3g"),
             _num(p["throughput_samples_per_s"], ".1f")]
            for p in analysis.points
        ],
    )  # fmt: skip
    fits = markdown_table(
        ["model", "hardware", "k [W/device]", f"{analysis.fits[0].level:.0%} CI", "intercept [Wh]",
         "R²", "points", "energy"],
        [
            [f.model, f.hardware, f"{f.watts_per_device:.4g}",
             f"{f.k_ci[0] * 1e3:.4g} .. {f.k_ci[1] * 1e3:.4g}", f"{f.intercept * 1e3:.3g}",
             f"{f.r2:.4f}", f.points,
             ("measured: " if f.measured else "estimated: ") + "+".join(f.methods)]
            for f in analysis.fits
        ],
    )  # fmt: skip
    rate_rows = [
        [m, h, f"{r.coefficients['samples']:.4g}", f"{r.coefficients['updates']:.4g}",
         f"{r.r2:.3f}", r.points]
        for (m, h), r in analysis.rates.items()
        if r is not None
    ]  # fmt: skip
    rates = (
        markdown_table(
            [
                "model",
                "hardware",
                "kWh/dh per M samples/dh",
                "kWh/dh per M updates/dh",
                "R²",
                "points",
            ],
            rate_rows,
        )
        if rate_rows
        else "Too few points (fewer than four per model and hardware) for this regression.\n"
    )
    limits = "\n".join(
        f"- {m}: best {lim.best:.4g}; critical global batch {lim.critical}"
        + (f"; degraded beyond it: {lim.degraded}" if lim.degraded else "; no degradation seen")
        + f" (tolerance {lim.tolerance:g})"
        for m, lim in analysis.limits.items()
    )
    scaling = markdown_table(
        ["model", "global batch", "ranks", "samples/s", "speed-up", "efficiency"],
        [
            [m, r["global_batch"], r["ranks"], f"{r['throughput']:.1f}", f"{r['speedup']:.2f}",
             f"{r['efficiency']:.0%}"]
            for m, rows in analysis.scaling.items()
            for r in rows
        ],
    )  # fmt: skip
    return (
        f"# {title}\n\n## Points\n\n{points}\n"
        f"## Energy against device-hours\n\n{fits}\n![energy](energy.png)\n\n"
        f"## Energy per device-hour against samples and updates per device-hour\n\n{rates}\n"
        f"## Metric against global batch\n\n{limits}\n\n![batch](batch.png)\n\n"
        f"## Scaling\n\n{scaling}\n![scaling](scaling.png)\n\n"
        f"## Recommendation\n\n```\n{recommendation.text()}\n```\n\n![pareto](pareto.png)\n"
    )
