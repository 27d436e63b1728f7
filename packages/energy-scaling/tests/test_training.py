"""Training one point: accumulation equals the large batch, records add up, divergence stops
at the next validation."""

import pytest
import torch
from energy_scaling.config import DataConfig, ModelConfig, SweepConfig, TrainConfig
from energy_scaling.data import load_samples
from energy_scaling.sweep import expand
from energy_scaling.training import TrainingDiverged, train_point

from shared_hpc import SerialComm

AFNO_MODEL = ModelConfig(name="afno", patch=4, embed_dim=16, depth=1, blocks=4)


def _afno_sweep(era5_file, **train):
    return SweepConfig(
        ranks=[1],
        global_batch=[8],
        local_batch=[2, 8],
        model=AFNO_MODEL,
        data=DataConfig(source="era5", path=str(era5_file), validation=0.25),
        train=TrainConfig(**{"epochs": 1, "warmup_epochs": 0, "schedule": "constant", **train}),
    )


def test_gradient_accumulation_equals_the_large_batch(era5_file):
    sweep = _afno_sweep(era5_file, max_steps=2, base_lr=0.05)
    samples = load_samples(sweep.data)
    small, large = expand(sweep)  # local 2 (4 accumulated passes) and local 8 (one pass)
    assert (small.accumulation, large.accumulation) == (4, 1)
    a = train_point(sweep, small, samples, SerialComm()).model.state_dict()
    b = train_point(sweep, large, samples, SerialComm()).model.state_dict()
    torch.manual_seed(sweep.train.seed)
    from energy_scaling.models import build_model

    initial = build_model(AFNO_MODEL, samples).state_dict()
    assert not torch.equal(a["head.weight"], initial["head.weight"])  # it trained
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-6, msg=name)


def test_a_point_record_adds_up(era5_file):
    sweep = _afno_sweep(era5_file, epochs=2, evals_per_epoch=2, target=10.0)
    samples = load_samples(sweep.data)
    point = expand(sweep)[1]
    result = train_point(sweep, point, samples, SerialComm())
    m = result.metrics()
    assert m["metric"] == "lat-weighted RMSE" and not m["higher_is_better"]
    assert m["updates"] == 2 * (len(samples.train) // 8)
    assert m["samples"] == 8 * m["updates"]
    assert m["device_hours"] == pytest.approx(m["wall_time_s"] / 3600)
    assert m["energy_j"] == pytest.approx(sum(m["energy_by_device_j"].values()))
    assert m["energy_j"] > 0 and set(m["energy_methods"]) == set(m["energy_by_device_j"])
    assert m["history"][-1]["joules"] == pytest.approx(m["energy_j"])
    assert [h["update"] for h in m["history"]] == [1, 2, 3, 4]
    # a target of RMSE 10 is met at the first validation
    assert m["time_to_target_s"] == m["history"][0]["seconds"]
    assert m["samples_per_device_hour"] == pytest.approx(m["samples"] / m["device_hours"])
    assert m["best_metric"] == min(h["metric"] for h in m["history"])


def test_a_diverging_point_stops_with_one_line(era5_file):
    sweep = _afno_sweep(era5_file, max_steps=5, base_lr=1e12, optimizer="sgd")
    samples = load_samples(sweep.data)
    with pytest.raises(TrainingDiverged, match="training diverged before update 2 of r1-g8-l8"):
        train_point(sweep, expand(sweep)[1], samples, SerialComm())


def test_bf16_autocast_trains_float32_weights_close_to_fp32(era5_file):
    fp32 = _afno_sweep(era5_file, max_steps=2, base_lr=0.05)
    bf16 = _afno_sweep(era5_file, max_steps=2, base_lr=0.05, precision="bf16")
    samples = load_samples(fp32.data)
    point = expand(fp32)[1]
    a = train_point(fp32, point, samples, SerialComm())
    b = train_point(bf16, point, samples, SerialComm())
    assert b.metrics()["precision"] == "bf16" and a.metrics()["precision"] == "fp32"
    wa, wb = a.model.head.weight, b.model.head.weight
    assert wb.dtype == torch.float32
    assert not torch.equal(wa, wb)  # the passes did run in bfloat16
    torch.testing.assert_close(wb, wa, rtol=0, atol=2e-2)
    assert abs(b.final - a.final) < 0.05 * a.final
