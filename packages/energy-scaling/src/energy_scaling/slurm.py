"""A sweep as SLURM batch scripts: one script per point, each asking for exactly its ranks.

Points of one sweep differ in their rank count, so one job array (one resource request for all
tasks) would over-allocate the small points; one script per point asks for ``--ntasks`` equal
to the point's ranks and, on GPUs, ``--gpus-per-task=1``. ``submit.sh`` submits every point
that has no run record yet, so it doubles as the resume after a partly finished sweep.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from energy_scaling.config import SweepConfig
from energy_scaling.runner import SWEEP_FILE, point_folder, prepare_sweep
from energy_scaling.sweep import expand
from shared_hpc import UserError, write_text_atomic

__all__ = ["SlurmOptions", "write_slurm"]


@dataclass(frozen=True)
class SlurmOptions:
    """What every batch script asks SLURM for besides the point's own ranks.

    Attributes:
        time: Wall-time limit per point, ``HH:MM:SS``.
        cpus_per_task: CPU cores per rank.
        partition: SLURM partition (empty: the cluster's default).
        account: Account to charge (empty: the user's default).
        python: Python interpreter on the compute nodes (default: this one).
    """

    time: str = "01:00:00"
    cpus_per_task: int = 8
    partition: str = ""
    account: str = ""
    python: str = ""

    def __post_init__(self) -> None:
        if self.cpus_per_task < 1:
            raise UserError(f"cpus_per_task must be >= 1, got {self.cpus_per_task}")
        parts = self.time.split(":")
        if not (1 <= len(parts) <= 3 and all(p.isdigit() for p in parts)):
            raise UserError(f"time must look like HH:MM:SS, got {self.time!r}")


def write_slurm(
    sweep: SweepConfig, folder: Path, options: SlurmOptions | None = None
) -> list[Path]:
    """Write ``folder/slurm/<point>.sbatch`` for every point and ``folder/slurm/submit.sh``.

    Returns:
        The batch scripts, in the sweep's order (``submit.sh`` last).

    Raises:
        UserError: The sweep is invalid or ``folder`` holds another sweep.
    """
    options = options or SlurmOptions()
    folder = folder.resolve()
    prepare_sweep(sweep, folder)
    gpus = sweep.device in ("cuda", "auto")
    python = options.python or sys.executable
    scripts = []
    for point in expand(sweep):
        target = point_folder(folder, point)
        lines = [
            "#!/bin/bash",
            f"#SBATCH --job-name={sweep.name}-{point.id}",
            f"#SBATCH --ntasks={point.ranks}",
            f"#SBATCH --cpus-per-task={options.cpus_per_task}",
            f"#SBATCH --time={options.time}",
            f"#SBATCH --output={target}/slurm-%j.out",
        ]
        if gpus:
            lines.append("#SBATCH --gpus-per-task=1")
        if options.partition:
            lines.append(f"#SBATCH --partition={options.partition}")
        if options.account:
            lines.append(f"#SBATCH --account={options.account}")
        command = [
            python, "-m", "energy_scaling", "point", "--sweep", str(folder / SWEEP_FILE),
            "--point", point.id, "--output", str(target),
        ]  # fmt: skip
        lines += [
            "set -euo pipefail",
            f"mkdir -p {shlex.quote(str(target))}",
            "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}",
            "srun " + shlex.join(command),
        ]
        script = folder / "slurm" / f"{point.id}.sbatch"
        script.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(script, "\n".join(lines) + "\n")
        scripts.append(script)
    submit = [
        "#!/bin/bash",
        "# Submit every point of the sweep that has no results.json yet (rerun to resume).",
        "set -euo pipefail",
        f"cd {shlex.quote(str(folder))}",
    ]
    for point, script in zip(expand(sweep), scripts, strict=True):
        record = point_folder(folder, point) / "results.json"
        submit.append(f"[ -f {shlex.quote(str(record))} ] || sbatch {shlex.quote(str(script))}")
    submit_path = folder / "slurm" / "submit.sh"
    write_text_atomic(submit_path, "\n".join(submit) + "\n")
    submit_path.chmod(submit_path.stat().st_mode | 0o110)
    return [*scripts, submit_path]
