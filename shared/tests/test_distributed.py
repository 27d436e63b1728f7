"""torch.distributed set-up in one process: single, torchrun variables, SLURM names, teardown."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402

from shared_hpc import SerialComm, torch_distributed  # noqa: E402
from shared_hpc.distributed import (  # noqa: E402
    _first_slurm_host,
    free_port,
    init_torch_distributed,
)

_LAUNCH_VARS = (
    "RANK",
    "WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "LOCAL_RANK",
    "SLURM_PROCID",
    "SLURM_NTASKS",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in _LAUNCH_VARS:
        monkeypatch.delenv(name, raising=False)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


def test_single_process_has_no_group_unless_asked():
    with torch_distributed() as info:
        assert (info.rank, info.world_size, info.source, info.group) == (0, 1, "single", False)
        assert not dist.is_initialized()


def test_single_process_group_all_reduce_and_teardown():
    with torch_distributed(single_process_group=True) as info:
        assert (info.rank, info.world_size, info.source, info.backend) == (0, 1, "single", "gloo")
        assert info.device == torch.device("cpu") and info.master_addr == "127.0.0.1"
        tensor = torch.tensor([2.5])
        dist.all_reduce(tensor)
        assert tensor.item() == 2.5 and dist.get_world_size() == 1
    assert not dist.is_initialized()


def test_explicit_serial_comm_is_a_one_rank_group():
    with torch_distributed(SerialComm()) as info:
        assert info.world_size == 1 and info.source == "single"


def test_group_is_destroyed_when_the_body_raises():
    with pytest.raises(ZeroDivisionError), torch_distributed(single_process_group=True):
        assert dist.is_initialized()
        _ = 1 / 0
    assert not dist.is_initialized()
    with torch_distributed(single_process_group=True) as info:  # a new one can be made at once
        assert info.world_size == 1


def test_torchrun_variables_win(monkeypatch):
    port = free_port()
    for name, value in {
        "RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }.items():
        monkeypatch.setenv(name, value)
    with torch_distributed() as info:
        assert info.source == "torchrun" and info.master_port == port


def test_bad_requests_fail_before_joining(monkeypatch):
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="nccl"):
            init_torch_distributed(backend="nccl")
    with pytest.raises(ValueError, match="timeout"):
        init_torch_distributed(timeout_s=0)
    monkeypatch.setenv("RANK", "zero")
    for name, value in {"WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="RANK='zero'"):
        init_torch_distributed()
    assert not dist.is_initialized()


def test_second_group_in_one_process_is_refused():
    with (
        torch_distributed(single_process_group=True),
        pytest.raises(RuntimeError, match="already initialised"),
    ):
        init_torch_distributed()


@pytest.mark.parametrize(
    ("nodelist", "first"),
    [("gpu[007-010,012],cpu01", "gpu007"), ("node12", "node12"), ("a1,b2", "a1"), ("n[3]", "n3")],
)
def test_first_slurm_host(nodelist, first):
    assert _first_slurm_host(nodelist) == first


@pytest.mark.gpu
def test_cuda_device_and_nccl_backend():
    with torch_distributed(single_process_group=True) as info:
        assert info.backend == "nccl" and info.device.type == "cuda"
        tensor = torch.ones(1, device=info.device)
        dist.all_reduce(tensor)
        assert tensor.item() == 1.0


def test_threads_per_rank_share_the_cores(monkeypatch):
    from shared_hpc import UserError, set_torch_threads

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        cores = len(__import__("os").sched_getaffinity(0))
        assert set_torch_threads(SerialComm()) == cores == torch.get_num_threads()
        assert set_torch_threads(SerialComm(), threads=1) == 1 == torch.get_num_threads()
        with pytest.raises(UserError, match="threads must be >= 1"):
            set_torch_threads(SerialComm(), threads=0)
        monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the job script's word wins over the share
        assert set_torch_threads(SerialComm()) == 3 == torch.get_num_threads()
        assert set_torch_threads(SerialComm(), threads=1) == 1  # and the caller's over both
        monkeypatch.setenv("OMP_NUM_THREADS", "two")
        with pytest.raises(UserError, match="OMP_NUM_THREADS must be a whole number"):
            set_torch_threads(SerialComm())
        monkeypatch.setenv("OMP_NUM_THREADS", "0")
        with pytest.raises(UserError, match="threads must be >= 1"):
            set_torch_threads(SerialComm())
    finally:
        torch.set_num_threads(before)


def test_a_device_this_machine_lacks_is_one_line():
    import torch

    from shared_hpc import UserError, resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(UserError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA device is visible"):
            resolve_device("cuda")
