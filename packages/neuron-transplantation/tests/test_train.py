"""Training and fine-tuning: selections use the validation split, never the test split (the
authors validated on the test loader); fine-tuning a fused model recovers accuracy."""

import copy
import dataclasses

import pytest
import torch
from neuron_transplantation.checkpoint import CheckpointError, DataInfo
from neuron_transplantation.compare import compare
from neuron_transplantation.config import CompareConfig, FinetuneConfig, TrainConfig
from neuron_transplantation.data import load_split
from neuron_transplantation.distill import distill
from neuron_transplantation.federated import fedavg
from neuron_transplantation.fusion import Ensemble, fuse
from neuron_transplantation.train import (
    accuracy,
    finetune,
    reset_batch_norm,
    shard,
    train_members,
)
from torch.utils.data import TensorDataset

from shared_hpc import SerialComm, UserError

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


def test_distillation_moves_the_student_towards_the_ensemble(split):
    members = train_members(dataclasses.replace(CONFIG, epochs=4), split, SerialComm())
    x = split.train.tensors[0]
    teacher = torch.log_softmax(Ensemble(members.models)(x), 1).detach()

    def divergence(model):
        with torch.no_grad():
            own = torch.log_softmax(model(x), 1)
        return float(torch.nn.functional.kl_div(own, teacher, log_target=True, reduction="sum"))

    best = members.best()
    student = copy.deepcopy(members.models[best])
    curve = distill(
        members.models, student, split, FinetuneConfig(epochs=3), temperature=1.0, alpha=1.0
    )
    assert len(curve) == 4 and curve[0] == pytest.approx(members.validation[best])
    assert divergence(student) < 0.5 * divergence(members.models[best])


def test_shards_are_disjoint_and_cover_the_training_data(split):
    parts = [shard(split.train, i, 3, seed=0) for i in range(3)]
    rows = [{tuple(r.tolist()) for r in p.tensors[0].flatten(1)} for p in parts]
    assert sum(len(p) for p in parts) == len(split.train)
    assert not (rows[0] & rows[1]) and not (rows[1] & rows[2])
    members = train_members(dataclasses.replace(CONFIG, shards=True), split, SerialComm())
    alone = train_members(dataclasses.replace(CONFIG, shards=False), split, SerialComm())
    assert not torch.equal(members.models[0].layers[1].weight, alone.models[0].layers[1].weight)


def test_dirichlet_shards_are_disjoint_cover_the_data_and_are_skewed_by_class(split):
    def class_shares(parts):
        counts = torch.stack([torch.bincount(p.tensors[1], minlength=10) for p in parts])
        return counts / counts.sum(1, keepdim=True)

    skewed = [shard(split.train, i, 2, seed=0, dirichlet=0.1) for i in range(2)]
    again = [shard(split.train, i, 2, seed=0, dirichlet=0.1) for i in range(2)]
    random = [shard(split.train, i, 2, seed=0) for i in range(2)]
    rows = [{tuple(r.tolist()) for r in p.tensors[0].flatten(1)} for p in skewed]
    assert sum(len(p) for p in skewed) == len(split.train) and not (rows[0] & rows[1])
    assert torch.equal(skewed[0].tensors[0], again[0].tensors[0])  # every rank cuts the same
    distance = (class_shares(skewed)[0] - class_shares(skewed)[1]).abs().sum() / 2
    iid = (class_shares(random)[0] - class_shares(random)[1]).abs().sum() / 2
    assert distance > 0.4 and iid < 0.1
    with pytest.raises(UserError, match="no draw gave all 100 shards 10 samples"):
        shard(split.train, 0, 100, seed=0, dirichlet=0.01)


def test_fedavg_learns_from_every_shard_where_averaging_strangers_does_not(split):
    config = dataclasses.replace(CONFIG, members=3, epochs=9, width=32, lr=0.05, shards=True)
    _, curve = fedavg(config, split, rounds=3, comm=SerialComm())
    assert len(curve) == 3 and curve[-1] > 0.8 and curve[-1] > curve[0]
    strangers = train_members(config, split, SerialComm())  # independent initialisations
    assert accuracy(fuse(strangers.models, split.train.tensors[0][:8], "avg").model,
                    split.validation) < curve[-1] - 0.2  # fmt: skip
    with pytest.raises(UserError, match="must divide the epochs"):
        fedavg(config, split, rounds=2, comm=SerialComm())


def test_a_rerun_resumes_member_by_member_and_refuses_other_settings(split, tmp_path):
    first = train_members(CONFIG, split, SerialComm(), folder=tmp_path)
    (tmp_path / "members" / "member-1.pt").unlink()  # as if the run died during member 1
    trained = []
    again = train_members(CONFIG, split, SerialComm(), lambda i, e, a: trained.append(i), tmp_path)
    assert set(trained) == {1}
    assert again.validation == first.validation
    for a, b in zip(first.models, again.models, strict=True):
        for key, value in a.state_dict().items():
            assert torch.equal(value, b.state_dict()[key])
    with pytest.raises(UserError, match=r"member-0.pt was trained with epochs = 3, this run has 4"):
        train_members(dataclasses.replace(CONFIG, epochs=4), split, SerialComm(), folder=tmp_path)


def test_resetting_batch_norm_statistics_restores_a_fused_network(split, specs, random_members):
    trained = train_members(
        dataclasses.replace(CONFIG, arch="lenet-bn", width=32, epochs=3), split, SerialComm()
    )
    members = trained.models
    fused = fuse(members, split.train.tensors[0][:8], "nt").model
    before = accuracy(fused, split.validation)
    norm = fused.norm1
    assert reset_batch_norm(fused, split.train)
    x = split.train.tensors[0]
    torch.testing.assert_close(
        norm.running_mean, fused.conv1(x).mean((0, 2, 3)), rtol=1e-2, atol=1e-3
    )  # a mean of batch means: the last, smaller batch weighs a little more
    assert not fused.training and norm.momentum == 0.1
    assert accuracy(fused, split.validation) > before + 0.2
    assert not reset_batch_norm(random_members(specs["mlp"], 1)[0], split.train)
    plain, reset = (
        compare(members, trained.validation, split, CompareConfig(
            methods=("nt",), reset_batch_norm=flag, finetune=FinetuneConfig(epochs=0)))
        for flag in (False, True)
    )  # fmt: skip
    assert reset.methods[0].test_fused > plain.methods[0].test_fused + 0.2
