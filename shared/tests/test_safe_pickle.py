"""Pickled data sets load their arrays; a pickle that would run code is refused unrun."""

import os
import pickle

import numpy as np
import pytest

from shared_hpc import load_array_pickle


def test_arrays_and_containers_load_as_written(tmp_path):
    batch = {"data": np.arange(12, dtype=np.uint8).reshape(2, 6), "labels": [3, 7], b"k": "v"}
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        path = tmp_path / f"batch-{protocol}"
        path.write_bytes(pickle.dumps(batch, protocol=protocol))
        loaded = load_array_pickle(path)
        assert np.array_equal(loaded["data"], batch["data"]) and loaded["labels"] == [3, 7]
        assert loaded[b"k"] == "v"


class _Planted:
    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_a_pickle_that_would_run_code_is_refused_before_it_runs(tmp_path):
    planted = _Planted()
    planted.target = str(tmp_path / "ran")
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": planted}))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing posix\.mkdir"):
        load_array_pickle(path)
    assert not (tmp_path / "ran").exists()
