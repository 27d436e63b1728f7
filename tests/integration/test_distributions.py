"""Every distribution installs with the others, imports, answers --help, declares its imports;
the generator writes a package that passes its own tests and lint."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from shared_hpc import serial_environ

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import check_imports  # noqa: E402
import new_package  # noqa: E402
from distributions import distributions, project  # noqa: E402

DISTRIBUTIONS = distributions()
BIN = Path(sys.executable).parent


def test_all_distributions_install_together_without_conflict():
    result = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_distribution_imports_and_its_scripts_answer_help(name):
    folder = DISTRIBUTIONS[name]
    for module in (p.name for p in (folder / "src").iterdir() if (p / "__init__.py").exists()):
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
    scripts = project(folder).get("scripts", {})
    assert name in scripts, f"{name} has no console script named like the package"
    for script in scripts:
        result = subprocess.run(
            [str(BIN / script), "--help"], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "usage:" in result.stdout


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_distribution_declares_every_import(name):
    assert check_imports.undeclared_imports(DISTRIBUTIONS[name]) == []


def test_every_distribution_registers_its_demo():
    registered = {ep.name for ep in entry_points(group="shared_hpc.demos")}
    assert set(DISTRIBUTIONS) <= registered


def write_distribution(folder: Path, imports: str) -> Path:
    (folder / "src" / "fake_pkg").mkdir(parents=True)
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "fake-pkg"\nversion = "0"\ndependencies = ["numpy>=1"]\n'
        '[project.optional-dependencies]\ntest = ["pytest"]\n'
    )
    (folder / "src" / "fake_pkg" / "__init__.py").write_text(imports)
    return folder


def run_checker(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "check_imports.py"), str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_import_check_passes_declared_and_standard_library_imports(tmp_path):
    folder = write_distribution(tmp_path, "import json\nimport numpy\nimport pytest\n")
    result = run_checker(folder)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("imports", "culprit"),
    [
        ("import shared_hpc\n", "shared_hpc: provided by shared-hpc, not declared"),
        ("from torch import nn\n", "torch: provided by torch, not declared"),
        ("import surely_no_such_module\n", "surely_no_such_module: not installed"),
    ],
)
def test_import_check_fails_on_an_undeclared_import(tmp_path, imports, culprit):
    result = run_checker(write_distribution(tmp_path, "import numpy\n" + imports))
    assert result.returncode == 1
    assert culprit in result.stderr


def test_new_package_skeleton_passes_its_own_tests_and_checks(tmp_path, mpiexec):
    folder = new_package.write_skeleton(tmp_path, "my-method", "arXiv:0000.00000", "Does things")
    assert check_imports.undeclared_imports(folder) == []
    env = {**serial_environ(), "PYTHONPATH": str(folder / "src")}
    pytest_args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder / "tests")]
    result = subprocess.run(
        [sys.executable, *pytest_args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-2000:]
    result = subprocess.run(
        [mpiexec, "-n", "2", sys.executable, *pytest_args, "-m", "mpi"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout[-2000:]
    if shutil.which("ruff"):
        subprocess.run(["ruff", "check", "--no-cache", str(folder)], cwd=ROOT, check=True)
        subprocess.run(["ruff", "format", "--check", str(folder)], cwd=ROOT, check=True)


def test_new_package_refuses_bad_names_and_existing_folders(tmp_path):
    with pytest.raises(ValueError, match="lower-case"):
        new_package.write_skeleton(tmp_path, "My_Method", "p", "s")
    new_package.write_skeleton(tmp_path, "my-method", "p", "s")
    with pytest.raises(FileExistsError):
        new_package.write_skeleton(tmp_path, "my-method", "p", "s")
