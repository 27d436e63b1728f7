"""Sessions of the monorepo: tests, one package alone, lint, docs, build, demo, benchmarks.

Distributions are discovered from ``shared/`` and ``packages/*/pyproject.toml``: adding a package
folder is all it takes for every session to pick it up.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import nox
from nox.command import CommandFailed

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tools"))
from distributions import SHARED, distributions, extras  # noqa: E402

# distribution name -> its folder; shared-hpc first because every package depends on it
DISTRIBUTIONS = distributions()
# MPI_RUNTIME=system uses the machine's MPI (mpi4py built against it); the default is the
# MPICH wheel from PyPI, so a laptop or CI machine needs no MPI installation at all.
MPI_RUNTIME = os.environ.get("MPI_RUNTIME", "mpich")
MPIEXEC_FLAGS = os.environ.get("MPIEXEC_FLAGS", "").split()
MPI_TIMEOUT_S = int(os.environ.get("MPI_TIMEOUT_S", "900"))

nox.options.sessions = ["tests", "lint"]
nox.options.default_venv_backend = "venv"


def _mpi_requirements() -> list[str]:
    if MPI_RUNTIME == "system":
        return ["--no-binary=mpi4py", "mpi4py>=3.1"]
    return ["mpi4py>=3.1", "mpich"]


def _install_once(session: nox.Session, *requirements: str) -> None:
    """Install ``requirements`` unless this environment already holds exactly these.

    The stamp hashes the requirements and every pyproject.toml, so a second run with nothing
    changed starts in seconds, and any change to a dependency list reinstalls.
    """
    digest = hashlib.sha256("\n".join(requirements).encode())
    for folder in DISTRIBUTIONS.values():
        digest.update((folder / "pyproject.toml").read_bytes())
    stamp = Path(session.virtualenv.location) / ".install-stamp"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        session.log("environment up to date, skipping installation")
        return
    session.install("--upgrade", "pip")
    session.install(*requirements)
    stamp.write_text(digest.hexdigest())


def _with_extras(folder: Path, wanted: tuple[str, ...]) -> str:
    """``folder[a,b]`` with those of ``wanted`` that the distribution has."""
    present = [e for e in wanted if e in extras(folder)]
    return f"{folder}[{','.join(present)}]" if present else str(folder)


def _editable(*wanted: str) -> list[str]:
    return [f"-e{_with_extras(folder, wanted)}" for folder in DISTRIBUTIONS.values()]


def _run_pytest(session: nox.Session, *args: str, label: str, failures: list[str]) -> None:
    """Run pytest; exit code 5 (nothing collected) is fine, other failures are recorded."""
    try:
        session.run("python", "-m", "pytest", *args, success_codes=[0, 5])
    except CommandFailed:
        failures.append(label)


def _run_mpi_tests(session: nox.Session, test_dirs: list[Path], failures: list[str]) -> None:
    """Run the tests marked ``mpi`` under mpiexec, once per rank count the tests ask for."""
    plan_file = Path(session.create_tmp()) / "mpi-plan.json"
    plan_file.unlink(missing_ok=True)
    dirs = [str(d) for d in test_dirs]
    session.run(
        "python", "-m", "pytest", "--collect-only", "-q", "-m", "mpi",
        f"--mpi-plan={plan_file}", *dirs, success_codes=[0, 5], silent=True,
    )  # fmt: skip
    plan = json.loads(plan_file.read_text()) if plan_file.exists() else {}
    for ranks, node_ids in sorted(plan.items(), key=lambda item: int(item[0])):
        session.log(f"{len(node_ids)} MPI tests on {ranks} ranks")
        try:
            session.run(
                "timeout", str(MPI_TIMEOUT_S), "mpiexec", "-n", ranks, *MPIEXEC_FLAGS,
                "python", "-m", "pytest", "-q", "-m", "mpi", "-p", "no:cacheprovider",
                *node_ids, external=True,
            )  # fmt: skip
        except CommandFailed:
            failures.append(f"mpi tests on {ranks} ranks")


def _test_distributions(session: nox.Session, names: list[str], integration: bool) -> None:
    failures: list[str] = []
    pytest_args = list(session.posargs) or ["-m", "not slow"]
    test_dirs = [DISTRIBUTIONS[n] / "tests" for n in names if (DISTRIBUTIONS[n] / "tests").is_dir()]
    for name in names:
        tests_dir = DISTRIBUTIONS[name] / "tests"
        if tests_dir.is_dir():
            session.log(f"==> {name}")
            _run_pytest(session, str(tests_dir), *pytest_args, label=name, failures=failures)
    _run_mpi_tests(session, test_dirs, failures)
    if integration:
        _run_pytest(session, str(ROOT / "tests" / "integration"), label="integration",
                    failures=failures)  # fmt: skip
    if failures:
        session.error("failed: " + ", ".join(failures))


@nox.session(reuse_venv=True)
def tests(session: nox.Session) -> None:
    """Every distribution's tests, then the MPI tests under mpiexec, then tests/integration.

    Extra arguments go to pytest, e.g. ``nox -s tests -- -m slow``.
    """
    _install_once(session, *_editable("test", "demo"), *_mpi_requirements())
    session.chdir(ROOT)
    _test_distributions(session, list(DISTRIBUTIONS), integration=True)


@nox.session
@nox.parametrize("name", list(DISTRIBUTIONS))
def package(session: nox.Session, name: str) -> None:
    """One distribution alone in a fresh environment with only what it declares."""
    folder = DISTRIBUTIONS[name]
    session.install("--upgrade", "pip")
    session.install(*_mpi_requirements())
    session.install(f"{SHARED}[test]", _with_extras(folder, ("test", "demo")))
    session.chdir(ROOT)
    session.run("python", "tools/check_imports.py", str(folder))
    _test_distributions(session, [name], integration=False)


@nox.session(reuse_venv=True)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    _install_once(session, "ruff>=0.6")
    session.chdir(ROOT)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(reuse_venv=True)
def docs(session: nox.Session) -> None:
    """Build the documentation site strictly (any warning fails); ``-- serve`` to preview."""
    _install_once(
        session,
        "mkdocs>=1.6",
        "mkdocs-material>=9.5",
        "mkdocstrings[python]>=0.26",
        "mkdocs-gen-files>=0.5",
        "mkdocs-literate-nav>=0.6",
        "ruff>=0.6",  # formats the signatures on the API pages
    )
    session.chdir(ROOT)
    # silence a notice about the future of MkDocs that two plugins print on every build
    session.env.update(DISABLE_MKDOCS_2_WARNING="true", NO_MKDOCS_2_WARNING="1")
    if session.posargs and session.posargs[0] == "serve":
        session.run("mkdocs", "serve")
    else:
        session.run("mkdocs", "build", "--strict")


@nox.session(reuse_venv=True)
def build(session: nox.Session) -> None:
    """Wheel and sdist of every distribution into dist/, then a metadata check of each."""
    _install_once(session, "hatch>=1.12", "twine>=5", "check-wheel-contents>=0.6", "packaging")
    out = ROOT / "dist"
    shutil.rmtree(out, ignore_errors=True)
    for folder in DISTRIBUTIONS.values():
        session.chdir(folder)
        session.run("hatch", "build", "-t", "wheel", "-t", "sdist", str(out))
    session.chdir(ROOT)
    session.run("twine", "check", "--strict", *map(str, sorted(out.iterdir())))
    session.run("check-wheel-contents", *map(str, sorted(out.glob("*.whl"))))
    session.run("python", "tools/check_versions.py", str(out))


@nox.session(reuse_venv=True)
def demo(session: nox.Session) -> None:
    """The main job: every installed package's demo, then demo-results/SUMMARY.md."""
    packages = [_with_extras(folder, ("demo",)) for folder in DISTRIBUTIONS.values()]
    _install_once(session, *packages, *_mpi_requirements())
    session.chdir(ROOT)
    session.run("shared-hpc", "run-demos", "--output", "demo-results", *session.posargs)


@nox.session
@nox.parametrize("name", [n for n, f in DISTRIBUTIONS.items() if (f / "benchmarks").is_dir()])
def bench(session: nox.Session, name: str) -> None:
    """A package's benchmarks; they rewrite its BENCHMARKS.md (slow: minutes to hours)."""
    folder = DISTRIBUTIONS[name]
    session.install(*_mpi_requirements())
    session.install(f"{SHARED}", _with_extras(folder, ("bench", "test", "demo")))
    session.chdir(folder)
    session.run("python", "benchmarks/run.py", *session.posargs)
