"""Write a new package under packages/<name>, on the skeleton that CONTRIBUTING.md describes.

    python tools/new_package.py my-method --paper "arXiv:0000.00000 My Method" \
        --summary "One line on what it does"

The skeleton is a small working package, not a stub: a data-parallel least-squares fit over MPI
stands in for the method (every rank fits its shard, gradients are summed with ``Allreduce``),
with its config (dataclass, validated, one flag per field), its typed result, a ``train`` and a
``demo`` command that measure and record through ``shared_hpc.Recorder``, a bad-input test, an
MPI test and a benchmark against NumPy's least squares. It installs, lints clean and passes its
tests; then replace the stand-in with the real method, module by module.
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.24"]
build-backend = "hatchling.build"

[project]
name = "{name}"
dynamic = ["version"]
description = "{summary}"
readme = "README.md"
license = "BSD-3-Clause"
license-files = ["LICENSE"]
requires-python = ">=3.10"
dependencies = [
    "shared-hpc>=0.3",
    "numpy>=1.24",
    "mpi4py>=3.1",
]

[project.optional-dependencies]
demo = ["matplotlib>=3.7"]
test = ["pytest>=8", "pytest-timeout>=2", "{name}[demo]"]

[project.scripts]
{name} = "{module}.cli:main"

[project.entry-points."shared_hpc.demos"]
{name} = "{module}.cli:main"

[tool.hatch.version]
path = "src/{module}/__about__.py"

[tool.hatch.build.targets.wheel]
packages = ["src/{module}"]
"""

README = """\
# {name}

{summary}. Based on {paper}.

The method is not in yet: a data-parallel least-squares fit stands in for it, so that the
command line, the run record, the MPI path and the tests work from the first commit.

## Install

```bash
pip install ./shared "./packages/{name}[demo]"
```

## Quickstart

```bash
{name} demo --output results/                  # the embedded default, about a second
{name} train --output run/ --steps 500 --lr 0.05
mpiexec -n 4 {name} train --output run/         # data parallel over 4 ranks
```

```python
from {module} import FitConfig, fit

result = fit(FitConfig(steps=500))
print(result.final_loss)
```

## Failures: crash, full disk, a second run

- A failure on one rank ends the whole MPI job within seconds: that rank prints its error with
  its rank number and the job is aborted; no rank waits for ever.
- `results.json` is written atomically: after a crash it is either complete or absent.
- A full disk or a read-only folder: one line naming what was saved, exit code 1; an unusable
  `--output` is refused before any work (exit code 2).
- A second run on the same `--output` folder while one runs is refused with one line.
"""

CHANGELOG = """\
# Changelog of {name}

## 0.1.0 (unreleased)

- First skeleton, written by `tools/new_package.py`.
"""

BENCHMARKS = """\
# Benchmarks of {name}

Written by `benchmarks/run.py` (`nox -s "bench(name={name})"`); do not edit by hand.

<!-- fit:start -->
Not measured yet.
<!-- fit:end -->
"""

ABOUT = '''\
"""Version of the {name} distribution (read by hatchling and by run records)."""

__version__ = "0.1.0"
'''

INIT = '''\
"""{summary}."""

from {module}.__about__ import __version__
from {module}.config import FitConfig
from {module}.fit import FitResult, fit

__all__ = ["FitConfig", "FitResult", "__version__", "fit"]
'''

MAIN = '''\
"""``python -m {module}`` is the ``{name}`` command."""

from {module}.cli import main

raise SystemExit(main())
'''

CONFIG = '''\
"""Settings of {name}: dataclasses, validated when built, loaded from TOML and flags."""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared_hpc import UserError


@dataclass(frozen=True)
class FitConfig:
    """How the stand-in method fits (replace with the method's own settings).

    Attributes:
        features: Inputs of the linear model.
        samples: Samples of the generated problem, shared out over the ranks.
        noise: Standard deviation of the noise on the targets.
        steps: Gradient-descent steps.
        lr: Learning rate.
        seed: Seed of the generated problem.
    """

    features: int = 8
    samples: int = 4096
    noise: float = 0.1
    steps: int = 200
    lr: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("features", "samples", "steps"):
            if getattr(self, name) < 1:
                raise UserError(f"{{name}} must be >= 1, got {{getattr(self, name)}}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise UserError(f"lr must be a positive number, got {{self.lr}}")
        if not self.noise >= 0:
            raise UserError(f"noise must be >= 0, got {{self.noise}}")
'''

