"""Jigsaw under mpiexec -n 4: the same outputs and gradients as the single-process model (in
float32, and under bf16 autocast as accurate as it), memory 1/P per rank, counted bytes equal
to the communication model, training end to end through the CLI, resume on the same and on
another grid.

Run with ``mpiexec -n 4 python -m pytest -m mpi packages/weathermixer/tests``.
"""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest
import torch
from weathermixer import checkpoint
from weathermixer.benchmark import saved_activation_bytes
from weathermixer.cli import main
from weathermixer.collectives import count_bytes
from weathermixer.commmodel import jigsaw_bytes
from weathermixer.data import Era5Store, Shard, compute_stats
from weathermixer.engine import Engine
from weathermixer.grid import GridSpec, ProcessGrid
from weathermixer.model import WeatherMixer, parameter_count

from shared_hpc import RunRecord, get_comm, torch_distributed

pytestmark = pytest.mark.mpi(ranks=4)
BATCH, ROLLOUT = 4, 2


def _inputs(cfg):
    gen = torch.Generator().manual_seed(11)
    rows, cols = cfg.grid
    states = torch.randn(BATCH, cfg.history, cfg.state_channels, rows, cols, generator=gen)
    extras = torch.randn(BATCH, ROLLOUT, cfg.extra_channels, rows, cols, generator=gen)
    targets = torch.randn(BATCH, ROLLOUT, cfg.state_channels, rows, cols, generator=gen)
    weights = torch.rand(cfg.state_channels, rows, 1, generator=gen) + 0.5
    scale = torch.linspace(0.5, 1.5, cfg.state_channels)
    return states, extras, targets, weights, scale


def _reference(cfg):
    states, extras, targets, weights, scale = _inputs(cfg)
    model = WeatherMixer(cfg)
    model.residual_scale.copy_(scale)
    with saved_activation_bytes() as (counted, params):
        params.update(p.data_ptr() for p in model.parameters())
        pred = model.rollout(states, extras)
        loss = ((pred - targets) ** 2 * weights).sum() / pred.numel()
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    return pred.detach(), grads, counted["bytes"]


