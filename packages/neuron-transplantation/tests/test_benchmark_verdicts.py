"""The verdicts that `benchmarks/run.py` writes under its tables: the issue's targets judged from
the measured figures, never typed by hand, and the same after a round trip through the JSON
files that `--render` reads."""

import importlib.util
import json
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("nt_benchmarks_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cost(model, members, timings):
    """Cost groups: method -> (seconds, MiB), one process each."""
    return [
        {
            "model": model,
            "members": members,
            "method": method,
            "runs": [{"seconds": s, "peak_growth_mib": m}],
        }
        for method, (s, m) in timings.items()
    ]


def test_cost_verdicts_follow_the_figures(bench):
    data = {
        "description": "synthetic",
        "groups": _cost("256", 2, {"nt": (0.010, 1.0), "nt-wide": (0.02, 9.0), "ot": (0.150, 5.0)})
        + _cost("1024", 2, {"nt": (0.020, 1.0), "ot": (0.150, 5.0)})
        + _cost("resnet18", 2, {"nt": (0.010, 6.0), "ot": (0.150, 5.0)}),
    }
    lines = bench.cost_render(data).splitlines()
    assert (
        "- met: NT fuses at least 10× faster than OT with less memory on MLP width 256, "
        "2 members (15.0× faster: 10.0 vs 150.0 ms; 1.0 vs 5.0 MiB)" in lines
    )
    assert any(
        line.startswith("- MISSED:") and "width 1024" in line and "7.5×" in line for line in lines
    )
    assert any(line.startswith("- MISSED:") and "resnet18" in line for line in lines)
    assert any("nt-wide" in line and "no less memory" in line for line in lines)


def _runs(nt_final, best, nt_to_best, ot_to_best, kd_final):
    run = {
        method: {"fused": 0.5, "epoch 1": 0.6, "epoch 5": 0.7, "to best": 3, "seconds": 0.1}
        for method in ("nt", "ot", "wm", "avg")
    }
    run["nt"].update({"fused": 0.6, "epoch 5": nt_final, "to best": nt_to_best})
    run["ot"]["to best"] = ot_to_best
    run["kd"] = {
        "fused": best,
        "epoch 1": best,
        "epoch 5": kd_final,
        "to best": 0,
        "setting": [4.0, 0.9],
    }
    run["best member"] = {"fused": best}
    run["ensemble"] = {"fused": 0.95}
    return [run]


def test_fusion_verdicts_follow_the_figures(bench):
    met = bench._fusion_verdicts("here", _runs(0.92, 0.90, 2, 3, 0.92 + 1e-12), 5)
    assert (
        met[0] == "- met: NT after 5 epochs of fine-tuning beats the best member on here "
        "(92.00 vs 90.00 %)"
    )
    assert met[1].startswith("- met: NT needs no more fine-tuning than OT") and "(2 vs 3" in met[1]
    assert "NT is number 1 of 4 fusion methods" in met[2]
    assert "is level with NT" in met[3]  # equal as shown, whatever the rounding noise
    missed = bench._fusion_verdicts("here", _runs(0.90, 0.90, None, 3, 0.95), 5)
    assert missed[0].startswith("- MISSED:") and missed[1].startswith("- MISSED:")
    assert "(> 5 vs 3 epochs)" in missed[1] and "is ahead of NT" in missed[3]
    neither = bench._fusion_verdicts("here", _runs(0.90, 0.90, None, None, 0.95), 5)
    assert neither[1].startswith("- open:") and "neither reached it within 5" in neither[1]


def test_render_from_json_equals_render_from_runs(bench, tmp_path):
    data = {
        "description": "synthetic",
        "milestones": (1, 5),
        "groups": [{"data": "digits", "members": 2, "runs": _runs(0.9, 0.9, None, 2, 0.9)}],
    }
    path = bench.write_json_atomic(tmp_path / "accuracy.json", data)
    assert bench.accuracy_render(json.loads(path.read_text())) == bench.accuracy_render(data)