FIT = '''\
"""The stand-in method: least squares by data-parallel gradient descent over MPI ranks.

Each rank holds its shard of a generated regression problem; every step the ranks add their
gradients with ``Allreduce``, so all of them take the same step and end with the same weights,
whatever the number of ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared_hpc import Comm, Headline, get_comm
from {module}.config import FitConfig


@dataclass(frozen=True)
class FitResult:
    """What a fit produced.

    Attributes:
        weights: The fitted weights.
        losses: Mean squared error over all samples before each step.
        final_loss: Mean squared error after the last step.
        ranks: Ranks that took part.
    """

    weights: np.ndarray
    losses: list[float]
    final_loss: float
    ranks: int

    def metrics(self) -> dict[str, float | int]:
        """The figures a run record keeps."""
        return {{
            "final_loss": self.final_loss,
            "initial_loss": self.losses[0],
            "ranks": self.ranks,
        }}

    def headline(self) -> Headline:
        """The run's one figure: the final mean squared error."""
        return Headline("final mean squared error", self.final_loss, higher_is_better=False)


def problem(config: FitConfig, rank: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """This rank's shard of the generated regression problem (the same problem for any size)."""
    rng = np.random.default_rng(config.seed)
    x = rng.normal(size=(config.samples, config.features))
    y = x @ rng.normal(size=config.features) + config.noise * rng.normal(size=config.samples)
    return x[rank::size], y[rank::size]


def fit(config: FitConfig, comm: Comm | None = None) -> FitResult:
    """Fit the linear model by gradient descent, data parallel over ``comm``.

    Args:
        config: The settings.
        comm: Communicator of the ranks that share the data (default: ``get_comm()``).

    Returns:
        The weights and the loss curve, the same on every rank.
    """
    comm = get_comm() if comm is None else comm
    x, y = problem(config, comm.Get_rank(), comm.Get_size())
    weights = np.zeros(config.features)
    losses = []
    for _ in range(config.steps + 1):
        residual = x @ weights - y
        local = np.concatenate([x.T @ residual, [residual @ residual]])
        total = np.empty_like(local)
        comm.Allreduce(local, total)
        losses.append(float(total[-1] / config.samples))
        weights -= config.lr * 2 * total[:-1] / config.samples
    return FitResult(weights, losses[:-1], losses[-1], comm.Get_size())
'''

DEMO = '''\
"""The embedded default end to end: fit, measure, record, plot (about a second on a laptop)."""

from __future__ import annotations

from pathlib import Path

from shared_hpc import (
    Comm,
    Recorder,
    RunRecord,
    UserError,
    atomic_path,
    get_comm,
    prepare_output_dir,
    rank0_print,
)
from {module}.__about__ import __version__
from {module}.config import FitConfig
from {module}.fit import fit


def run_demo(output: Path, comm: Comm | None = None) -> RunRecord:
    """Fit the default problem into ``output``: results.json and loss.png (rank 0 writes).

    Raises:
        UserError: ``output`` cannot be written, or matplotlib is missing.
    """
    comm = get_comm() if comm is None else comm
    prepare_output_dir(output)
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError("the demo needs matplotlib: pip install {name}[demo]") from None
    config = FitConfig()
    with Recorder("{name}", __version__, comm) as run:
        result = fit(config, comm)
    if run.is_writer:
        figure = Figure(figsize=(5, 3.5), layout="constrained")
        axes = figure.subplots()
        axes.semilogy(result.losses)
        axes.set_xlabel("step")
        axes.set_ylabel("mean squared error")
        with atomic_path(output / "loss.png") as tmp:
            figure.savefig(tmp, format="png", dpi=100)
    record = run.write(
        output / "results.json",
        config=config,
        metrics=result.metrics(),
        headline=result.headline(),
        artifacts=["loss.png"],
    )
    rank0_print(f"final loss {{result.final_loss:.4g}}; energy: {{run.report}}", comm=comm)
    return record
'''

CLI = '''\
"""Command line of {name}: the parser and one short handler per command."""

from __future__ import annotations

import argparse
from pathlib import Path

from shared_hpc import (
    Recorder,
    add_config_flags,
    config_from_args,
    get_comm,
    lock_folder,
    rank0_print,
    run_main,
)
from {module}.__about__ import __version__
from {module}.config import FitConfig


def _train(args: argparse.Namespace) -> int:
    from {module}.fit import fit

    config = config_from_args(args)
    comm = get_comm()
    with lock_folder(args.output, comm):  # one run per folder
        with Recorder("{name}", __version__, comm) as run:
            result = fit(config, comm)
        run.write(
            args.output / "results.json",
            config=config,
            metrics=result.metrics(),
            headline=result.headline(),
        )
    rank0_print(f"final loss {{result.final_loss:.4g}}; wrote {{args.output / 'results.json'}}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from {module}.demo import run_demo

    run_demo(args.output)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="{name}", description="{summary}.")
    parser.add_argument("--version", action="version", version=f"{name} {{__version__}}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="fit and write a run record (MPI: data parallel)")
    train.add_argument("--output", type=Path, required=True, help="folder for results.json")
    add_config_flags(train, FitConfig)
    train.set_defaults(run=_train)

    demo = commands.add_parser("demo", help="the embedded default end to end (about a second)")
    demo.add_argument(
        "--output",
        type=Path,
        default=Path("{name}-demo"),
        help="folder for results.json and loss.png",
    )
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``{name}`` command; returns the exit code."""
    return run_main(_parser(), argv)
'''

