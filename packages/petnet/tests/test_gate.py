"""GATE readers: volume IDs → crystals, ASCII and ROOT files in GATE's layout, bad files."""

import numpy as np
import pytest
import uproot
from petnet.cli import main
from petnet.gate import GateSystem, load_gate_system, read_gate
from petnet.scanner import Scanner
from petnet.singles import Singles

from shared_hpc import UserError

# the small scanner (4 rings × 64) as GATE builds it: 16 rsectors of 4 × 4 crystals
SMALL_TOML = """
rsectors = 16
crystals = [4, 4]

[scanner]
name = "small"
"""


def small_system(tmp_path) -> GateSystem:
    path = tmp_path / "system.toml"
    path.write_text(SMALL_TOML)
    return load_gate_system(path)


def gate_ids(crystal: np.ndarray) -> dict[str, np.ndarray]:
    """GATE's IDs of petnet crystals of the small scanner, worked out by hand."""
    k, ring = crystal % 64, crystal // 64
    zeros = np.zeros_like(crystal)
    return {
        "rsectorID": k // 4,
        "moduleID": zeros,
        "submoduleID": zeros,
        "crystalID": k % 4 + 4 * ring,  # cubic array: y fastest, then z
        "layerID": zeros,
    }


def test_volume_ids_map_to_crystals_of_a_nested_hierarchy():
    scanner = Scanner(n_rings=4, crystals_per_ring=32)
    system = GateSystem(rsectors=8, modules=(1, 2), crystals=(4, 2), scanner=scanner)
    ids = {
        "rsectorID": np.array([0, 3, 7, 0]),
        "moduleID": np.array([0, 1, 1, 0]),
        "submoduleID": np.array([0, 0, 0, 0]),
        "crystalID": np.array([0, 5, 7, 1]),
        "layerID": np.array([0, 0, 0, 0]),
    }
    # rsector 3, module z 1, crystal (y 1, z 1): k = 3·4 + 1, ring = 1·2 + 1
    assert system.crystal_index(ids).tolist() == [0, 3 * 32 + 13, 3 * 32 + 31, 1]
    grid = np.meshgrid(range(8), range(2), range(8), indexing="ij")
    every = dict(
        zip(("rsectorID", "moduleID", "crystalID"), (g.ravel() for g in grid), strict=True)
    )
    every.update(submoduleID=np.zeros(128, int), layerID=np.zeros(128, int))
    assert sorted(system.crystal_index(every).tolist()) == list(range(128))  # one to one


def test_system_toml_fills_the_scanner_shape_and_refuses_a_mismatch(tmp_path):
    system = small_system(tmp_path)
    assert (system.scanner.n_rings, system.scanner.crystals_per_ring) == (4, 64)
    bad = tmp_path / "bad.toml"
    bad.write_text(SMALL_TOML + "n_rings = 5\n")
    with pytest.raises(UserError, match="4 rings × 64 crystals"):
        load_gate_system(bad)


def write_ascii(path, singles: Singles, order: np.ndarray) -> None:
    """GATE's Singles.dat, formatted as GateSingleDigi writes it, in the given line order."""
    ids = gate_ids(singles.crystal)
    lines = []
    for i in order:
        volume = " ".join(
            f"{v:5d}" for v in (0, *(int(ids[n][i]) for n in ids))
        )  # base, rsector, module, submodule, crystal, layer
        scatter = int(singles.scattered[i])
        lines.append(
            f" {0:7d} {int(singles.decay_id[i]):7d} {0:5d} {1.0:10.3e} {-2.0:10.3e} {0.5:10.3e}"
            f" {volume} {singles.time_ns[i] * 1e-9:30.23e} {singles.energy_kev[i] / 1e3:10.3e}"
            f" {10.0:10.3e} {20.0:10.3e} {-3.0:10.3e} {scatter:4d} {0:4d} {0:4d} {0:4d}"
            f" {'water' if scatter else 'NULL'} NULL"
        )
    path.write_text("\n".join(lines) + "\n")


def check_same(back: Singles, singles: Singles, energy_kev: float) -> None:
    assert back.scanner.n_crystals == singles.scanner.n_crystals
    assert np.array_equal(back.crystal, singles.crystal)
    assert np.allclose(back.time_ns, singles.time_ns, rtol=0, atol=1e-6)
    assert np.allclose(back.energy_kev, singles.energy_kev, rtol=0, atol=energy_kev)
    assert np.array_equal(back.scattered, singles.scattered)
    same_decay = back.decay_id[:, None] == back.decay_id[None, :]
    assert np.array_equal(same_decay, singles.decay_id[:, None] == singles.decay_id[None, :])


