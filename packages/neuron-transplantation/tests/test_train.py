"""Training and fine-tuning: selections use the validation split, never the test split (the
authors validated on the test loader); fine-tuning a fused model recovers accuracy."""

import dataclasses

import pytest
import torch
from neuron_transplantation.checkpoint import CheckpointError, DataInfo
from neuron_transplantation.config import FinetuneConfig, TrainConfig
from neuron_transplantation.data import load_split
from neuron_transplantation.fusion import Ensemble, fuse
from neuron_transplantation.train import accuracy, finetune, train_members
from torch.utils.data import TensorDataset

from shared_hpc import SerialComm

CONFIG = TrainConfig(members=2, epochs=3, width=16)


@pytest.fixture(scope="module")
def split():
    return load_split("digits", 0.2, 0)


def test_the_splits_are_disjoint_and_the_test_set_is_fixed(split):
    def rows(data):
        return {tuple(r.tolist()) for r in data.tensors[0].flatten(1)}

    train, validation, test = rows(split.train), rows(split.validation), rows(split.test)
    assert len(test) > 300 and not (test & train) and not (test & validation)
    other = load_split("digits", 0.2, seed=1)
    assert torch.equal(other.test.tensors[0], split.test.tensors[0])
    assert not torch.equal(other.validation.tensors[0], split.validation.tensors[0])


def test_the_test_labels_influence_neither_training_nor_selection(split):
    members = train_members(CONFIG, split, SerialComm())
    labels = split.test.tensors[1]
    scrambled = dataclasses.replace(
        split, test=TensorDataset(split.test.tensors[0], (labels + 1) % split.classes)
    )
    again = train_members(CONFIG, scrambled, SerialComm())
    assert again.validation == members.validation and again.best() == members.best()
    for a, b in zip(members.models, again.models, strict=True):
        for key, value in a.state_dict().items():
            assert torch.equal(value, b.state_dict()[key])
    assert accuracy(again.models[0], scrambled.test) < 0.2  # the scrambled labels were used


def test_members_differ_and_fine_tuning_recovers_a_fused_model(split):
    members = train_members(dataclasses.replace(CONFIG, epochs=10), split, SerialComm())
    first, second = (m.layers[1].weight for m in members.models)
    assert not torch.allclose(first, second)
    fused = fuse(members.models, split.train.tensors[0][:8], "nt").model
    curve = finetune(fused, split, FinetuneConfig(epochs=3))
    assert len(curve) == 4
    assert curve[-1] > curve[0] and curve[-1] > 0.85
    assert accuracy(Ensemble(members.models), split.validation) > 0.85


def test_data_other_than_the_checkpoints_are_refused(split):
    info = DataInfo.of(split, 0.2, 0)
    assert info.load().digest == split.digest
    with pytest.raises(CheckpointError, match="data differ"):
        DataInfo("digits", 0.2, 0, "0" * 64).load()


def test_mnist1d_is_generated_locally_and_split():
    data = load_split("mnist1d", 0.2, 0)
    assert data.input_shape == (40,) and data.classes == 10
    assert (len(data.train), len(data.validation), len(data.test)) == (3200, 800, 1000)
    assert abs(float(data.train.tensors[0].mean())) < 1e-3
