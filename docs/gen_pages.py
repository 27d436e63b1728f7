"""Generate one documentation section per distribution at build time (mkdocs-gen-files).

For each of shared/ and packages/*: its README as the section's index, its BENCHMARKS.md and
CHANGELOG.md, and an API page rendered by mkdocstrings from the docstrings. Relative links in
those files keep working: the files they point to are copied beside the generated pages.
Also copies CONTRIBUTING.md. No hand-kept list: a new package folder appears by itself.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from distributions import distributions, project  # noqa: E402

LINK = re.compile(r"(\]\()([^)#\s]+)([^)]*\))")
PAGES = {"README.md": "index.md", "BENCHMARKS.md": "benchmarks.md", "CHANGELOG.md": "changelog.md"}


def copy_with_links(source: Path, target: str) -> None:
    """Write ``source`` to ``target`` and bring along the files in its folder that it links to."""
    text = source.read_text(encoding="utf-8")

    def relink(match: re.Match) -> str:
        link = match.group(2)
        if "://" in link or link.startswith(("/", "mailto:")):
            return match.group(0)
        linked = (source.parent / link).resolve()
        if linked.name in PAGES and linked.parent == source.parent:
            return f"{match.group(1)}{PAGES[linked.name]}{match.group(3)}"
        if linked.is_file() and ROOT / "docs" in linked.parents:  # a page of this site
            page = linked.relative_to(ROOT / "docs").as_posix()
            return f"{match.group(1)}{os.path.relpath(page, Path(target).parent)}{match.group(3)}"
        if linked.is_file() and source.parent in linked.parents:
            rel = linked.relative_to(source.parent).as_posix()
            with mkdocs_gen_files.open(str(Path(target).parent / rel), "wb") as out:
                out.write(linked.read_bytes())
            return f"{match.group(1)}{rel}{match.group(3)}"
        return match.group(0)

    with mkdocs_gen_files.open(target, "w") as out:
        out.write(LINK.sub(relink, text))


nav = mkdocs_gen_files.Nav()
nav["Overview"] = "index.md"
overview = ["# Packages\n\n| package | what it does |\n|---|---|\n"]
for name, folder in distributions().items():
    description = project(folder)["description"]
    overview.append(f"| [{name}]({name}/index.md) | {description} |\n")
    modules = sorted(p.name for p in (folder / "src").iterdir() if (p / "__init__.py").exists())
    with mkdocs_gen_files.open(f"packages/{name}/api.md", "w") as out:
        out.write(f"# API of {name}\n\n" + "".join(f"::: {m}\n\n" for m in modules))
    pages = {"index.md": name, "api.md": "API"}
    for source, page in PAGES.items():
        if (folder / source).exists():
            copy_with_links(folder / source, f"packages/{name}/{page}")
            pages.setdefault(page, page.removesuffix(".md").capitalize())
    nav[name] = f"{name}/index.md"
    for page, title in pages.items():
        if page != "index.md":
            nav[name, title] = f"{name}/{page}"

with mkdocs_gen_files.open("packages/index.md", "w") as out:
    out.writelines(overview)
with mkdocs_gen_files.open("packages/SUMMARY.md", "w") as out:
    out.writelines(nav.build_literate_nav())

copy_with_links(ROOT / "CONTRIBUTING.md", "contributing.md")
