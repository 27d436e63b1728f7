"""Helpers of the benchmark scripts: where results go, BENCHMARKS.md sections and the README's
headline paragraph (the machine line, tables and block rewriting come from
``shared_hpc.bench``)."""

from __future__ import annotations

import json
from pathlib import Path

from shared_hpc.bench import replace_marked_block

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def write_section(name: str, text: str) -> Path:
    """Replace the section ``name`` of BENCHMARKS.md (appended if it is new), then the
    README's headline paragraph from whatever results exist."""
    path = replace_marked_block(ROOT / "BENCHMARKS.md", name, text, append=True)
    update_readme()
    return path


def skill_wins(tab: dict, names: tuple[str, ...]) -> tuple[int, int]:
    """(cells where the model beats every baseline, cells) over variables, scores, leads."""
    wins = cells = 0
    for name in names:
        for score in ("rmse", "acc"):
            model = tab["model"][name][score]
            for k in range(len(tab["leads_h"])):
                baselines = ("persistence", "damped_persistence", "climatology")
                others = [tab[o][name][score][k] for o in baselines]
                others = [o for o in others if o is not None]
                cells += 1
                wins += model[k] < min(others) if score == "rmse" else model[k] > max(others)
    return wins, cells


def update_readme() -> None:
    """Write the README's headline paragraph from benchmarks/results/*.json."""
    lines = []
    skill_path, scaling_path = RESULTS / "skill.json", RESULTS / "scaling.json"
    tab = json.loads(skill_path.read_text()) if skill_path.exists() else {}
    if "damped_persistence" in tab:  # written by the skill benchmark of 0.2
        lead = tab["leads_h"][-1]
        kinds = ("model", "persistence", "damped_persistence", "climatology")
        m, p, d, c = (tab[k]["z500"]["rmse"][-1] for k in kinds)
        wins, cells = skill_wins(tab, ("z500", "t850", "t2m", "u10", "msl"))
        lines.append(
            f"- Skill on a held-out year of the generated two-layer atmosphere (32×64): Z500 "
            f"RMSE at +{lead:g} h {m:.0f} m²/s² against {p:.0f} for persistence, {d:.0f} for "
            f"damped persistence and {c:.0f} for the climatology of a separate 4-year record; "
            f"WeatherMixer beats every baseline in {wins} of {cells} (variable, score, lead) "
            "cells."
        )
        other_path = RESULTS / "skill_other_seed.json"
        if other_path.exists():
            wins, cells = skill_wins(
                json.loads(other_path.read_text()), ("z500", "t850", "t2m", "u10", "msl")
            )
            lines.append(
                f"- Scored with `evaluate --data` on another seed's file: {wins} of {cells} cells."
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
