"""The Jigsaw process grid: data-parallel replicas × domain ranks × tensor ranks.

``--grid DxM`` names the model-parallel part: D domain ranks split the tokens (latitude bands of
patch rows), M tensor ranks split channels and hidden features. The remaining factor of the
world size, R = world / (D·M), are data-parallel replicas. Rank ``r·D·M + d·M + m`` has
coordinates (r, d, m): tensor ranks are neighbours (same node, fastest links), as in Megatron.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared_hpc import UserError
from weathermixer.collectives import Group
from weathermixer.model import ModelConfig


@dataclass(frozen=True)
class GridSpec:
    """Domain × tensor parallel degrees.

    Attributes:
        domain: D, the ranks that split the latitude bands.
        tensor: M, the ranks that split channels and hidden features.
    """

    domain: int = 1
    tensor: int = 1

    @classmethod
    def parse(cls, text: str) -> GridSpec:
        """The grid written as ``DxM``.

        Args:
            text: E.g. ``"2x2"``.

        Raises:
            UserError: ``text`` is not of that form or a degree is below 1.
        """
        match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
        if not match:
            raise UserError(f"grid must look like DxM (e.g. 2x2), got {text!r}")
        domain, tensor = int(match.group(1)), int(match.group(2))
        if domain < 1 or tensor < 1:
            raise UserError(f"grid degrees must be >= 1, got {text!r}")
        return cls(domain, tensor)

    @property
    def size(self) -> int:
        return self.domain * self.tensor

    def __str__(self) -> str:
        return f"{self.domain}x{self.tensor}"


def check_grid(spec: GridSpec, world_size: int, cfg: ModelConfig) -> int:
    """Validate a grid for a world size and model, before any work starts.

    Args:
        spec: The domain × tensor degrees.
        world_size: Ranks taking part.
        cfg: The model, with its channel counts and grid.

    Returns:
        The number of data-parallel replicas.

    Raises:
        UserError: Naming every constraint that fails.
    """
    cfg.require_shape()
    problems = []
    if world_size % spec.size:
        problems.append(
            f"world size {world_size} is not divisible by D·M = {spec.domain}·{spec.tensor}"
        )
    if cfg.patch_rows % spec.domain:
        problems.append(
            f"{cfg.patch_rows} patch rows (grid {cfg.grid[0]} / patch {cfg.patch}) "
            f"do not split into D = {spec.domain} bands"
        )
    if cfg.token_hidden % spec.domain:
        problems.append(f"token_hidden {cfg.token_hidden} is not divisible by D = {spec.domain}")
    for name in ("embed_dim", "channel_hidden"):
        if getattr(cfg, name) % spec.tensor:
            problems.append(f"{name} {getattr(cfg, name)} is not divisible by M = {spec.tensor}")
    if cfg.state_channels < spec.tensor:
        problems.append(
            f"{cfg.state_channels} state channels cannot be split over M = {spec.tensor} ranks"
        )
    if problems:
        raise UserError(f"impossible process grid {spec}: " + "; ".join(problems))
    return world_size // spec.size


@dataclass(frozen=True)
class ProcessGrid:
    """This rank's coordinates and its four groups (domain, tensor, replica, model = D×M).

    Attributes:
        spec: The domain × tensor degrees.
        replicas: Data-parallel replicas.
        rank: This rank in the default process group.
        domain: The ranks that hold the other latitude bands of this model copy.
        tensor: The ranks that hold the other channel parts of this band.
        replica: The ranks that hold the same part in the other replicas.
        model: The D × M ranks of this model copy.
    """

    spec: GridSpec
    replicas: int
    rank: int
    domain: Group
    tensor: Group
    replica: Group
    model: Group

    @property
    def r(self) -> int:
        return self.replica.rank

    @property
    def d(self) -> int:
        return self.domain.rank

    @property
    def m(self) -> int:
        return self.tensor.rank

    @classmethod
    def single(cls) -> ProcessGrid:
        """The 1×1 grid of a plain process (no communication)."""
        return cls(
            GridSpec(), 1, 0, Group("domain"), Group("tensor"), Group("replica"), Group("model")
        )

    @classmethod
    def create(cls, spec: GridSpec, cfg: ModelConfig) -> ProcessGrid:
        """Build the groups from the default ``torch.distributed`` group (the single grid
        without one).

        Collective: every rank creates every group, in the same order, as torch requires.

        Args:
            spec: The domain × tensor degrees.
            cfg: The model, checked against the grid.
        """
        import torch.distributed as dist

        if not dist.is_initialized():
            if spec.size == 1:
                return cls.single()
            raise RuntimeError("torch.distributed is not initialised; use torch_distributed()")
        world, rank = dist.get_world_size(), dist.get_rank()
        replicas = check_grid(spec, world, cfg)
        dd, mm = spec.domain, spec.tensor
        r, d, m = rank // (dd * mm), (rank // mm) % dd, rank % mm

        def ranks_of(rr: int | None, d_: int | None, m_: int | None) -> list[int]:
            return [
                a * dd * mm + b * mm + c
                for a in ([rr] if rr is not None else range(replicas))
                for b in ([d_] if d_ is not None else range(dd))
                for c in ([m_] if m_ is not None else range(mm))
            ]

        def build(name: str, members: list[list[int]]) -> Group:
            mine = None
            for ranks in members:
                pg = dist.new_group(ranks) if len(ranks) > 1 else None
                if rank in ranks:
                    mine = Group(name, len(ranks), ranks.index(rank), pg)
            assert mine is not None
            return mine

        domain = build("domain", [ranks_of(a, None, c) for a in range(replicas) for c in range(mm)])
        tensor = build("tensor", [ranks_of(a, b, None) for a in range(replicas) for b in range(dd)])
        replica = build("replica", [ranks_of(None, b, c) for b in range(dd) for c in range(mm)])
        model = build("model", [ranks_of(a, None, None) for a in range(replicas)])
        assert (domain.rank, tensor.rank, replica.rank) == (d, m, r)
        return cls(spec, replicas, rank, domain, tensor, replica, model)
