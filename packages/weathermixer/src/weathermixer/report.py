"""The files of an evaluation: ``skill.json`` and its plots.

``evaluate`` computes a ``Skill`` on every rank; the command line and the demo write it with
``write_skill`` from rank 0.
"""

from __future__ import annotations

import os
from pathlib import Path

from shared_hpc import write_json_atomic
from weathermixer.evaluate import Skill, shown_channels
from weathermixer.plots import map_plot, skill_plot


def skill_files(channels: list[str]) -> list[str]:
    """The files ``write_skill`` writes for a model of these state channels (to check them
    before the evaluation).

    Args:
        channels: The state channels, in the model's order.
    """
    return ["skill.json", "skill_vs_lead.png", f"map_{shown_channels(channels)[0]}.png"]


def write_skill(skill: Skill, folder: str | os.PathLike[str]) -> list[str]:
    """Write ``skill.json``, ``skill_vs_lead.png`` and, with an example forecast, its map.

    Args:
        skill: The scores.
        folder: Where the files go (it must exist).

    Returns:
        The names of the files written.
    """
    folder = Path(folder)
    write_json_atomic(folder / "skill.json", skill.to_dict())
    shown = skill.shown_channels
    skill_plot(skill, shown, folder / "skill_vs_lead.png")
    written = ["skill.json", "skill_vs_lead.png"]
    example = skill.example
    if example is not None:
        channel = shown[0]
        c = skill.channels.index(channel)
        fc, truth = example.forecast[c], example.truth[c]
        map_plot(
            example.latitude,
            example.longitude,
            {"truth": truth, "forecast": fc, "error": fc - truth},
            f"{channel} at +{skill.leads_h[-1]:g} h from {example.initial_time}",
            folder / f"map_{channel}.png",
        )
        written.append(f"map_{channel}.png")
    return written
