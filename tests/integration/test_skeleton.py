"""Every distribution, and what the generator writes, meets shared-hpc the same way.

The skeleton of CONTRIBUTING.md, checked from the outside as a user meets it: the same verbs
(``--version``, ``demo``, ``--help`` on every command), a run record with a headline and a PNG
plot from ``demo``, one line and exit code 2 for a bad input, files readable by the group.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from shared_hpc import RunRecord, serial_environ

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import new_package  # noqa: E402
from distributions import distributions, project  # noqa: E402

BIN = Path(sys.executable).parent
GENERATED = "generated-package"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package fresh from tools/new_package.py (importable through PYTHONPATH)."""
    root = tmp_path_factory.mktemp("generated")
    return new_package.write_skeleton(root, "my-method", "arXiv:0000.00000", "Does things")


def _command(name: str, generated: Path) -> tuple[list[str], dict[str, str]]:
    """How to call a distribution's console script, and with which environment."""
    env = {**serial_environ(), "OMP_NUM_THREADS": "1"}
    if name == GENERATED:
        return [sys.executable, "-m", "my_method"], {**env, "PYTHONPATH": str(generated / "src")}
    (script,) = [s for s in project(distributions()[name]).get("scripts", {}) if s == name]
    return [str(BIN / script)], env


def _run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 600):
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


NAMES = [*distributions(), GENERATED]


def _subcommands(help_text: str) -> list[str]:
    found = re.search(r"\{([a-z][a-z0-9-]*(?:,[a-z][a-z0-9-]*)*)\}", help_text)
    assert found, f"no subcommands in:\n{help_text}"
    return found.group(1).split(",")


@pytest.mark.parametrize("name", NAMES)
def test_same_verbs_and_help_on_every_command(name, generated, tmp_path):
    command, env = _command(name, generated)
    top = _run([*command, "--help"], env, tmp_path)
    assert top.returncode == 0 and top.stdout.startswith("usage:")
    verbs = _subcommands(top.stdout)
    assert "demo" in verbs
    version = _run([*command, "--version"], env, tmp_path)
    assert version.returncode == 0 and re.search(r"\d+\.\d+\.\d+", version.stdout)
    for verb in verbs:
        result = _run([*command, verb, "--help"], env, tmp_path)
        assert result.returncode == 0, f"{verb} --help: {result.stderr}"
        assert result.stdout.startswith("usage:") and verb in result.stdout.splitlines()[0]
        assert result.stderr == "", f"{verb} --help printed to stderr: {result.stderr}"


@pytest.mark.parametrize("name", NAMES)
def test_a_bad_output_is_one_line_and_exit_2(name, generated, tmp_path):
    command, env = _command(name, generated)
    not_a_folder = tmp_path / "results.json"
    not_a_folder.write_text("{}")
    result = _run([*command, "demo", "--output", str(not_a_folder)], env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and str(not_a_folder) in result.stderr, result.stderr


@pytest.mark.parametrize("name", NAMES)
def test_demo_writes_a_run_record_with_a_headline_and_readable_files(name, generated, tmp_path):
    command, env = _command(name, generated)
    out = tmp_path / "demo"
    os.umask(0o027)  # a cluster's usual umask: the group reads, others do not
    try:
        result = _run([*command, "demo", "--output", str(out)], env, tmp_path)
    finally:
        os.umask(0o022)
    assert result.returncode == 0, result.stderr[-3000:]
    record = RunRecord.read(out / "results.json")
    assert record.package == (name if name != GENERATED else "my-method")
    headline = record.headline
    assert headline is not None and headline["name"] and isinstance(headline["value"], float)
    assert record.energy is not None and record.energy["method"]
    assert list(out.rglob("*.png")), "no plot"
    for path in out.rglob("*"):
        if path.is_file():
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode & 0o640 == 0o640 and not mode & 0o007, f"{path}: {oct(mode)}"