def _jigsaw_step(cfg, spec, autocast_dtype=None):
    """One training step of the Jigsaw engine on this rank's replica, channels and band of
    ``_inputs`` (inside ``torch_distributed``), optionally under CPU autocast."""
    states, extras, targets, weights, scale = _inputs(cfg)
    pgrid = ProcessGrid.create(spec, cfg)
    engine = Engine(cfg, pgrid, torch.device("cpu"))
    shard = engine.shard
    engine.model.residual_scale.copy_(scale[list(shard.state)])
    per = BATCH // pgrid.replicas
    mine = slice(pgrid.r * per, (pgrid.r + 1) * per)
    state_ix, extra_ix = list(shard.state), list(shard.extra)
    part = (mine, slice(None), state_ix, shard.rows)
    autocast = (
        torch.autocast("cpu", dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext()
    )
    with count_bytes() as counter:
        with saved_activation_bytes() as (act, params), autocast:
            params.update(p.data_ptr() for _, p in engine.named_shards())
            pred = engine.rollout(states[part], extras[mine][:, :, extra_ix, shard.rows])
            loss = engine.local_loss(pred, targets[part], weights[state_ix, shard.rows], BATCH)
        loss.backward()
        engine.sync_and_clip(0.0)
        engine.global_loss(loss)
    grads = {n: p.grad for n, p in engine.named_shards()}
    if engine.jigsaw:
        grads = engine.model.assemble(grads)
    return SimpleNamespace(
        engine=engine,
        pgrid=pgrid,
        per=per,
        part=part,
        pred=pred,
        grads=grads,
        activation_bytes=act["bytes"],
        counted=counter.by_group(),
    )


@pytest.mark.parametrize("grid", ["4x1", "1x4", "2x2", "2x1", "1x1"])
def test_jigsaw_matches_single_process_model(tiny_cfg, grid):
    cfg = tiny_cfg
    ref_pred, ref_grads, ref_act = _reference(cfg)
    spec = GridSpec.parse(grid)
    with torch_distributed(get_comm()):
        step = _jigsaw_step(cfg, spec)
        engine, pgrid = step.engine, step.pgrid
        scale_g = max(g.abs().max() for g in ref_grads.values())
        torch.testing.assert_close(step.pred, ref_pred[step.part], rtol=1e-5, atol=1e-5)
        for name, g in ref_grads.items():
            torch.testing.assert_close(
                step.grads[name], g, rtol=1e-4, atol=1e-5 * scale_g, msg=name
            )
        # Memory: parameters exactly 1/P (+ < 1 element of padding per shard), activations
        # saved for backward about 1/P of the single-process model's.
        p = spec.size
        local_params = engine.local_parameters()
        assert abs(local_params - parameter_count(cfg) / p) < len(engine.layout.params)
        per_replica = ref_act * step.per / BATCH
        assert step.activation_bytes <= 1.3 * per_replica / p + 4096, (
            step.activation_bytes,
            per_replica / p,
        )
        # Bytes counted at the collectives = the analytical communication model.
        model = jigsaw_bytes(
            cfg, spec, pgrid.replicas, pgrid.d, pgrid.m, step.per, 4, ROLLOUT, "gloo"
        )
        if engine.jigsaw:
            assert step.counted == {k: v for k, v in model.items() if v}
        else:  # DDP's own all-reduce is not counted here; loss and norm are
            assert set(step.counted) <= {"replica"}


def _max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize("grid", ["2x2", "1x4"])
def test_jigsaw_under_bf16_autocast_is_as_accurate_as_the_single_process_model(tiny_cfg, grid):
    """The bf16 path (what a GPU runs by default) on CPU: weights and activations travel in
    bf16, byte for byte as the communication model says, and outputs and gradients are as
    close to float32 as the single-process model's own bf16 run."""
    cfg = tiny_cfg
    exact_pred, exact_grads, _ = _reference(cfg)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        single_pred, single_grads, _ = _reference(cfg)
    spec = GridSpec.parse(grid)
    with torch_distributed(get_comm()):
        step = _jigsaw_step(cfg, spec, torch.bfloat16)
        part, pgrid = step.part, step.pgrid
        assert step.pred.dtype == torch.float32
        error = _max_error(step.pred, exact_pred[part])
        single_error = _max_error(single_pred[part], exact_pred[part])
        assert 1e-4 < error <= 2 * single_error + 1e-3, (error, single_error)
        for name, g in exact_grads.items():
            error = _max_error(step.grads[name], g)
            single_error = _max_error(single_grads[name], g)
            assert error <= 2 * single_error + 1e-3 * g.abs().max().item(), name
        model = jigsaw_bytes(
            cfg, spec, pgrid.replicas, pgrid.d, pgrid.m, step.per, 2, ROLLOUT, "gloo"
        )
        assert step.counted == {k: v for k, v in model.items() if v}


def test_statistics_from_shards_equal_serial(write_nc, make_era5, shared_dir):
    comm = get_comm()
    if comm.Get_rank() == 0:
        make_era5(times=20, nlat=8).to_netcdf(shared_dir / "d.nc")
    comm.barrier()
    store = Era5Store(shared_dir / "d.nc")
    serial = compute_stats(store, range(16), 2)
    rank = comm.Get_rank()
    rows = slice(0, 4) if rank % 2 == 0 else slice(4, 8)
    chans = tuple(range(6)) if rank < 2 else tuple(range(6, 12))
    extra = (0, 1) if rank < 2 else (2, 3)
    split = compute_stats(store, range(16), 2, Shard(rows, chans, extra), comm)
    for name in ("mean", "std", "diff_std"):
        torch.testing.assert_close(
            torch.tensor(getattr(split, name)),
            torch.tensor(getattr(serial, name)),
            rtol=1e-9,
            atol=1e-9,
        )


def test_train_cli_on_2x2_then_resume_on_4x1(make_era5, shared_dir):
    """``mpiexec -n 4 weathermixer train --grid 2x2`` works, and a checkpoint written on 2×2
    resumes on 4×1 to the same next step as the 2×2 run (float32 tolerance)."""
    comm = get_comm()
    if comm.Get_rank() == 0:
        make_era5(times=48, nlat=16).to_netcdf(shared_dir / "d.nc")
    comm.barrier()
    common = [
        "--data.path",
        str(shared_dir / "d.nc"),
        "--train.batch-size",
        "2",
        "--model.patch",
        "2",
        "--model.embed-dim",
        "8",
        "--model.token-hidden",
        "8",
        "--model.channel-hidden",
        "16",
        "--model.depth",
        "1",
        "--train.checkpoint-every",
        "2",
        "--train.log-every",
        "1",
        "--train.val-every",
        "100",
        "--train.warmup-steps",
        "1",
    ]
    straight, moved = shared_dir / "straight", shared_dir / "moved"
    steps = "--train.steps"
    assert main(["train", "--grid", "2x2", steps, "3", "--output", str(straight), *common]) == 0
    assert main(["train", "--grid", "2x2", steps, "2", "--output", str(moved), *common]) == 0
    assert main(["train", "--grid", "4x1", steps, "3", "--output", str(moved), *common]) == 0
    comm.barrier()  # rank 0 writes the record after the others are done
    record = RunRecord.read(moved / "results.json")
    assert record.metrics["steps_this_run"] == 1 and record.metrics["grid"] == "4x1"
    assert record.environment["mpi_size"] == 4
    a = checkpoint.load_full(checkpoint.latest(straight / "checkpoints"))[0]
    b = checkpoint.load_full(checkpoint.latest(moved / "checkpoints"))[0]
    assert checkpoint.read_meta(checkpoint.latest(moved / "checkpoints"))["grid"] == "4x1"
    for kind in ("params", "exp_avg"):
        for name, value in a[kind].items():
            torch.testing.assert_close(b[kind][name], value, rtol=1e-4, atol=1e-6, msg=name)


def test_impossible_grid_fails_on_every_rank_without_hanging(make_era5, shared_dir):
    comm = get_comm()
    if comm.Get_rank() == 0:
        make_era5(times=12, nlat=8).to_netcdf(shared_dir / "d.nc")
    comm.barrier()
    args = ["train", "--data.path", str(shared_dir / "d.nc"), "--output", str(shared_dir / "r")]
    assert main([*args, "--grid", "3x1"]) == 2
    assert main([*args, "--grid", "1x4", "--model.embed-dim", "6"]) == 2


@pytest.mark.parametrize("grid", ["2x2", "1x1"])
def test_benchmark_bytes_counted_modelled_and_measured(tiny_cfg, grid):
    from weathermixer.benchmark import run_benchmark
    from weathermixer.commmodel import data_parallel_bytes
    from weathermixer.config import BenchmarkConfig

    bench = BenchmarkConfig(model=tiny_cfg, grid=grid, batch_size=2, steps=2, warmup=1)
    results = run_benchmark(bench, get_comm()).ranks
    assert [r.rank for r in results] == [0, 1, 2, 3]
    spec = GridSpec.parse(grid)
    for r in results:
        if spec.size > 1:
            d, m = (r.rank // spec.tensor) % spec.domain, r.rank % spec.tensor
            model = jigsaw_bytes(tiny_cfg, spec, r.replicas, d, m, 2, backend="gloo")
            model = sum(model.values())
            assert r.comm_bytes_counted == model
        else:  # DDP buckets round each all-reduce separately: equal within a few bytes
            model = sum(data_parallel_bytes(tiny_cfg, r.replicas).values())
            assert abs(r.comm_bytes_counted - model) < 64
        # what the kernel saw leave the process: the model plus gloo's framing per message
        extra = r.comm_bytes_measured - model
        assert 0 <= extra < 0.01 * model + 1024 * (r.comm_calls + 1)


def test_quick_demo_on_2x2_scores_like_one_process(shared_dir):
    """The demo on a 2×2 grid, then the same checkpoint evaluated on 2×2 and in one process:
    partial sums from bands and channel subsets give the same scores as whole fields."""
    from weathermixer.config import EvaluateConfig
    from weathermixer.evaluate import TrainedRun, evaluate

    from shared_hpc import SerialComm

    comm = get_comm()
    assert main(["demo", "--output", str(shared_dir), "--quick", "--threads", "1"]) == 0
    comm.barrier()  # rank 0 writes the record after the others are done
    assert RunRecord.read(shared_dir / "results.json").metrics["grid"] == "2x2"
    run = TrainedRun.open(shared_dir / "run")
    grid = evaluate(run, EvaluateConfig(leads_h=[6.0, 12.0], grid="2x2"))
    # the example map is gathered on rank 0 only, whole
    assert (grid.example is not None) == (comm.Get_rank() == 0)
    if comm.Get_rank() == 0:
        assert grid.example.forecast.shape == (12, 16, 32)
        one = evaluate(run, EvaluateConfig(leads_h=[6.0, 12.0]), comm=SerialComm())
        for kind in ("model", "persistence", "damped_persistence", "climatology"):
            for name, scores in one.scores(kind).items():
                for score in ("rmse", "acc"):
                    values = getattr(scores, score)
                    if values[0] is None:
                        continue
                    torch.testing.assert_close(
                        torch.tensor(getattr(grid.scores(kind)[name], score)),
                        torch.tensor(values),
                        rtol=1e-4,
                        atol=1e-6,
                        msg=f"{kind} {name}",
                    )
        torch.testing.assert_close(
            torch.tensor(grid.example.forecast),
            torch.tensor(one.example.forecast),
            rtol=1e-4,
            atol=1e-3,
        )
    comm.barrier()
