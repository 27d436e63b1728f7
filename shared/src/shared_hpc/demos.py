"""Run every installed package's demo and write one summary table.

Packages register their CLI under the entry-point group ``shared_hpc.demos``; each demo runs as
``main(["demo", "--output", DIR])`` in its own subprocess (so one crash or leaked thread cannot
take the others down), and the table is built from the ``results.json`` run records they write.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from shared_hpc.errors import UserError
from shared_hpc.files import write_text_atomic
from shared_hpc.mpi import serial_environ
from shared_hpc.records import RunRecord

__all__ = ["DemoOutcome", "discover_demos", "run_demos"]

GROUP = "shared_hpc.demos"
_RUNNER = """
import sys
from importlib.metadata import entry_points
(ep,) = [e for e in entry_points(group={group!r}) if e.name == sys.argv[1]]
sys.exit(ep.load()(["demo", "--output", sys.argv[2]]) or 0)
"""


def discover_demos() -> list[str]:
    """Names of the installed demos, sorted."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


@dataclass
class DemoOutcome:
    """How one demo went; ``record`` is its results.json when it wrote a valid one."""

    name: str
    status: str
    seconds: float
    record: RunRecord | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _run_one(name: str, out: Path, timeout_s: float) -> DemoOutcome:
    out.mkdir(parents=True, exist_ok=True)
    log = out / "demo.log"
    code = _RUNNER.format(group=GROUP)
    began = time.perf_counter()
    with log.open("w") as handle:
        try:
            proc = subprocess.run(
                [sys.executable, "-c", code, name, str(out)],
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=serial_environ(),
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            return DemoOutcome(
                name, f"timeout after {timeout_s:.0f} s", time.perf_counter() - began
            )
    seconds = time.perf_counter() - began
    if proc.returncode != 0:
        return DemoOutcome(name, f"failed (exit {proc.returncode}, see {log.name})", seconds)
    try:
        record = RunRecord.read(out / "results.json")
    except FileNotFoundError:
        return DemoOutcome(name, "failed (no results.json)", seconds)
    except ValueError as err:
        return DemoOutcome(name, f"failed ({err})", seconds)
    return DemoOutcome(name, "ok", seconds, record)


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _row(outcome: DemoOutcome) -> str:
    headline = outcome.record.headline if outcome.record else None
    energy = outcome.record.energy if outcome.record else None
    metric = value = paper = "–"
    if headline:
        metric = f"{headline['name']}" + (f" ({headline['unit']})" if headline.get("unit") else "")
        value, paper = _fmt(headline["value"]), _fmt(headline["paper"])
    joules = f"{energy['total_joules']:.1f} ({energy['method']})" if energy else "–"
    cells = [outcome.name, metric, value, paper, f"{outcome.seconds:.1f}", joules, outcome.status]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def summary_markdown(outcomes: list[DemoOutcome]) -> str:
    """The SUMMARY.md table of a demo run."""
    lines = [
        "# Demo summary",
        "",
        "| package | headline metric | value | paper | runtime s | energy J (method) | status |",
        "|---|---|---|---|---|---|---|",
        *(_row(o) for o in outcomes),
        "",
    ]
    if not outcomes:
        lines.insert(
            2, f"No demos found: nothing is registered in the {GROUP!r} entry-point group.\n"
        )
    failed = [o.name for o in outcomes if not o.ok]
    if failed:
        lines.append(f"Failed: {', '.join(failed)}.")
        lines.append("")
    return "\n".join(lines)


def run_demos(
    output_dir: str | os.PathLike[str], names: list[str] | None = None, timeout_s: float = 1800
) -> int:
    """Run the demos (all, or ``names``) one after another and write ``output_dir/SUMMARY.md``.

    Keeps going after a failure.

    Args:
        output_dir: Where each demo writes into a folder of its name.
        names: The demos to run (default: every installed one).
        timeout_s: Seconds each demo may take.

    Returns:
        0 if every demo succeeded, 1 if any failed or none was found.

    Raises:
        UserError: A requested name is not an installed demo (checked before anything runs).
    """
    available = discover_demos()
    if names:
        unknown = sorted(set(names) - set(available))
        if unknown:
            raise UserError(f"unknown demo(s) {unknown}; installed: {available}")
        selected = list(dict.fromkeys(names))
    else:
        selected = available
    out = Path(output_dir)
    outcomes = []
    for name in selected:
        print(f"[run-demos] {name} ...", flush=True)
        outcome = _run_one(name, out / name, timeout_s)
        print(f"[run-demos] {name}: {outcome.status} in {outcome.seconds:.1f} s", flush=True)
        outcomes.append(outcome)
    write_text_atomic(out / "SUMMARY.md", summary_markdown(outcomes))
    return 0 if outcomes and all(o.ok for o in outcomes) else 1
