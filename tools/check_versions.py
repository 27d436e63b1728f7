"""Check the metadata of built wheels: no path or URL dependencies, and every package's
``shared-hpc`` requirement admits the shared-hpc version being built alongside it.

    python tools/check_versions.py dist/
"""

from __future__ import annotations

import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version


def wheel_metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(archive.read(name).decode())


def problems_in(dist_dir: Path) -> list[str]:
    metadata = {w.name: wheel_metadata(w) for w in sorted(dist_dir.glob("*.whl"))}
    versions = {canonicalize_name(m["Name"]): Version(m["Version"]) for m in metadata.values()}
    problems = []
    for wheel, meta in metadata.items():
        for line in meta.get_all("Requires-Dist") or []:
            requirement = Requirement(line)
            if requirement.url:
                problems.append(f"{wheel}: {requirement.name} is a URL or path dependency")
            built = versions.get(canonicalize_name(requirement.name))
            if built is not None and not requirement.specifier.contains(built, prereleases=True):
                problems.append(f"{wheel}: requires {requirement}, but {built} is being built")
    return problems


if __name__ == "__main__":
    found = problems_in(Path(sys.argv[1]))
    print("\n".join(found) or "wheel metadata consistent")
    sys.exit(bool(found))
