"""Training in one process: schedule, resume, the typed result, and bad input (NaN losses,
broken checkpoints, a model that contradicts the data or the checkpoint)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from weathermixer import checkpoint
from weathermixer.checkpoint import CheckpointError
from weathermixer.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from weathermixer.train import TrainingDiverged, batch_indices, train

from shared_hpc import UserError

ARCH = ModelConfig(patch=2, embed_dim=8, token_hidden=8, channel_hidden=16, depth=1)


def _cfg(path, out, steps, model=ARCH, **train) -> RunConfig:
    settings = (
        dict(
            steps=steps,
            batch_size=2,
            warmup_steps=2,
            log_every=1,
            val_every=100,
            checkpoint_every=2,
            val_batches=1,
        )
        | train
    )
    return RunConfig(
        data=DataConfig(path=str(path)), model=model, train=TrainConfig(**settings), output=str(out)
    )


def _params(out) -> dict:
    full, _ = checkpoint.load_full(checkpoint.latest(out / "checkpoints"))
    return full["params"]


def test_schedule_and_sampler():
    tc = TrainConfig(
        steps=100,
        warmup_steps=10,
        lr=1e-3,
        min_lr=1e-5,
        finetune_steps=30,
        max_rollout=4,
        finetune_lr=1e-4,
    )
    assert tc.learning_rate(0) == pytest.approx(1e-4)
    assert tc.learning_rate(9) == pytest.approx(1e-3)
    assert tc.learning_rate(55) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert tc.learning_rate(100) == tc.finetune_lr
    assert [tc.rollout(s) for s in (99, 100, 110, 129)] == [1, 2, 3, 4]
    first = batch_indices(0, 20, 2, 2, 0, 0) + batch_indices(0, 20, 2, 2, 1, 0)
    assert len(set(first)) == 4  # replicas see different samples
    epoch = [i for s in range(5) for r in (0, 1) for i in batch_indices(s, 20, 2, 2, r, 0)]
    assert sorted(epoch) == list(range(20))
    with pytest.raises(ValueError, match="fewer than one global batch"):
        batch_indices(0, 3, 2, 2, 0, 0)


def test_resume_gives_the_same_next_step(write_nc, make_era5, tmp_path):
    data = write_nc(make_era5(times=48, nlat=8))
    straight = tmp_path / "straight"
    train(_cfg(data, straight, 3), progress=None)
    resumed = tmp_path / "resumed"
    train(_cfg(data, resumed, 2), progress=None)
    result = train(_cfg(data, resumed, 3), progress=None)  # resumes from step 2
    assert result.steps_this_run == 1
    assert result.metrics()["steps_this_run"] == 1
    a, b = _params(straight), _params(resumed)
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_diverging_training_stops_with_a_clear_error(write_nc, make_era5, tmp_path):
    data = write_nc(make_era5(times=48, nlat=8))
    cfg = _cfg(data, tmp_path / "run", 6, lr=1e12, grad_clip=0.0, warmup_steps=1)
    with pytest.raises(FloatingPointError, match=r"lower train\.lr") as error:
        train(cfg, progress=None)
    assert isinstance(error.value, TrainingDiverged) and isinstance(error.value, UserError)


def test_corrupt_or_missing_checkpoints_are_refused(write_nc, make_era5, tmp_path):
    data = write_nc(make_era5(times=48, nlat=8))
    out = tmp_path / "run"
    train(_cfg(data, out, 2), progress=None)
    last = checkpoint.latest(out / "checkpoints")
    (last / "shard-d0-m0.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"shard-d0-m0\.pt is not a readable checkpoint"):
        train(_cfg(data, out, 3), progress=None)
    (out / "checkpoints" / "latest").write_text("step-000099\n")
    with pytest.raises(CheckpointError, match="incomplete or missing"):
        checkpoint.latest(out / "checkpoints")


def test_a_model_that_contradicts_the_data_or_the_checkpoint_is_refused(
    write_nc, make_era5, tmp_path
):
    data = write_nc(make_era5(times=48, nlat=8))
    out = tmp_path / "run"
    with pytest.raises(UserError, match=r"model\.grid is \(16, 32\) but the data has \(8, 16\)"):
        train(_cfg(data, out, 2, model=replace(ARCH, grid=(16, 32))), progress=None)
    assert not out.exists()  # refused before any work
    train(_cfg(data, out, 2), progress=None)
    with pytest.raises(CheckpointError, match="holds a different model"):
        train(_cfg(data, out, 3, model=replace(ARCH, depth=2)), progress=None)


def test_the_result_describes_the_run_and_the_checkpoint_the_whole_model(
    write_nc, make_era5, tmp_path
):
    data = write_nc(make_era5(times=48, nlat=8))
    result = train(_cfg(data, tmp_path / "run", 4, val_every=4), progress=None)
    assert result.config.model == replace(ARCH, state_channels=12, extra_channels=4, grid=(8, 16))
    lines = (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    log = [json.loads(line) for line in lines]
    losses = [e["loss"] for e in log if "loss" in e]
    assert result.final_train_loss == pytest.approx(losses[-1])
    assert result.valid_loss == pytest.approx(next(e["val_loss"] for e in log if "val_loss" in e))
    metrics = result.metrics()
    assert metrics["steps"] == metrics["steps_this_run"] == 4
    assert metrics["samples_per_s"] == pytest.approx(2 / result.median_step_s)
    assert metrics["energy_j_per_step"] == pytest.approx(result.energy.total_joules / 4)
    assert metrics["parameters"] == metrics["parameters_this_rank"] > 0
    headline = result.headline()
    assert headline.value == result.valid_loss and not headline.higher_is_better
    meta = checkpoint.read_meta(checkpoint.latest(tmp_path / "run" / "checkpoints"))
    assert checkpoint.model_config(meta) == result.config.model
    assert meta["config"]["model"] == meta["model"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_lowers_the_loss(write_nc, make_era5, tmp_path, precision):
    """On fields that are a pure shift of the previous state the loss must fall quickly, in
    float32 and under bf16 autocast (the GPU default, run here on the CPU)."""
    ds = make_era5(times=64, nlat=8)
    for name in ("z", "t", "u", "v", "t2m", "u10", "v10", "msl"):
        base = ds[name].values[0]
        ds[name].values[:] = np.stack([np.roll(base, k, axis=-1) for k in range(64)])
    data = write_nc(ds)
    result = train(_cfg(data, tmp_path / "run", 30, lr=3e-3, precision=precision), progress=None)
    log = (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    losses = [float(line.split('"loss": ')[1].split(",")[0]) for line in log if '"loss"' in line]
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])
    assert result.energy.seconds > 0


def test_pushforward_rollout_keeps_values_and_cuts_gradients(tiny_cfg):
    from weathermixer.engine import Engine
    from weathermixer.grid import ProcessGrid

    engine = Engine(tiny_cfg, ProcessGrid.single(), torch.device("cpu"))
    states = torch.randn(2, 2, 4, 16, 32)
    extras = torch.randn(2, 5, 4, 16, 32)
    full = engine.rollout(states, extras)
    last = engine.rollout(states, extras, grad_steps=2)
    torch.testing.assert_close(last, full[:, -2:])
    assert last.grad_fn is not None
    # the first step's output takes no part in the graph: gradients reach the weights only
    # through the last two steps, so they equal those of a 2-step rollout from the detached
    # state three steps in
    last.sum().backward()
    with_cut = engine.model.embed.weight.grad.clone()
    engine.model.zero_grad()
    start = torch.cat([states, full[:, :3].detach()], dim=1)[:, -2:]
    engine.rollout(start, extras[:, 3:]).sum().backward()
    torch.testing.assert_close(with_cut, engine.model.embed.weight.grad)
    tc = TrainConfig(steps=10, finetune_steps=10, max_rollout=6, rollout_grad_steps=2)
    lengths = [tc.rollout(s) for s in range(10, 20)]
    assert min(lengths) >= 1 and max(lengths) <= 6 and len(set(lengths)) > 1
