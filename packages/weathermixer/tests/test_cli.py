"""The command line: the demo end to end, benchmark, evaluate, and one-line errors."""

from __future__ import annotations

import json

import pytest
from weathermixer.cli import main

from shared_hpc import RunRecord


def test_quick_demo_writes_record_plots_and_skill(tmp_path):
    assert main(["demo", "--output", str(tmp_path), "--quick", "--threads", "1"]) == 0
    record = RunRecord.read(tmp_path / "results.json")
    assert record.package == "weathermixer"
    assert record.headline["name"].startswith("Z500 RMSE skill vs persistence")
    assert record.energy["seconds"] > 0
    for png in ("skill_vs_lead.png", "map_z500.png", "training_loss.png"):
        assert (tmp_path / png).stat().st_size > 1000
    skill = json.loads((tmp_path / "skill.json").read_text())
    assert len(skill["model"]["z500"]["rmse"]) == 4
    # persistence is exact at lead 0 only; at 6 h it must have a positive error
    assert skill["persistence"]["z500"]["rmse"][0] > 0


@pytest.mark.slow
def test_full_demo_beats_persistence(tmp_path):
    assert main(["demo", "--output", str(tmp_path)]) == 0
    record = RunRecord.read(tmp_path / "results.json")
    assert record.headline["value"] > 0
    assert record.wall_time_s < 180


def test_evaluate_and_benchmark_commands(tmp_path, capsys, monkeypatch):
    # Relative paths at training time; evaluation from another directory still finds the data.
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--output", "first", "--quick", "--threads", "1"]) == 0
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    out = tmp_path / "again"
    assert (
        main(
            [
                "evaluate",
                "--run",
                "../first/run",
                "--output",
                str(out),
                "--leads",
                "6,12",
                "--stride-h",
                "24",
            ]
        )
        == 0
    )
    assert json.loads((out / "skill.json").read_text())["leads_h"] == [6.0, 12.0]
    result = tmp_path / "bench.json"
    assert (
        main(
            [
                "benchmark",
                "--nlat",
                "16",
                "--embed-dim",
                "16",
                "--token-hidden",
                "16",
                "--channel-hidden",
                "32",
                "--depth",
                "1",
                "--steps",
                "2",
                "--warmup",
                "1",
                "--output",
                str(result),
            ]
        )
        == 0
    )
    ranks = json.loads(result.read_text())["ranks"]
    assert ranks[0]["parameters_rank"] == ranks[0]["parameters_total"]
    assert ranks[0]["step_s"] > 0 and ranks[0]["activation_bytes"] > 0
    assert "ms/step" in capsys.readouterr().out


def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "missing.nc"), "--output", str(tmp_path)]) == 2
    assert "no such data file" in capsys.readouterr().err
    assert main(["train", "--output", str(tmp_path)]) == 2
    assert "no data" in capsys.readouterr().err
    assert main(["benchmark", "--grid", "2x1"]) == 2
    assert "world size 1 is not divisible" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
