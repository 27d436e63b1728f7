"""Singles files: round trips and every kind of malformed input."""

import h5py
import numpy as np
import pytest
from petnet.scanner import preset
from petnet.singles import Singles

from shared_hpc import UserError
from shared_hpc.files import file_mode


@pytest.mark.parametrize("suffix", [".h5", ".npz"])
def test_round_trip_keeps_arrays_scanner_and_truth(train_singles, tmp_path, suffix):
    path = train_singles.save(tmp_path / f"data{suffix}")
    back = Singles.load(path)
    assert back.scanner == train_singles.scanner
    for name in ("time_ns", "crystal", "energy_kev", "decay_id", "scattered", "source_id"):
        assert np.array_equal(getattr(back, name), getattr(train_singles, name))
    assert back.meta["seed"] == train_singles.meta["seed"]
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind
    assert path.stat().st_mode & 0o777 == file_mode()  # as the umask says, not mkstemp's 0600


def test_unsorted_file_is_refused_unless_asked_to_sort(tmp_path):
    path = tmp_path / "unsorted.npz"
    np.savez(path, time_ns=[5.0, 1.0, 3.0], crystal=[0, 1, 2], energy_kev=[511.0] * 3)
    with pytest.raises(UserError, match="not sorted by time"):
        Singles.load(path, scanner=preset("small"))
    fixed = Singles.load(path, scanner=preset("small"), sort=True)
    assert fixed.time_ns.tolist() == [1.0, 3.0, 5.0] and fixed.crystal.tolist() == [1, 2, 0]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"time_ns": [0.0, 1.0], "crystal": [0, 1]}, "missing field"),
        ({"time_ns": [0.0, 1.0], "crystal": [0], "energy_kev": [1.0, 2.0]}, "has 1 entries"),
        ({"time_ns": [0.0, np.nan], "crystal": [0, 1], "energy_kev": [1.0, 2.0]}, "NaN"),
        ({"time_ns": [0.0, 1.0], "crystal": [0, 999], "energy_kev": [1.0, 2.0]}, "out of range"),
        ({"time_ns": [0.0, 1.0], "crystal": [0, -1], "energy_kev": [1.0, 2.0]}, "out of range"),
        ({"time_ns": [0.0, 1.0], "crystal": [0, 1], "energy_kev": [1.0, -2.0]}, "energies"),
        ({"time_ns": [[0.0, 1.0]], "crystal": [[0, 1]], "energy_kev": [[1.0, 2.0]]}, "1-D"),
        ({"time_ns": ["a", "b"], "crystal": [0, 1], "energy_kev": [1.0, 2.0]}, "not numeric"),
        (
            {"time_ns": [0.0], "crystal": [0], "energy_kev": [1.0], "decay_id": [1]},
            "both 'decay_id' and 'scattered'",
        ),
    ],
)
def test_malformed_files_raise_clear_errors(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})
    with pytest.raises(UserError, match=message):
        Singles.load(path, scanner=preset("small"))


def test_unreadable_foreign_and_missing_files(tmp_path):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"this is not HDF5")
    with pytest.raises(UserError, match="not a readable singles file"):
        Singles.load(garbage, scanner=preset("small"))
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as handle:
        handle.attrs["format"] = "somebody-else/2"
        handle.create_dataset("time_ns", data=[0.0])
    with pytest.raises(UserError, match="unknown format"):
        Singles.load(foreign)
    with pytest.raises(UserError, match="does not exist"):
        Singles.load(tmp_path / "missing.h5")
    no_scanner = tmp_path / "plain.npz"
    np.savez(no_scanner, time_ns=[0.0], crystal=[0], energy_kev=[511.0])
    with pytest.raises(UserError, match="no scanner"):
        Singles.load(no_scanner)
    with pytest.raises(UserError, match="file type"):
        Singles.load(no_scanner, scanner=preset("small")).save(tmp_path / "x.csv")


def test_empty_singles_save_and_load(tmp_path):
    empty = Singles(np.zeros(0), np.zeros(0, int), np.zeros(0), scanner=preset("small"))
    back = Singles.load(empty.save(tmp_path / "empty.h5"))
    assert len(back) == 0 and not back.has_truth


def test_concatenated_acquisitions_keep_their_coincidences(train_singles, test_singles):
    from petnet.metrics import true_pairs

    joined = Singles.concatenate([train_singles, test_singles], gap_ns=1000.0)
    assert len(joined) == len(train_singles) + len(test_singles)
    assert np.all(np.diff(joined.time_ns) >= 0)
    assert len(true_pairs(joined)) == len(true_pairs(train_singles)) + len(true_pairs(test_singles))
    gap = joined.time_ns[len(train_singles)] - joined.time_ns[len(train_singles) - 1]
    assert gap >= 1000.0
    with pytest.raises(UserError, match="same scanner"):
        other = Singles(np.zeros(1), np.zeros(1, int), np.ones(1), scanner=preset("clinical"))
        Singles.concatenate([train_singles, other])