TEST_CLI = '''\
"""The command line: demo, settings from flags and TOML, bad input, faults."""

import json

import pytest
from {module}.cli import main

from shared_hpc import lock_folder


def test_demo_writes_a_run_record_with_a_headline_and_a_plot(tmp_path):
    assert main(["demo", "--output", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["package"] == "{name}"
    assert record["headline"]["value"] < record["metrics"]["initial_loss"]
    assert record["energy"]["method"]
    assert (tmp_path / "loss.png").stat().st_size > 0


def test_flags_win_over_the_toml_file(tmp_path):
    settings = tmp_path / "fit.toml"
    settings.write_text("steps = 5\\nlr = 0.01\\n")
    out = tmp_path / "run"
    assert main(["train", "--output", str(out), "--config", str(settings), "--steps", "7"]) == 0
    config = json.loads((out / "results.json").read_text())["config"]
    assert (config["steps"], config["lr"]) == (7, 0.01)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--output", "OUT", "--steps", "0"], "steps must be >= 1, got 0"),
        (["train", "--output", "OUT", "--config", "missing.toml"], "missing.toml does not exist"),
        (["demo", "--output", "FILE"], "is a file, not a folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, run_command, args, message):
    (tmp_path / "FILE").write_text("")
    args = [str(tmp_path / a) if a in ("OUT", "FILE", "missing.toml") else a for a in args]
    result = run_command("{module}", *args)
    assert result.returncode == 2
    assert result.stderr.count("\\n") == 1 and message in result.stderr
    assert result.stdout == ""


def test_a_second_run_on_the_same_folder_is_refused(tmp_path, run_command):
    with lock_folder(tmp_path):  # a run in progress
        result = run_command("{module}", "train", "--output", str(tmp_path))
    assert result.returncode == 2 and "is in use by another run" in result.stderr
    assert not (tmp_path / "results.json").exists()


def test_a_failure_on_one_rank_ends_the_whole_job(tmp_path, mpi_job):
    job = mpi_job(
        "import importlib, sys\\n"
        "from shared_hpc import get_comm\\n"
        "from {module}.cli import main\\n"
        "if get_comm().Get_rank() == 1:\\n"
        "    def broken(*args):\\n"
        "        raise RuntimeError('injected fault on rank 1')\\n"
        "    importlib.import_module('{module}.fit').problem = broken\\n"
        "sys.exit(main(['train', '--output', sys.argv[1]]))\\n",
        tmp_path / "run",
    )
    assert job.seconds < 60  # rank 0 waits in a collective: aborted, not hung
    assert job.returncode != 0
    assert "rank 1 of 2: Traceback" in job.stderr and "injected fault" in job.stderr


@pytest.mark.parametrize("command", [[], ["train"], ["demo"]])
def test_every_command_answers_help(run_command, command):
    result = run_command("{module}", *command, "--help")
    assert result.returncode == 0 and "usage:" in result.stdout
'''

TEST_MPI = '''\
"""Under ``mpiexec -n 2``: the data-parallel fit equals the serial one."""

import numpy as np
import pytest
from {module} import FitConfig, fit

from shared_hpc import SerialComm


@pytest.mark.mpi(ranks=2)
def test_two_ranks_fit_what_one_rank_fits(comm):
    config = FitConfig(steps=50)
    parallel = fit(config, comm)
    serial = fit(config, SerialComm())
    assert parallel.ranks == 2
    np.testing.assert_allclose(parallel.weights, serial.weights, rtol=1e-10)
    assert comm.allgather(parallel.final_loss) == [parallel.final_loss] * 2
'''

