"""Sharded checkpoints: each model-parallel rank writes its own shard; resume on any grid.

Layout of ``<run>/checkpoints/``::

    step-000200/shard-d0-m1.pt   # flat parameter shards and AdamW moments of rank (d=0, m=1)
    step-000200/meta.json        # step, grid, model and run config — written last
    latest                       # name of the newest complete checkpoint

Only replica 0 writes (replicas hold identical copies). Files go to a folder of a random name
first (``.step-N.<random>.tmp/``, created afresh, so nothing planted at a predictable name is
written through); after every rank has written, rank 0 adds ``meta.json``, renames the folder
and then updates ``latest`` atomically, so a crash at any moment leaves the previous checkpoint
intact. ``latest`` is followed only to a checkpoint inside the same folder.

On resume with the same grid a rank reads only its own file. With another grid every rank
reassembles the full tensors from the old shards (``Layout.assemble``) and cuts its new
shard, so a run can move between process grids.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from shared_hpc import (
    ConfigError,
    UserError,
    atomic_path,
    config_to_dict,
    load_config,
    write_json_atomic,
    write_text_atomic,
)
from weathermixer.engine import Engine
from weathermixer.grid import GridSpec
from weathermixer.jigsaw import Layout
from weathermixer.model import ModelConfig

MOMENTS = ("exp_avg", "exp_avg_sq")


class CheckpointError(UserError):
    """A checkpoint that is missing, incomplete, unreadable or of another model."""


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def _staging_folder(root: Path, step: int, rank0: bool) -> Path:
    """A new folder of a random name for checkpoint ``step``, made by rank 0 and named to all
    ranks (collective); checkpoints left half-written by a crash are removed first."""
    name = None
    if rank0:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".step-*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = root / f".step-{step:06d}.{secrets.token_hex(8)}.tmp"
        staging.mkdir()  # fails rather than follow anything already there
        name = staging.name
    if dist.is_initialized():
        shared = [name]
        dist.broadcast_object_list(shared, src=0)
        name = shared[0]
    return root / name


def save(
    directory: str | os.PathLike[str],
    step: int,
    engine: Engine,
    optimizer: torch.optim.Optimizer,
    meta: dict[str, Any],
    keep: int = 2,
) -> Path | None:
    """Write checkpoint ``step`` (collective over all ranks).

    Args:
        directory: The run's ``checkpoints`` folder.
        step: Steps done so far.
        engine: The model on this rank.
        optimizer: Its AdamW optimizer (the moments are saved with the shards).
        meta: What else ``meta.json`` holds (e.g. the run's config); the step, the grid and
            the model config are added.
        keep: Newest checkpoints kept (older ones are deleted); 0 keeps all.

    Returns:
        The checkpoint's folder on rank 0, ``None`` on the other ranks.
    """
    root = Path(directory)
    final = root / f"step-{step:06d}"
    grid = engine.grid
    rank0 = not dist.is_initialized() or dist.get_rank() == 0
    partial = _staging_folder(root, step, rank0)
    if grid.r == 0:
        payload: dict[str, Any] = {"params": {}, **{m: {} for m in MOMENTS}, "adam_step": 0.0}
        for name, param in engine.named_shards():
            payload["params"][name] = param.detach().reshape(-1).cpu()
            state = optimizer.state.get(param, {})
            for moment in MOMENTS:
                if moment in state:
                    payload[moment][name] = state[moment].reshape(-1).cpu()
            if "step" in state:
                payload["adam_step"] = float(state["step"])
        with atomic_path(partial / f"shard-d{grid.d}-m{grid.m}.pt") as tmp:
            torch.save(payload, tmp)
    _barrier()
    if not rank0:
        _barrier()
        return None
    write_json_atomic(
        partial / "meta.json",
        {**meta, "step": step, "grid": str(grid.spec), "model": config_to_dict(engine.cfg)},
    )
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    write_text_atomic(root / "latest", final.name + "\n")
    done = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in done[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    _barrier()
    return final


def latest(directory: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint under ``directory``, or ``None`` if there is none.

    Args:
        directory: A run's ``checkpoints`` folder.

    Raises:
        CheckpointError: ``latest`` names a checkpoint that is incomplete or missing, or one
            outside ``directory`` (an absolute or ``../`` path, a link that leads away).
    """
    root = Path(directory)
    pointer = root / "latest"
    if not pointer.exists():
        return None
    name = pointer.read_text().strip()
    path = root / name
    if path.resolve().parent != root.resolve():
        raise CheckpointError(
            f"{pointer} names {name!r}, which is not a checkpoint inside {root}; "
            "write the name of one of its step-* folders there"
        )
    if not (path / "meta.json").exists():
        raise CheckpointError(f"{pointer} names {path.name}, which is incomplete or missing")
    return path


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``meta.json`` of a checkpoint.

    Args:
        path: The checkpoint's folder.

    Raises:
        CheckpointError: It is unreadable or lacks the step, grid or model.
    """
    meta_path = Path(path) / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"{meta_path} is not a readable checkpoint description ({err})"
        ) from None
    for key in ("step", "grid", "model"):
        if key not in meta:
            raise CheckpointError(f"{meta_path} lacks '{key}'")
    return meta


def model_config(meta: dict[str, Any]) -> ModelConfig:
    """The model a checkpoint holds.

    Args:
        meta: Its ``meta.json`` (see ``read_meta``).

    Raises:
        CheckpointError: The stored model config is not one of this version.
    """
    try:
        return load_config(ModelConfig, meta["model"])
    except ConfigError as err:
        raise CheckpointError(f"the checkpoint's model config is unusable: {err}") from None


def _load_file(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable checkpoint shard ({err})") from None


def load_full(path: str | os.PathLike[str]) -> tuple[dict[str, dict[str, torch.Tensor]], float]:
    """Full-size parameters and moments of a checkpoint, whatever grid wrote it.

    Args:
        path: The checkpoint's folder.

    Returns:
        ``({"params": {...}, "exp_avg": {...}, "exp_avg_sq": {...}}, adam_step)``.

    Raises:
        CheckpointError: A shard is unreadable or lacks a parameter.
    """
    path = Path(path)
    meta = read_meta(path)
    cfg = model_config(meta)
    spec = GridSpec.parse(meta["grid"])
    layout = Layout(cfg, spec)
    files = {
        (d, m): _load_file(path / f"shard-d{d}-m{m}.pt")
        for d in range(spec.domain)
        for m in range(spec.tensor)
    }
    out: dict[str, dict[str, torch.Tensor]] = {"params": {}, **{m: {} for m in MOMENTS}}
    for p in layout.params:
        for kind in out:
            shards = {key: f[kind][p.name] for key, f in files.items() if p.name in f[kind]}
            if len(shards) == len(files):
                out[kind][p.name] = layout.assemble(p, shards)
            elif kind == "params":
                raise CheckpointError(f"{path}: parameter {p.name} is missing from some shards")
    step = max(float(f["adam_step"]) for f in files.values())
    return out, step


def restore(
    path: str | os.PathLike[str], engine: Engine, optimizer: torch.optim.Optimizer | None
) -> int:
    """Load a checkpoint into ``engine`` (and ``optimizer``), whatever grid wrote it.

    Args:
        path: The checkpoint's folder.
        engine: The model on this rank; it must be the checkpoint's model.
        optimizer: Its optimizer, which gets the AdamW moments; ``None`` for inference.

    Returns:
        The step the checkpoint was taken at.

    Raises:
        CheckpointError: The checkpoint is unreadable or holds another model.
    """
    path = Path(path)
    meta = read_meta(path)
    cfg = model_config(meta)
    if cfg != engine.cfg:
        raise CheckpointError(
            f"{path} holds a different model ({cfg}) than this run ({engine.cfg})"
        )
    grid = engine.grid
    same_grid = GridSpec.parse(meta["grid"]) == grid.spec
    if same_grid:
        local = _load_file(path / f"shard-d{grid.d}-m{grid.m}.pt")
        step = float(local["adam_step"])
    else:
        full, step = load_full(path)
    layout = engine.layout
    params = dict(engine.named_shards())
    with torch.no_grad():
        for name, param in params.items():
            spec = next(p for p in layout.params if p.name == name)

            def mine(
                kind: str, name: str = name, spec: Any = spec, param: torch.Tensor = param
            ) -> torch.Tensor | None:
                if same_grid:
                    value = local[kind].get(name)
                else:
                    whole = full[kind].get(name)
                    value = None if whole is None else layout.shard(whole, spec, grid.d, grid.m)
                return None if value is None else value.view_as(param).to(param.device)

            param.copy_(mine("params"))
            if optimizer is None:
                continue
            moments = {k: mine(k) for k in MOMENTS}
            if all(v is not None for v in moments.values()) and step > 0:
                optimizer.state[param] = {
                    "step": torch.tensor(step),
                    **{k: v.clone() for k, v in moments.items()},
                }
    return int(meta["step"])
