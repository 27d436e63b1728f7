"""The shared-hpc command line: info, energy -- COMMAND, demo, and bad input."""

from __future__ import annotations

import json
import sys

import pytest

from shared_hpc import RunRecord
from shared_hpc.cli import main


def test_info_json_names_what_the_machine_offers(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cpu"]["logical_cpus"] >= 1
    assert set(info["energy"]["methods"]) >= {"cpu", "dram"}
    used = set(info["energy"]["methods"].values())
    assert info["energy"]["method"] == "+".join(sorted(used))
    assert info["mpi"]["launched_by"] is None


def test_info_text(run_command):
    out = run_command("shared_hpc", "info")
    assert out.returncode == 0, out.stderr
    assert "method used by EnergyMeter" in out.stdout and "CPU" in out.stdout


def test_energy_of_a_command(tmp_path, run_command):
    target = tmp_path / "e.json"
    out = run_command(
        "shared_hpc",
        "energy",
        "--output",
        str(target),
        "--",
        sys.executable,
        "-c",
        "import time; time.sleep(0.5)",
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(target.read_text())
    assert result["returncode"] == 0 and result["command"][0] == sys.executable
    energy = result["energy"]
    assert energy["seconds"] >= 0.5 and energy["total_joules"] > 0 and energy["nodes"] == 1
    assert energy["method"] in out.stderr


def test_energy_passes_the_exit_code_on(tmp_path, run_command):
    out = run_command(
        "shared_hpc",
        "energy",
        "--output",
        str(tmp_path / "e.json"),
        "--",
        sys.executable,
        "-c",
        "raise SystemExit(3)",
    )
    assert out.returncode == 3
    assert json.loads((tmp_path / "e.json").read_text())["returncode"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["energy", "--"], "no command given"),
        (["energy", "--", "surely-not-a-command-xyz"], "command not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, tmp_path):
    assert main([*args[:1], "--output", str(tmp_path / "e.json"), *args[1:]]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "e.json").exists()


def test_unusable_output_is_refused_before_the_command_runs(capsys, tmp_path):
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').close()"
    assert main(["energy", "--output", str(tmp_path), "--", sys.executable, "-c", code]) == 2
    assert "is a folder, not a file" in capsys.readouterr().err
    assert not marker.exists()


def test_demo_writes_record_and_plot(tmp_path, run_command):
    out = run_command("shared_hpc", "demo", "--output", str(tmp_path), "--steps", "150")
    assert out.returncode == 0, out.stderr
    record = RunRecord.read(tmp_path / "results.json")
    assert record.package == "shared-hpc" and record.headline["unit"] == "J"
    assert record.metrics["val_mse_final"] < 0.5 * record.metrics["val_mse_initial"]  # it learned
    assert record.energy["total_joules"] > 0 and record.energy["method"]
    assert record.headline["value"] == pytest.approx(
        1000 * record.energy["total_joules"] / (150 * 256)
    )
    png = tmp_path / "demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(record.artifacts) == {"demo.png", "losses.json"}


def test_demo_rejects_bad_steps(tmp_path, run_command):
    out = run_command("shared_hpc", "demo", "--output", str(tmp_path), "--steps", "0")
    assert out.returncode == 2 and "steps must be at least 1" in out.stderr
    assert out.stderr.count("\n") == 1 and out.stdout == ""
    assert not (tmp_path / "results.json").exists()
