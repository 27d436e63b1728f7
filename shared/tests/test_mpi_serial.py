"""The serial stand-in communicator, launcher detection and variables, logging (no mpiexec)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from shared_hpc import mpi
from shared_hpc.mpi import (
    Comm,
    SerialComm,
    find_mpiexec,
    get_comm,
    get_logger,
    launched_under_mpi,
    rank0_print,
    rank_info,
    serial_environ,
    split_by_color,
    split_by_node,
)


@pytest.fixture
def fresh_world(monkeypatch):
    """Forget the cached COMM_WORLD so get_comm() looks at the environment again."""
    monkeypatch.setattr(mpi, "_WORLD", None)
    for name in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SLURM_PROCID", raising=False)
    monkeypatch.delenv("SLURM_STEP_NUM_TASKS", raising=False)
    return monkeypatch


def test_plain_process_gets_the_serial_stand_in(fresh_world):
    comm = get_comm()
    assert isinstance(comm, SerialComm) and isinstance(comm, Comm)
    assert get_comm() is comm


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"PMI_RANK": "0"}, "PMI_RANK"),
        ({"OMPI_COMM_WORLD_SIZE": "4"}, "OMPI_COMM_WORLD_SIZE"),
        ({"PMIX_RANK": "1"}, "PMIX_RANK"),
        ({"SLURM_PROCID": "0", "SLURM_STEP_NUM_TASKS": "1"}, None),  # a batch script's shell
        ({"SLURM_PROCID": "3", "SLURM_STEP_NUM_TASKS": "8"}, "SLURM_STEP_NUM_TASKS"),
    ],
)
def test_launcher_detection(env, expected):
    assert launched_under_mpi(env) == expected


def test_launched_without_mpi4py_is_a_clear_error(fresh_world):
    fresh_world.setenv("PMI_RANK", "0")
    fresh_world.setitem(sys.modules, "mpi4py", None)  # makes `import mpi4py` fail
    with pytest.raises(RuntimeError, match=r"mpi4py .*shared-hpc\[mpi\]"):
        get_comm()


def test_lowercase_collectives_behave_like_one_rank():
    comm = SerialComm()
    obj = {"a": [1, 2]}
    assert comm.Get_rank() == comm.rank == 0 and comm.Get_size() == comm.size == 1
    assert comm.bcast(obj) is obj
    assert comm.gather(obj) == [obj] and comm.allgather(obj) == [obj]
    assert comm.allreduce(5) == 5 and comm.reduce(7, root=0) == 7
    assert comm.scatter([obj]) is obj
    assert comm.alltoall(["x"]) == ["x"]
    assert comm.barrier() is None and comm.Barrier() is None
    assert comm.Iprobe() is False
    with pytest.raises(ValueError, match="exactly one"):
        comm.scatter([1, 2])
    with pytest.raises(ValueError, match="root=1"):
        comm.bcast(obj, root=1)


def test_buffer_collectives_copy_into_the_receive_buffer():
    comm = SerialComm()
    send = np.arange(6, dtype=float)
    recv = np.zeros(6)
    comm.Allreduce(send, recv)
    np.testing.assert_array_equal(recv, send)
    recv2 = np.zeros((1, 6))
    comm.Allgather([send, "MPI.DOUBLE"], recv2)
    np.testing.assert_array_equal(recv2[0], send)
    inplace = np.ones(3)
    comm.Allreduce(None, inplace)  # None stands for MPI.IN_PLACE
    np.testing.assert_array_equal(inplace, 1.0)
    buf = np.arange(3)
    comm.Bcast(buf)
    np.testing.assert_array_equal(buf, [0, 1, 2])


def test_point_to_point_to_self_is_refused():
    with pytest.raises(RuntimeError, match="second rank"):
        SerialComm().send(1, dest=0)
    with pytest.raises(RuntimeError, match="second rank"):
        SerialComm().Recv(np.zeros(1), source=0)


def test_splitting_and_rank_info():
    comm = SerialComm()
    assert isinstance(split_by_color(comm, 3), SerialComm)
    assert split_by_color(comm, None) is None
    assert isinstance(split_by_node(comm), SerialComm)
    assert isinstance(comm.Split_type(0), SerialComm) and isinstance(comm.Dup(), SerialComm)
    with pytest.raises(ValueError, match="color"):
        split_by_color(comm, -1)
    info = rank_info(comm)
    assert (info.rank, info.size, info.local_rank, info.local_size) == (0, 1, 0, 1)
    assert (info.node_index, info.num_nodes) == (0, 1)
    assert info.hostname == comm.Get_processor_name()


class _Rank2Of4(SerialComm):
    """Rank 2 of 4, for checking what non-zero ranks print, log and seed."""

    rank, size = 2, 4

    def Get_rank(self) -> int:
        return 2

    def Get_size(self) -> int:
        return 4


def test_rank0_print_prints_on_rank_zero_only(capsys):
    rank0_print("hello", 1, comm=SerialComm())
    rank0_print("not me", comm=_Rank2Of4())
    assert capsys.readouterr().out == "hello 1\n"


def test_logger_tags_rank_and_quiets_other_ranks(capsys):
    log0 = get_logger("shared_hpc.test.rank0", SerialComm())
    log0.info("step %d", 3)
    log2 = get_logger("shared_hpc.test.rank2", _Rank2Of4())
    log2.info("hidden")
    log2.warning("shown")
    err = capsys.readouterr().err
    assert "[rank 0/1] INFO shared_hpc.test.rank0: step 3" in err
    assert "hidden" not in err and "[rank 2/4] WARNING" in err
    assert log2.level == logging.WARNING
    assert len(get_logger("shared_hpc.test.rank0", SerialComm()).handlers) == 1  # no duplicates


def test_serial_environ_drops_launcher_variables_only():
    env = {
        "PMI_RANK": "1",
        "OMPI_COMM_WORLD_SIZE": "4",
        "HYDRA_PROXY": "x",
        "SLURM_STEP_ID": "0",
        "MPI_LOCALNRANKS": "2",
        "SLURM_JOB_ID": "7",
        "PATH": "/bin",
        "OMP_NUM_THREADS": "1",
    }
    assert serial_environ(env) == {"SLURM_JOB_ID": "7", "PATH": "/bin", "OMP_NUM_THREADS": "1"}
    assert launched_under_mpi(serial_environ(env)) is None


def test_find_mpiexec_prefers_this_environments_launcher(monkeypatch, tmp_path):
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    monkeypatch.setattr(sys, "executable", str(python))
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert find_mpiexec() is None
    (python.parent / "mpiexec").write_text("#!/bin/sh\n")
    assert find_mpiexec() == str(python.parent / "mpiexec")
    assert Path(find_mpiexec()).exists()
