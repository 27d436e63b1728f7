"""Helpers of the benchmark scripts: the machine's description and BENCHMARKS.md sections."""

from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path

import torch

from shared_hpc import replace_marked_block
from shared_hpc.hardware import cpu_count, cpu_model

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
ORDER = ("skill", "scaling", "comm", "gpu")
TITLE = (
    "# Benchmarks of weathermixer\n\nEvery table below is written by a script in `benchmarks/`.\n"
)


def machine() -> str:
    """One line naming the machine and how busy it was."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu_model()}, {cpu_count()} logical CPUs, {gpu}, Linux {platform.release()}, "
        f"torch {torch.__version__}; 1-minute load average at the end {load:.1f}"
    )


def write_section(name: str, text: str) -> Path:
    """Replace the section ``name`` of BENCHMARKS.md (kept in the order of ORDER), then the
    README's headline paragraph from whatever results exist."""
    path = ROOT / "BENCHMARKS.md"
    old = path.read_text() if path.exists() else TITLE
    sections = dict(re.findall(r"<!-- (\w+):start -->\n(.*?)<!-- \1:end -->", old, flags=re.S))
    sections[name] = text.rstrip() + "\n"
    body = [TITLE]
    for key in (*ORDER, *sorted(set(sections) - set(ORDER))):
        if key in sections:
            body.append(f"<!-- {key}:start -->\n{sections[key]}<!-- {key}:end -->\n")
    path.write_text("\n".join(body))
    update_readme()
    return path


def skill_wins(tab: dict, names: tuple[str, ...]) -> tuple[int, int]:
    """(cells where the model beats both baselines, cells) over variables, scores, leads."""
    wins = cells = 0
    for name in names:
        for score in ("rmse", "acc"):
            model = tab["model"][name][score]
            for k in range(len(tab["leads_h"])):
                others = [tab[o][name][score][k] for o in ("persistence", "climatology")]
                others = [o for o in others if o is not None]
                cells += 1
                wins += model[k] < min(others) if score == "rmse" else model[k] > max(others)
    return wins, cells


def update_readme() -> None:
    """Write the README's headline paragraph from benchmarks/results/*.json."""
    lines = []
    skill_path, scaling_path = RESULTS / "skill.json", RESULTS / "scaling.json"
    if skill_path.exists():
        tab = json.loads(skill_path.read_text())
        lead = tab["leads_h"][-1]
        m, p, c = (tab[k]["z500"]["rmse"][-1] for k in ("model", "persistence", "climatology"))
        wins, cells = skill_wins(tab, ("z500", "t850", "t2m", "u500", "msl"))
        lines.append(
            f"- Skill on the generated data (2 years, 32×64): Z500 RMSE at +{lead:g} h "
            f"{m:.0f} m²/s² against {p:.0f} for persistence and {c:.0f} for climatology; "
            f"WeatherMixer beats both in {wins} of {cells} (variable, score, lead) cells."
        )
    if scaling_path.exists():
        sc = json.loads(scaling_path.read_text())
        runs = {(g["ranks"], g["grid"]): g["per_rank"] for g in sc["grids"]}
        one = runs[(1, "1x1")][0]
        jig = max(r["param_bytes"] + r["optimizer_bytes"] for r in runs[(4, "2x2")])
        ddp = max(r["param_bytes"] + r["optimizer_bytes"] for r in runs[(4, "1x1")])
        act_j = max(r["activation_bytes"] for r in runs[(4, "2x2")])
        lines.append(
            f"- Memory per rank at 4 ranks: parameters + AdamW {jig / 2**20:.1f} MiB with a "
            f"2×2 Jigsaw grid against {ddp / 2**20:.1f} MiB with data parallelism "
            f"(single process {(one['param_bytes'] + one['optimizer_bytes']) / 2**20:.1f} MiB); "
            f"activations {act_j / 2**20:.1f} MiB against "
            f"{one['activation_bytes'] / 2**20:.1f} MiB for the whole batch in one process."
        )
    mfu_path = RESULTS / "mfu.json"
    if mfu_path.exists():
        best = max(json.loads(mfu_path.read_text())["runs"], key=lambda r: r["mfu"] or 0)
        lines.append(
            f"- One GPU, bf16: {best['tflops_per_rank']:.0f} TFLOP/s, MFU "
            f"{100 * best['mfu']:.1f} % (paper: 23–28 % at 256 GPUs)."
        )
    if not lines:
        return
    text = (
        "\n".join(lines)
        + "\n\nDetails, machines and the communication model: [BENCHMARKS.md](BENCHMARKS.md).\n"
    )
    replace_marked_block(ROOT / "README.md", "headline", text)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