BENCH_RUN = '''\
"""Write BENCHMARKS.md: the stand-in fit against NumPy's least squares, in one run.

    python benchmarks/run.py

Both run on the same machine in the same process, alternating, medians of five runs.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
from {module} import FitConfig, fit
from {module}.fit import problem

from shared_hpc import SerialComm
from shared_hpc.bench import machine_line, markdown_table, replace_marked_block

HERE = Path(__file__).resolve().parent.parent
REPEATS = 5


def main() -> None:
    config = FitConfig(samples=20000, steps=300)
    fit_s, lstsq_s = [], []
    for _ in range(REPEATS):
        began = time.perf_counter()
        result = fit(config, SerialComm())
        fit_s.append(time.perf_counter() - began)
        began = time.perf_counter()
        x, y = problem(config, 0, 1)
        best = np.linalg.lstsq(x, y, rcond=None)[0]
        lstsq_s.append(time.perf_counter() - began)
    best_loss = float(np.mean((x @ best - y) ** 2))
    table = markdown_table(
        ["method", "final MSE", "median time [s]"],
        [
            ["gradient descent (this package)", f"{{result.final_loss:.5g}}",
             f"{{statistics.median(fit_s):.4f}}"],
            ["numpy.linalg.lstsq (baseline)", f"{{best_loss:.5g}}",
             f"{{statistics.median(lstsq_s):.4f}}"],
        ],
    )  # fmt: skip
    text = f"{{REPEATS}} runs each, medians; machine: {{machine_line()}}.\\n\\n{{table}}"
    replace_marked_block(HERE / "BENCHMARKS.md", "fit", text, append=True)
    print(text)


if __name__ == "__main__":
    main()
'''

FILES = {
    "pyproject.toml": PYPROJECT,
    "README.md": README,
    "CHANGELOG.md": CHANGELOG,
    "BENCHMARKS.md": BENCHMARKS,
    "src/{module}/__init__.py": INIT,
    "src/{module}/__about__.py": ABOUT,
    "src/{module}/__main__.py": MAIN,
    "src/{module}/py.typed": "",
    "src/{module}/config.py": CONFIG,
    "src/{module}/fit.py": FIT,
    "src/{module}/demo.py": DEMO,
    "src/{module}/cli.py": CLI,
    "tests/test_cli.py": TEST_CLI,
    "tests/test_mpi.py": TEST_MPI,
    "benchmarks/run.py": BENCH_RUN,
}


def sort_first_party(text: str, module: str) -> str:
    """Put the ``from shared_hpc ...`` and ``from <module> ...`` imports in isort's order.

    Inside ``src/`` both are first-party, so their order depends on the new package's name; the
    templates list them in one block, which is sorted here by module path as ruff's isort rules
    do. (In tests and benchmarks the package counts as third-party and has a block of its own.)
    """
    tree = ast.parse(text)
    mine = ("shared_hpc", module)
    nodes = [
        n
        for n in tree.body
        if isinstance(n, ast.ImportFrom) and n.module and n.module.split(".")[0] in mine
    ]
    if len(nodes) < 2:
        return text
    lines = text.splitlines(keepends=True)
    first, last = nodes[0].lineno - 1, nodes[-1].end_lineno
    pieces = [(n.module, "".join(lines[n.lineno - 1 : n.end_lineno])) for n in nodes]
    if sum(len(p.splitlines()) for _, p in pieces) != last - first:
        return text  # not one contiguous block: leave it alone
    block = "".join(p for _, p in sorted(pieces, key=lambda item: item[0]))
    return "".join(lines[:first]) + block + "".join(lines[last:])


def write_skeleton(target: Path, name: str, paper: str, summary: str) -> Path:
    """Create packages/<name> under ``target``; refuses to overwrite an existing folder.

    Args:
        target: The monorepo root.
        name: The pip name, e.g. ``my-method`` (import name ``my_method``).
        paper: The paper, e.g. ``"arXiv:2301.08713 Propulate"``.
        summary: One line on what the package does.

    Returns:
        The new package's folder.

    Raises:
        ValueError: ``name`` is not a valid lower-case distribution name.
        FileExistsError: The folder exists already.
    """
    if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name):
        raise ValueError(f"package name {name!r}: use lower-case letters, digits and '-'")
    folder = target / "packages" / name
    if folder.exists():
        raise FileExistsError(f"{folder} already exists")
    module = name.replace("-", "_")
    fields = {"name": name, "module": module, "paper": paper, "summary": summary.rstrip(".")}
    for relative, template in FILES.items():
        path = folder / relative.format(module=module)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = template.format(**fields)
        in_src = relative.startswith("src/") and path.suffix == ".py"
        path.write_text(sort_first_party(text, module) if in_src else text)
    shutil.copy(ROOT / "LICENSE", folder / "LICENSE")
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="pip name, e.g. my-method (import name my_method)")
    parser.add_argument("--paper", required=True, help='e.g. "arXiv:2301.08713 Propulate"')
    parser.add_argument("--summary", required=True, help="one line on what the package does")
    parser.add_argument("--root", type=Path, default=ROOT, help="monorepo root (default: this one)")
    args = parser.parse_args(argv)
    try:
        folder = write_skeleton(args.root, args.name, args.paper, args.summary)
    except (ValueError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {folder}; next: pip install -e ./shared -e '{folder}[test]' && pytest {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
