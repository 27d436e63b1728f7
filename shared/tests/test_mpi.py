"""Under ``mpiexec -n 4``: real communicators, torch.distributed from MPI, energy over nodes."""

from __future__ import annotations

import time

import pytest

from shared_hpc import (
    EnergyMeter,
    rank_info,
    split_by_color,
    split_by_node,
    torch_distributed,
)

pytestmark = pytest.mark.mpi(ranks=4)


def test_world_and_rank_info(comm, shared_dir):
    assert comm.Get_size() == 4
    info = rank_info(comm)
    assert info.rank == comm.Get_rank() and info.size == 4
    assert info.num_nodes == 1 and info.local_size == 4 and info.local_rank == info.rank
    assert comm.allgather(info.hostname) == [info.hostname] * 4
    assert comm.allgather(str(shared_dir)) == [str(shared_dir)] * 4 and shared_dir.is_dir()


def test_split_by_color_and_by_node(comm):
    color = comm.rank % 2
    part = split_by_color(comm, color)
    assert part.Get_size() == 2
    assert part.allgather(comm.rank) == [r for r in range(4) if r % 2 == color]
    node = split_by_node(comm)
    assert node.Get_size() == 4 and node.Get_rank() == comm.rank
    reversed_part = split_by_color(comm, 0, key=-comm.rank)
    assert reversed_part.allgather(comm.rank) == [3, 2, 1, 0]
    for c in (part, node, reversed_part):
        c.Free()


def test_a_rank_without_colour_joins_no_part(comm):
    part = split_by_color(comm, 0 if comm.rank < 3 else None)
    if comm.rank < 3:
        assert part.allgather(comm.rank) == [0, 1, 2]
        part.Free()
    else:
        assert part is None


def test_torch_all_reduce_over_gloo_from_mpi(comm):
    torch = pytest.importorskip("torch")
    import torch.distributed as dist

    with torch_distributed(comm) as info:
        assert (info.rank, info.world_size, info.source, info.backend) == (
            comm.rank,
            4,
            "mpi",
            "gloo",
        )
        assert (
            comm.allgather((info.master_addr, info.master_port))
            == [(info.master_addr, info.master_port)] * 4
        )
        tensor = torch.tensor([float(comm.rank + 1), 1.0])
        dist.all_reduce(tensor)
        assert tensor.tolist() == [10.0, 4.0]
    assert not dist.is_initialized()


def test_one_process_group_per_sub_communicator(comm):
    torch = pytest.importorskip("torch")
    import torch.distributed as dist

    part = split_by_color(comm, comm.rank // 2)  # ranks {0,1} and {2,3}
    with torch_distributed(part) as info:
        assert info.world_size == 2 and info.rank == comm.rank % 2
        tensor = torch.tensor([float(comm.rank)])
        dist.all_reduce(tensor)
        assert tensor.item() == (1.0 if comm.rank < 2 else 5.0)
    part.Free()


def test_energy_counts_each_node_once(comm, shared_dir, powercap):
    """Two simulated nodes (colour split), each with its own powercap tree.

    Node 0 (ranks 0, 1) has two sockets with DRAM, node 1 (ranks 2, 3) one socket with DRAM.
    Only each node's local rank 0 may read; if every rank read its node's counters, the
    totals would come out doubled.
    """
    node = comm.rank // 2
    node_comm = split_by_color(comm, node)
    zones = {
        0: {
            "intel-rapl:0": "package-0",
            "intel-rapl:0:2": "dram",
            "intel-rapl:1": "package-1",
            "intel-rapl:1:2": "dram",
        },
        1: {"intel-rapl:0": "package-0", "intel-rapl:0:0": "core", "intel-rapl:0:2": "dram"},
    }[node]
    root = shared_dir / f"node{node}"
    tree = powercap(zones, max_range_uj=30_000_000, root=root) if node_comm.rank == 0 else None
    comm.barrier()

    meter = EnergyMeter(
        comm, node_comm=node_comm, backends=("rapl",), powercap_root=root, sample_interval_s=0.05
    )
    meter.start()
    if tree is not None and node == 0:
        tree.add("intel-rapl:0", 25.0)  # 1 J -> 26 J
        time.sleep(0.3)  # the sampler reads 26 J
        tree.add("intel-rapl:0", 10.0)  # 26 J -> 36 J, wraps to 6 J on a 30 J counter
        tree.add("intel-rapl:1", 2.0)
        tree.add("intel-rapl:0:2", 1.0)
        tree.add("intel-rapl:1:2", 1.0)
    elif tree is not None:
        tree.add("intel-rapl:0", 5.0)
        tree.add("intel-rapl:0:0", 99.0)  # core is inside the package: not added again
        tree.add("intel-rapl:0:2", 0.5)
    report = meter.stop()

    assert report.nodes == 2 and report.ranks == 4
    assert report.devices == {"cpu": 3, "dram": 3}
    assert report.joules == pytest.approx({"cpu": 42.0, "dram": 2.5})
    assert report.methods == {"cpu": "rapl", "dram": "rapl"} and report.measured
    assert sorted(sum(n["joules"].values()) for n in report.per_node) == pytest.approx([5.5, 39.0])
    assert comm.allgather(report.total_joules) == [report.total_joules] * 4
    node_comm.Free()
