"""Every distribution installs with the others, imports, answers --help, declares its imports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import check_imports  # noqa: E402
import new_package  # noqa: E402

DISTRIBUTIONS = {"shared-hpc": ROOT / "shared"} | {
    p.parent.name: p.parent for p in sorted(ROOT.glob("packages/*/pyproject.toml"))
}
BIN = Path(sys.executable).parent


def project(folder: Path) -> dict:
    return tomllib.loads((folder / "pyproject.toml").read_text())["project"]


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


def test_new_package_skeleton_passes_its_own_tests_and_checks(tmp_path):
    folder = new_package.write_skeleton(tmp_path, "my-method", "arXiv:0000.00000", "Does things")
    assert check_imports.undeclared_imports(folder) == []
    env = {**os.environ, "PYTHONPATH": str(folder / "src")}
    demo_dir = tmp_path / "demo"
    subprocess.run(
        [sys.executable, "-m", "my_method.cli", "demo", "--output", str(demo_dir)],
        env=env,
        check=True,
    )
    record = json.loads((demo_dir / "results.json").read_text())
    assert record["package"] == "my-method"
    assert record["energy"]["method"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder / "tests")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    if shutil.which("ruff"):
        subprocess.run(["ruff", "check", "--no-cache", str(folder)], cwd=ROOT, check=True)


def test_new_package_refuses_bad_names_and_existing_folders(tmp_path):
    with pytest.raises(ValueError, match="lower-case"):
        new_package.write_skeleton(tmp_path, "My_Method", "p", "s")
    new_package.write_skeleton(tmp_path, "my-method", "p", "s")
    with pytest.raises(FileExistsError):
        new_package.write_skeleton(tmp_path, "my-method", "p", "s")
