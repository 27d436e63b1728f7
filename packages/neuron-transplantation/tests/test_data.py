"""Readers of the official data files, tested on small files written here in each real format
(IDX, CIFAR's pickled batches, SVHN's MATLAB files, CSV), and through the command line."""

import gzip
import os
import pickle

import numpy as np
import pytest
import torch
from neuron_transplantation.cli import main
from neuron_transplantation.data import load_split
from neuron_transplantation.readers import read_csv, read_images

from shared_hpc import UserError

RNG = np.random.default_rng(0)


def _idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def _images(count, channels, side):
    return RNG.integers(0, 256, (count, channels, side, side), dtype=np.uint8)


def test_mnist_is_read_from_gzipped_idx_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    x, x_test = _images(30, 1, 28)[:, 0], _images(10, 1, 28)[:, 0]
    y, y_test = RNG.integers(0, 10, 30), RNG.integers(0, 10, 10)
    _idx(raw / "train-images-idx3-ubyte.gz", x)
    _idx(raw / "train-labels-idx1-ubyte.gz", y)
    _idx(raw / "t10k-images-idx3-ubyte.gz", x_test)
    _idx(raw / "t10k-labels-idx1-ubyte.gz", y_test)
    got = read_images("mnist", tmp_path)
    assert got[0].shape == (30, 1, 28, 28) and np.array_equal(got[0][:, 0], x)
    assert np.array_equal(got[1], y) and np.array_equal(got[3], y_test)
    split = load_split("mnist", 0.2, 0, str(tmp_path))
    assert split.input_shape == (1, 28, 28) and (len(split.train), len(split.test)) == (24, 10)
    assert abs(float(split.train.tensors[0].mean())) < 1e-4  # standardised on the training part


def _cifar_batch(path, count, key):
    images = _images(count, 3, 32)
    labels = RNG.integers(0, 10, count).tolist()
    batch = {"batch_label": "tiny", key: labels, "data": images.reshape(count, -1)}
    path.write_bytes(pickle.dumps(batch, protocol=2))
    return images, labels


@pytest.mark.parametrize(("name", "folder"), [("cifar10", "cifar-10-batches-py"),
                                              ("cifar100", "cifar-100-python")])  # fmt: skip
def test_cifar_is_read_from_its_python_batches(tmp_path, name, folder):
    home = tmp_path / folder
    home.mkdir()
    key = "labels" if name == "cifar10" else "fine_labels"
    train = ["train"] if name == "cifar100" else [f"data_batch_{i}" for i in range(1, 6)]
    written = [_cifar_batch(home / part, 4, key) for part in train]
    test_images, _ = _cifar_batch(home / ("test" if name == "cifar100" else "test_batch"), 3, key)
    x, y, x_test, _ = read_images(name, tmp_path)
    assert x.shape == (4 * len(train), 3, 32, 32) and x_test.shape == (3, 3, 32, 32)
    assert np.array_equal(x[:4], written[0][0]) and y[:4].tolist() == written[0][1]
    assert np.array_equal(x_test, test_images)  # channel planes R, G, B of 32x32 each


class Payload:
    def __reduce__(self):
        return (os.system, ("echo owned",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    home = tmp_path / "cifar-100-python"
    home.mkdir()
    (home / "train").write_bytes(pickle.dumps({"data": Payload(), "fine_labels": [0]}))
    with pytest.raises(UserError, match=r"is not a CIFAR batch: refusing (posix|os|nt)\.system"):
        read_images("cifar100", tmp_path)


def test_svhn_is_read_from_its_matlab_files(tmp_path):
    from scipy.io import savemat

    for name, count in (("train_32x32.mat", 6), ("test_32x32.mat", 4)):
        images = _images(count, 3, 32)
        labels = np.array([10, 1, 2, 3, 4, 5][:count])[:, None]
        savemat(tmp_path / name, {"X": np.transpose(images, (2, 3, 1, 0)), "y": labels})
    x, y, x_test, y_test = read_images("svhn", tmp_path)
    assert x.shape == (6, 3, 32, 32) and y.tolist() == [0, 1, 2, 3, 4, 5]
    assert x_test.shape == (4, 3, 32, 32) and y_test.tolist() == [0, 1, 2, 3]
    assert np.array_equal(x_test, images)


def _csv(path, rows=60):
    lines = ["width,species,height"]
    for i in range(rows):
        kind = ["setosa", "virginica", "versicolor"][i % 3]
        lines.append(f"{i % 3 + RNG.normal(0, 0.1):.3f},{kind},{RNG.normal():.3f}")
    path.write_text("\n".join(lines) + "\n")


def test_a_csv_with_a_label_column_is_read_and_split(tmp_path):
    _csv(tmp_path / "plants.csv")
    x, y, names = read_csv(tmp_path / "plants.csv", "species")
    assert x.shape == (60, 2) and names == ["setosa", "versicolor", "virginica"]
    assert y[:3].tolist() == [0, 2, 1]
    split = load_split("csv", 0.25, 0, str(tmp_path / "plants.csv"), "species")
    assert (len(split.train), len(split.validation), len(split.test)) == (36, 12, 12)
    assert split.classes == 3 and split.input_shape == (2,)
    assert torch.allclose(split.train.tensors[0].std(0), torch.ones(2), atol=0.3)


@pytest.mark.parametrize(
    ("text", "message"),
    [("a,b\n1,x\n2,y\n", "no column 'species'"),
     ("a,species\n1,x\nfoo,y\n", "a feature is not a number"),
     ("a,species\n1,x\n2\n", "line 3 has 1 fields, not 2"),
     ("a,species\n1,x\n2,x\n", "fewer than two classes")],
)  # fmt: skip
def test_a_bad_csv_is_refused_in_one_line(tmp_path, text, message):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(UserError, match=message):
        read_csv(tmp_path / "bad.csv", "species")


def test_missing_files_are_named_and_nothing_is_downloaded(tmp_path):
    with pytest.raises(UserError, match=r"train_32x32.mat not found in .* \(nothing is downloaded"):
        read_images("svhn", tmp_path)


def test_an_ensemble_trained_on_a_csv_can_be_fused_and_fine_tuned(tmp_path):
    _csv(tmp_path / "plants.csv", rows=90)
    run = tmp_path / "run"
    args = ["train-ensemble", "--output", str(run), "--dataset", "csv", "--data",
            str(tmp_path / "plants.csv"), "--label", "species", "--members", "2",
            "--epochs", "5", "--width", "8"]  # fmt: skip
    assert main(args) == 0
    assert (
        main(["fuse", "--ensemble", str(run / "members.pt"), "--output", str(tmp_path / "f")]) == 0
    )
    assert main(["train-ensemble", "--output", str(tmp_path / "x"), "--dataset", "svhn"]) == 2
