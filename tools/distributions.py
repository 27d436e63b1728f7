"""The distributions of the monorepo, found in one place for nox, the docs, the tests and CI.

shared-hpc lives in ``shared/``, every other distribution in ``packages/<name>/``; a folder with a
``pyproject.toml`` is all it takes to be picked up everywhere. shared-hpc comes first because
every package depends on it.

    python tools/distributions.py                  # one name per line
    python tools/distributions.py --json           # a JSON list (CI's job matrix)
    python tools/distributions.py --folder petnet  # packages/petnet (the release workflow)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - nox itself may run on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT / "shared"


def distributions(root: Path = ROOT) -> dict[str, Path]:
    """Distribution name -> folder, shared-hpc first, then the packages by name."""
    packages = sorted(p.parent for p in (root / "packages").glob("*/pyproject.toml"))
    return {"shared-hpc": root / "shared"} | {p.name: p for p in packages}


def project(folder: Path) -> dict:
    """The ``[project]`` table of a distribution's pyproject.toml."""
    return tomllib.loads((folder / "pyproject.toml").read_text())["project"]


def extras(folder: Path) -> set[str]:
    """Names of a distribution's optional-dependency extras."""
    return set(project(folder).get("optional-dependencies", {}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.add_argument("--folder", metavar="NAME", help="print the folder of NAME")
    args = parser.parse_args(argv)
    found = distributions()
    if args.folder is not None:
        if args.folder not in found:
            print(f"no distribution named {args.folder!r}", file=sys.stderr)
            return 2
        print(found[args.folder].relative_to(ROOT))
    else:
        print(json.dumps(list(found)) if args.json else "\n".join(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
