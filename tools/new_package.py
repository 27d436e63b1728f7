"""Write the skeleton of a new package under packages/<name>, laid out as CONTRIBUTING.md says.

    python tools/new_package.py my-method --paper "arXiv:0000.00000 My Method" \
        --summary "One line on what it does"

The skeleton installs, lints clean, answers ``--help``, runs a ``demo`` that writes a run record
and a plot, and has tests that pass; then replace its placeholder method with the real one.
"""

from __future__ import annotations

import argparse
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
    "shared-hpc>=0.1",
    "numpy>=1.24",
    "matplotlib>=3.7",
]

[project.optional-dependencies]
test = ["pytest>=8", "pytest-timeout>=2"]

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

## Install

```bash
pip install ./shared ./packages/{name}
```

## Quickstart

```bash
{name} demo --output results/
```
"""

CHANGELOG = """\
# Changelog

## 0.1.0 (unreleased)
- First skeleton.
"""

BENCHMARKS = """\
# Benchmarks of {name}

Not measured yet: `nox -s "bench(name={name})"` writes this file.
"""

ABOUT = '__version__ = "0.1.0"\n'

INIT = '''\
"""{summary}."""

from {module}.__about__ import __version__

__all__ = ["__version__"]
'''

CLI = '''\
"""Command line of {name}: a thin wrapper over the Python API."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from shared_hpc import EnergyMeter, RunRecord, get_comm

from {module}.__about__ import __version__


def demo(output: Path) -> RunRecord:
    """Run the embedded default end to end; replace the placeholder with the method."""
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with EnergyMeter(get_comm()) as meter:
        curve = np.cumsum(np.random.default_rng(0).normal(size=100))
    figure = Figure()
    figure.subplots().plot(curve)
    figure.savefig(output / "curve.png")
    record = RunRecord.create(
        "{name}",
        __version__,
        config={{}},
        metrics={{"final": float(curve[-1])}},
        energy=meter.report.to_dict(),
        wall_time_s=time.perf_counter() - started,
        artifacts=["curve.png"],
    )
    record.write(output / "results.json")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="{name}", description="{summary}.")
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="run the embedded default end to end")
    demo_parser.add_argument("--output", type=Path, default=Path("{name}-demo"))
    args = parser.parse_args(argv)
    if args.command == "demo":
        demo(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

TEST_CLI = """\
import json

import pytest

from {module}.cli import main


def test_demo_writes_a_run_record_and_a_plot(tmp_path):
    assert main(["demo", "--output", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["package"] == "{name}"
    assert (tmp_path / "curve.png").stat().st_size > 0


def test_unknown_command_is_refused():
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
"""

BENCH_RUN = '''\
"""Write BENCHMARKS.md from measurements taken in this run (placeholder: measure the method)."""

from pathlib import Path

Path(__file__).resolve().parent.parent.joinpath("BENCHMARKS.md").write_text(
    "# Benchmarks of {name}\\n\\nNo benchmark defined yet.\\n"
)
'''


def write_skeleton(target: Path, name: str, paper: str, summary: str) -> Path:
    """Create packages/<name> under ``target``; refuses to overwrite an existing folder."""
    if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name):
        raise ValueError(f"package name {name!r}: use lower-case letters, digits and '-'")
    folder = target / "packages" / name
    if folder.exists():
        raise FileExistsError(f"{folder} already exists")
    module = name.replace("-", "_")
    fields = {"name": name, "module": module, "paper": paper, "summary": summary.rstrip(".")}
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        "CHANGELOG.md": CHANGELOG,
        "BENCHMARKS.md": BENCHMARKS,
        f"src/{module}/__init__.py": INIT,
        f"src/{module}/__about__.py": ABOUT,
        f"src/{module}/py.typed": "",
        f"src/{module}/cli.py": CLI,
        "tests/test_cli.py": TEST_CLI,
        "benchmarks/run.py": BENCH_RUN,
    }
    for relative, template in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**fields))
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
    print(f"wrote {folder}; next: pip install -e ./shared -e {folder}[test] && pytest {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
