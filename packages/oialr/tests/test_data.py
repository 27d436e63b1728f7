"""The recipes' data: splits, shapes, the CIFAR-10 reader on files in the real format."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from oialr import TrainConfig
from oialr.data import load_split

from shared_hpc import UserError


def test_digits_split_is_disjoint_standardised_and_seeded():
    split = load_split("digits", TrainConfig())
    assert (len(split.train), len(split.validation), len(split.test)) == (1221, 216, 360)
    assert split.task == "classify" and split.outputs == 10 and split.input_shape == (64,)
    x = split.train.tensors[0]
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std()) - 1) < 1e-2
    other = load_split("digits", TrainConfig(seed=1))
    assert not torch.equal(other.validation.tensors[0], split.validation.tensors[0])
    assert torch.equal(other.test.tensors[1], split.test.tensors[1])  # one test set for all


def test_cifar10_is_read_from_files_in_the_real_format(cifar_root):
    split = load_split("cifar10", TrainConfig(data=str(cifar_root)))
    assert len(split.train) + len(split.validation) == 200 and len(split.test) == 40
    image, label = split.test[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and 0 <= int(label) < 10
    augmented = torch.stack([split.train[0][0] for _ in range(8)])
    assert not all(torch.equal(augmented[0], a) for a in augmented)  # crops and flips vary


def test_missing_or_foreign_cifar_files_are_one_line(tmp_path, cifar_root):
    with pytest.raises(UserError, match=r"CIFAR-10 not found: .* lacks data_batch_1"):
        load_split("cifar10", TrainConfig(data=str(tmp_path)))
    folder = tmp_path / "planted"
    folder.mkdir()
    os.symlink(cifar_root / "cifar-10-batches-py", folder / "cifar-10-batches-py")
    split = load_split("cifar10", TrainConfig(data=str(folder)))  # a link to real data is fine
    assert len(split.test) == 40


def test_a_pickle_that_would_run_code_is_refused(tmp_path, cifar_root):
    import shutil

    root = tmp_path / "evil"
    shutil.copytree(cifar_root, root)

    class Exploit:
        def __reduce__(self):
            return (os.system, ("touch pwned",))

    (root / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({"data": Exploit()}))
    with pytest.raises(UserError, match=r"is not a CIFAR-10 batch: refusing posix\.system"):
        load_split("cifar10", TrainConfig(data=str(root)))
    assert not (tmp_path / "pwned").exists()


def test_mnist1d_has_its_published_shape():
    pytest.importorskip("mnist1d")
    split = load_split("mnist1d", TrainConfig())
    assert len(split.train) + len(split.validation) == 4000 and len(split.test) == 1000
    assert split.input_shape == (40,) and split.outputs == 10


@pytest.mark.parametrize(
    ("dataset", "window", "horizon", "package"),
    [("seattle", 168, 24, "vega_datasets"), ("taylor", 336, 48, "pmdarima")],
)
def test_series_windows_forecast_the_next_day_in_time_order(dataset, window, horizon, package):
    pytest.importorskip(package)
    split = load_split(dataset, TrainConfig())
    x, y = split.train.tensors
    assert x.shape[1:] == (window, 1) and y.shape[1] == split.outputs == horizon
    # consecutive windows: the second window's input is the first one's, one hour later
    assert torch.equal(x[1, :-1], x[0, 1:])
    assert torch.equal(y[0, 0], x[1, -1, 0])
    assert len(split.test) > 0 and len(split.validation) > 0


def test_an_unknown_dataset_is_named():
    with pytest.raises(UserError, match="unknown dataset 'imagenet'"):
        load_split("imagenet", TrainConfig())
