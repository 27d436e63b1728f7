"""energy-scaling sweeps AFNO over weathermixer's generated atmosphere (the ``[weather]``
extra): the data are generated once, read back as ERA5-style netCDF, and every point trains."""

import json

import pytest

pytest.importorskip("weathermixer")
pytest.importorskip("energy_scaling")


def test_an_afno_sweep_on_weathermixers_generated_atmosphere(tmp_path, run_command):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(
        'name = "afno-weather"\nranks = [1]\nglobal_batch = [4, 8]\nthreads = 1\n'
        '[model]\nname = "afno"\npatch = 4\nembed_dim = 16\ndepth = 1\nblocks = 4\n'
        '[data]\nsource = "weather"\nweather_nlat = 16\nweather_days = 8\n'
        'variables = ["z", "t2m"]\n'
        '[train]\nepochs = 1\noptimizer = "adamw"\nbase_lr = 0.001\ntarget = 2.0\n'
    )
    out = tmp_path / "run"
    done = run_command("energy_scaling", "sweep", "--config", sweep, "--output", out)
    assert done.returncode == 0, done.stderr
    generated = list(out.glob("weather-nlat16-8d.nc"))
    assert len(generated) == 1
    stored = json.loads((out / "sweep.json").read_text())
    assert stored["data"]["path"] == str(generated[0])
    record = json.loads((out / "points" / "r1-g8-l8" / "results.json").read_text())
    metrics = record["metrics"]
    assert metrics["metric"] == "lat-weighted RMSE"
    assert 0 < metrics["final_metric"] < 2.0  # normalised state: persistence-like skill or better
    assert metrics["updates"] == (32 - 1 - round(31 * 0.2)) // 8  # 8 days of 6-hourly states
    analysed = run_command("energy_scaling", "analyze", out, "--output", tmp_path / "report")
    assert analysed.returncode == 0, analysed.stderr
    assert "afno" in (tmp_path / "report" / "report.md").read_text()
