"""Communication model: bytes each rank sends per training step, from shapes alone.

It replays the collectives of ``weathermixer.jigsaw`` layer by layer (forward, and backward
with weights and sharded inputs gathered again) with ring-algorithm volumes
(``weathermixer.collectives.ring_bytes``), so the test suite can check it against the
bytes counted at run time, and ``benchmarks/`` against the bytes the kernel saw leave the
process. Used to project scaling to many GPUs (``step_time``, ``benchmarks/comm.py``).

Notation: B samples per replica, T_d tokens of a band, C_m channels of a tensor rank, H_t and
H_c the token and channel hidden sizes, s the bytes of a compute element (4 in fp32, 2 in
bf16); parameter shards are gathered in the compute dtype and their gradients reduced in fp32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from weathermixer.collectives import ring_bytes
from weathermixer.grid import GridSpec
from weathermixer.jigsaw import Layout
from weathermixer.model import ModelConfig, parameter_count


def _param_traffic(u: int, g: int, s: int, both_gathers: bool, backend: str) -> int:
    """Bytes for a flat-sharded parameter of ``u`` used elements over ``g`` ranks: gathered in
    forward (and again in backward for weights), gradient reduce-scattered in fp32."""
    if g == 1:
        return 0
    shard = math.ceil(u / g)
    gathers = (2 if both_gathers else 1) * ring_bytes("all_gather", shard * s, g)
    return gathers + ring_bytes("reduce_scatter", g * shard * 4, g, backend)


def jigsaw_bytes(
    cfg: ModelConfig,
    spec: GridSpec,
    replicas: int,
    d: int,
    m: int,
    batch: int,
    elem: int = 4,
    rollout: int = 1,
    backend: str = "nccl",
) -> dict[str, int]:
    """Bytes rank (·, d, m) sends per training step, by group (domain, tensor, replica, model).

    Args:
        cfg: The model.
        spec: The domain × tensor grid.
        replicas: Data-parallel replicas.
        d: The rank's domain index.
        m: The rank's tensor index.
        batch: Samples per replica.
        elem: Bytes of a compute element (4 in fp32, 2 in bf16).
        rollout: Forecast steps per sample.
        backend: ``"nccl"`` or ``"gloo"`` (their reduce-scatter costs differ).
    """
    lay = Layout(cfg, spec)
    dd, mm = spec.domain, spec.tensor
    out = {"domain": 0, "tensor": 0, "replica": 0, "model": 0}
    groups = {}
    for p in lay.params:
        size, _ = lay.group_of(p, d, m)
        groups[p.name] = ("domain" if p.axis == "m" else "tensor", size)

    def param(name: str, s: int, weight: bool) -> None:
        group, size = groups[name]
        u = math.prod(lay.used_shape(next(q for q in lay.params if q.name == name), d, m))
        out[group] += _param_traffic(u, size, s, weight, backend)

    def linear(name: str, x_piece: int = 0, x_group: str = "", x_size: int = 1) -> None:
        """Weight traffic; an input sharded over ``x_group`` is gathered twice and its
        gradient reduce-scattered (``x_piece`` bytes per rank)."""
        w_size = groups[name + ".weight"][1]
        if w_size == 1 and x_size == 1:
            return  # plain F.linear, no communication
        param(name + ".weight", elem, weight=True)
        if x_size > 1:
            out[x_group] += 2 * ring_bytes("all_gather", x_piece, x_size)
            out[x_group] += ring_bytes("reduce_scatter", x_piece * x_size, x_size, backend)

    def scatter(full: int, group: str, size: int) -> None:
        """Reduce-scatter forward, all-gather of the piece backward."""
        out[group] += ring_bytes("reduce_scatter", full, size, backend)
        out[group] += ring_bytes("all_gather", full // size, size)

    def norm(name: str) -> None:
        t_d = cfg.tokens // dd
        out["tensor"] += 2 * ring_bytes("all_reduce", batch * t_d * 2 * 4, mm)
        param(name + ".weight", 4, weight=False)
        param(name + ".bias", 4, weight=False)

    t_d, c = cfg.tokens // dd, cfg.embed_dim
    c_m = c // mm
    ht, ht_d = cfg.token_hidden, cfg.token_hidden // dd
    block_w = max(lay.out_sizes())
    for _ in range(rollout):
        linear("embed")
        scatter(batch * t_d * c * elem, "tensor", mm)
        param("embed.bias", 4, weight=False)
        for i in range(cfg.depth):
            b = f"blocks.{i}."
            norm(b + "token_norm")
            linear(b + "token_fc1")
            scatter(batch * c_m * ht * elem, "domain", dd)
            param(b + "token_fc1.bias", 4, weight=False)
            linear(b + "token_fc2", batch * c_m * ht_d * elem, "domain", dd)
            param(b + "token_fc2.bias", 4, weight=False)
            norm(b + "channel_norm")
            linear(b + "channel_fc1", batch * t_d * c_m * elem, "tensor", mm)
            param(b + "channel_fc1.bias", 4, weight=False)
            linear(b + "channel_fc2")
            scatter(batch * t_d * c * elem, "tensor", mm)
            param(b + "channel_fc2.bias", 4, weight=False)
        norm("norm")
        linear("head")
        scatter(batch * t_d * block_w * mm * elem, "tensor", mm)
        param("head.bias", 4, weight=False)
    local = sum(
        math.ceil(math.prod(lay.used_shape(p, d, m)) / lay.group_of(p, d, m)[0]) for p in lay.params
    )
    out["replica"] += ring_bytes("all_reduce", local * 4, replicas)  # gradients
    out["model"] += ring_bytes("all_reduce", 4, spec.size)  # gradient norm
    out["model"] += ring_bytes("all_reduce", 4, spec.size)  # loss
    out["replica"] += ring_bytes("all_reduce", 4, replicas)  # loss
    return out


def data_parallel_bytes(cfg: ModelConfig, replicas: int) -> dict[str, int]:
    """Bytes a rank sends per step with pure data parallelism (DDP): one all-reduce of all
    fp32 gradients, and of the loss.

    Args:
        cfg: The model.
        replicas: Data-parallel replicas.
    """
    grads = ring_bytes("all_reduce", parameter_count(cfg) * 4, replicas)
    return {"replica": grads + ring_bytes("all_reduce", 4, replicas)}


@dataclass(frozen=True)
class Network:
    """Links of a GPU cluster.

    Attributes:
        gpus_per_node: GPUs of a node.
        intra_bw: Bandwidth per GPU inside a node, bytes/s in one direction.
        inter_bw: Bandwidth per GPU across nodes, bytes/s in one direction.
        latency: Latency of a collective hop, s.
    """

    gpus_per_node: int = 4
    intra_bw: float = 100e9
    inter_bw: float = 25e9
    latency: float = 10e-6


def step_time(
    compute_s: float,
    sent: dict[str, int],
    spec: GridSpec,
    replicas: int,
    net: Network,
    collectives: int = 0,
) -> float:
    """Projected step time: compute plus every group's bytes over its slowest link (no
    overlap of communication and compute: a conservative bound).

    Ranks are placed tensor-fastest, so a group is inside one node when its stride × size
    fits the node: tensor (stride 1), domain (stride M), replica (stride D·M).

    Args:
        compute_s: Compute time of a step.
        sent: Bytes sent per step by group (``jigsaw_bytes``, ``data_parallel_bytes``).
        spec: The domain × tensor grid.
        replicas: Data-parallel replicas.
        net: The cluster's links.
        collectives: Collective calls per step, each paying the latency once.
    """

    def bandwidth(stride: int, size: int) -> float:
        return net.intra_bw if stride * size <= net.gpus_per_node else net.inter_bw

    links = {
        "tensor": bandwidth(1, spec.tensor),
        "domain": bandwidth(spec.tensor, spec.domain),
        "model": bandwidth(1, spec.size),
        "replica": bandwidth(spec.size, replicas),
    }
    comm = sum(b / links[g] for g, b in sent.items() if b)
    return compute_s + comm + collectives * net.latency
