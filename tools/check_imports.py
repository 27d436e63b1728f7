"""Fail when a distribution's source imports a third-party module it does not declare.

Run inside an environment where the distribution is installed with its extras::

    python tools/check_imports.py packages/petnet

Every absolute import under ``src/`` that is neither the standard library nor the distribution's
own package must be provided (according to the installed metadata) by a distribution named in
``dependencies`` or in an optional-dependency extra. An import that nothing installed provides is
reported too: in a fresh environment with only the declared dependencies, that is the same error.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from importlib.metadata import distributions, packages_distributions
from pathlib import Path
from urllib.parse import unquote, urlparse

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def normalise(name: str) -> str:
    """PEP 503 normalisation, so ``Shared_HPC`` and ``shared-hpc`` compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalise(re.split(r"[\s\[<>=!~;@(]", requirement.strip(), maxsplit=1)[0])


def declared_distributions(pyproject: dict) -> set[str]:
    project = pyproject["project"]
    names = {requirement_name(r) for r in project.get("dependencies", [])}
    for extra in project.get("optional-dependencies", {}).values():
        names |= {requirement_name(r) for r in extra}
    return names


def imported_modules(src: Path) -> dict[str, list[str]]:
    """Top-level module name -> the places (file:line) that import it."""
    found: dict[str, list[str]] = {}
    for path in sorted(src.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], []).append(f"{path}:{node.lineno}")
    return found


def module_providers() -> dict[str, set[str]]:
    """Top-level module -> distributions providing it, editable installs included.

    ``packages_distributions`` misses editable installs (their RECORD lists a .pth file, not the
    package), so those are read from the project folder that ``direct_url.json`` points to.
    """
    providers = {m: {normalise(d) for d in ds} for m, ds in packages_distributions().items()}
    for dist in distributions():
        info = json.loads(dist.read_text("direct_url.json") or "{}")
        if not info.get("dir_info", {}).get("editable"):
            continue
        project = Path(unquote(urlparse(info["url"]).path))
        src = project / "src" if (project / "src").is_dir() else project
        for child in src.iterdir() if src.is_dir() else ():
            if (child / "__init__.py").exists():
                providers.setdefault(child.name, set()).add(normalise(dist.metadata["Name"]))
    return providers


def own_packages(src: Path) -> set[str]:
    return {p.name for p in src.iterdir() if p.is_dir()} | {p.stem for p in src.glob("*.py")}


def undeclared_imports(folder: Path) -> list[str]:
    """Human-readable problems; empty when every import is declared."""
    pyproject = tomllib.loads((folder / "pyproject.toml").read_text())
    declared = declared_distributions(pyproject)
    src = folder / "src"
    providers = module_providers()
    problems = []
    for module, places in imported_modules(src).items():
        if module in sys.stdlib_module_names or module in own_packages(src):
            continue
        dists = providers.get(module, set())
        if not dists and normalise(module) in declared:
            continue  # declared for other interpreters only, e.g. tomli on Python < 3.11
        if not dists:
            problems.append(f"{module}: not installed, so not declared ({places[0]})")
        elif not dists & declared:
            wanted = " or ".join(sorted(dists))
            problems.append(f"{module}: provided by {wanted}, not declared ({places[0]})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="distribution folders")
    args = parser.parse_args(argv)
    status = 0
    for folder in args.folders:
        problems = undeclared_imports(folder)
        for problem in problems:
            print(f"{folder}: undeclared import {problem}", file=sys.stderr)
        status |= bool(problems)
        if not problems:
            print(f"{folder}: every import is declared")
    return status


if __name__ == "__main__":
    sys.exit(main())