def test_ascii_singles_read_back_sorted_with_crystals_and_truth(test_singles, tmp_path):
    singles = test_singles.subset(slice(0, 400))
    order = np.argsort(singles.decay_id, kind="stable")  # GATE writes event by event
    path = tmp_path / "gateSingles.dat"
    write_ascii(path, singles, order)
    back = read_gate(path, small_system(tmp_path))
    check_same(back, singles, energy_kev=0.1)  # 4 significant digits of MeV


def test_root_singles_read_back_with_crystals_and_truth(test_singles, tmp_path):
    singles = test_singles.subset(slice(0, 400))
    order = np.argsort(singles.decay_id, kind="stable")
    ids = gate_ids(singles.crystal)
    branches = {
        "runID": np.zeros(len(order), np.int32),
        "eventID": singles.decay_id[order].astype(np.int32),
        "sourceID": np.zeros(len(order), np.int32),
        "time": singles.time_ns[order] * 1e-9,
        "energy": (singles.energy_kev[order] / 1e3).astype(np.float32),
        **{name: value[order].astype(np.int32) for name, value in ids.items()},
        "comptonPhantom": singles.scattered[order].astype(np.int32),
        "RayleighPhantom": np.zeros(len(order), np.int32),
    }
    path = tmp_path / "gate.root"
    with uproot.recreate(path) as file:
        file["Singles"] = branches
    back = read_gate(path, small_system(tmp_path))
    check_same(back, singles, energy_kev=1e-3)


def test_root_file_without_truth_reads_as_measured_data(tmp_path):
    path = tmp_path / "measured.root"
    with uproot.recreate(path) as file:
        file["Singles"] = {
            "time": np.array([2e-9, 1e-9]),
            "energy": np.array([0.511, 0.45], np.float32),
            **{name: np.array([1, 2], np.int32) for name in ("rsectorID", "crystalID")},
            **{name: np.zeros(2, np.int32) for name in ("moduleID", "submoduleID", "layerID")},
        }
    back = read_gate(path, small_system(tmp_path))
    assert not back.has_truth
    assert back.time_ns.tolist() == pytest.approx([1.0, 2.0])
    assert back.crystal.tolist() == [2 * 4 + 2, 1 * 4 + 1]  # rsector · 4 + crystal y


def test_root_file_without_needed_branch_is_refused_with_one_line(tmp_path, capsys):
    path = tmp_path / "nolayer.root"
    with uproot.recreate(path) as file:
        file["Singles"] = {
            "time": np.array([1e-9]),
            "energy": np.array([0.511], np.float32),
            **{n: np.zeros(1, np.int32) for n in ("rsectorID", "moduleID", "crystalID")},
        }
    system = tmp_path / "system.toml"
    system.write_text(SMALL_TOML)
    out = tmp_path / "out.h5"
    assert main(["convert", str(path), "--system", str(system), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "lacks the branches submoduleID, layerID" in err and len(err.splitlines()) == 1
    assert not out.exists()
    with uproot.recreate(tmp_path / "hits.root") as file:
        file["Hits"] = {"time": np.array([1e-9])}
    with pytest.raises(UserError, match="no 'Singles' tree"):
        read_gate(tmp_path / "hits.root", small_system(tmp_path))
    (tmp_path / "text.root").write_text("1 2 3\n")
    with pytest.raises(UserError, match="is not a ROOT file") as refused:
        read_gate(tmp_path / "text.root", small_system(tmp_path))
    assert "\n" not in str(refused.value)


def test_ascii_file_with_other_columns_or_ids_is_refused(test_singles, tmp_path):
    short = tmp_path / "masked.dat"
    short.write_text(" 0 1 0 1e-9 0.511\n")
    with pytest.raises(
        UserError, match=r"has 5 columns, a GATE cylindricalPET Singles\.dat has 23"
    ):
        read_gate(short, small_system(tmp_path))
    singles = test_singles.subset(slice(0, 10))
    path = tmp_path / "gateSingles.dat"
    write_ascii(path, singles, np.arange(10))
    other = GateSystem(rsectors=16, crystals=(4, 2), scanner=Scanner(n_rings=2))
    with pytest.raises(UserError, match="crystalID out of range"):
        read_gate(path, other)


def test_convert_command_writes_singles_that_sort_reads(test_singles, tmp_path, capsys):
    singles = test_singles.subset(slice(0, 300))
    path = tmp_path / "gateSingles.dat"
    write_ascii(path, singles, np.argsort(singles.decay_id, kind="stable"))
    system = tmp_path / "system.toml"
    system.write_text(SMALL_TOML)
    out = tmp_path / "singles.h5"
    assert main(["convert", str(path), "--system", str(system), "--output", str(out)]) == 0
    assert "300 singles (with ground truth)" in capsys.readouterr().out
    assert np.array_equal(Singles.load(out).crystal, singles.crystal)
    assert main(["sort", str(out), "--method", "gate"]) == 0
    assert "coincidences from 300 singles" in capsys.readouterr().out
