"""The embedded default end to end: a small CPU sweep, its analysis and a recommendation.

ResNet18 on scikit-learn's digits at 16 x 16, over 1 and 2 ranks and global batches 32 and 128
(four points, each its own ``mpiexec`` job, three epochs each, target accuracy 0.9); then the
fit of energy against device-hours, the plots, the report and the recommendation. About a
minute or two on two cores. On a machine without RAPL or NVML the energy is codecarbon's
estimate, and says so.
"""

from __future__ import annotations

from pathlib import Path

from energy_scaling.config import DataConfig, SweepConfig, TrainConfig
from shared_hpc import RunRecord, UserError, find_mpiexec, prepare_output_dir

DEMO_SWEEP = SweepConfig(
    name="demo-resnet18-digits",
    ranks=[1, 2],
    global_batch=[32, 128],
    threads=1,
    data=DataConfig(image_size=16),
    train=TrainConfig(
        epochs=3, evals_per_epoch=2, base_lr=0.01, base_batch=32, warmup_epochs=0.3, target=0.9
    ),
)


def run_demo(output: Path) -> RunRecord:
    """Run the demo sweep into ``output/sweep`` and analyse it into ``output``.

    Raises:
        UserError: ``output`` cannot be written, matplotlib or mpiexec is missing, or every
            point failed.
    """
    prepare_output_dir(output)
    from energy_scaling.cli import analyze_folders
    from energy_scaling.runner import run_sweep

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError("the demo needs matplotlib: pip install energy-scaling[demo]") from None
    if find_mpiexec() is None:
        raise UserError("the demo runs 2-rank points and needs mpiexec: pip install mpich")
    folder = output / "sweep"
    result = run_sweep(
        DEMO_SWEEP,
        folder,
        progress=lambda o: print(f"point {o.point.id}: {o.status} {o.message}".rstrip()),
    )
    if len(result.ids("failed")) > len(result.outcomes) - 2:
        raise UserError(
            f"demo points failed: {result.ids('failed')}; see {folder}/points/*/log.txt"
        )
    headline, text = analyze_folders([folder], output)
    print(text)
    print(f"{headline.name}: {headline.value:.4g} {headline.unit}; wrote {output / 'report.md'}")
    return RunRecord.read(output / "results.json")
