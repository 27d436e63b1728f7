"""Run a trained PETNet over singles: batched, on CPU or GPU, read back onto the singles."""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
import torch

from petnet.checkpoint import CheckpointError, load_checkpoint
from petnet.config import EncodingConfig, ModelConfig
from petnet.events import event_output, is_quiescent, patch_events
from petnet.model import PETNet
from petnet.patches import hit_patches, patch_length
from petnet.scanner import Scanner
from petnet.singles import Singles
from petnet.spikes import Decoded, SpikeStream, decode, densify, encode
from shared_hpc import UserError, load_config, resolve_device

DENSE_WINDOW_BINS = 256
EVENT_BATCH = 1 << 20  # patches per pass of the event-driven engine
Engine = Literal["auto", "events", "steps"]


def build_model(scanner: Scanner, encoding: EncodingConfig, config: ModelConfig) -> PETNet:
    """A fresh network for this scanner, reading the encoding's input channels.

    Args:
        scanner: The scanner it reads.
        encoding: How singles become its input.
        config: Its shape and neurons.
    """
    return PETNet(scanner, len(encoding.channels), config)


class PETNetSorter:
    """Flags the singles of true coincidences with a trained network.

    Args:
        model: The trained network.
        scanner: The scanner it was trained for.
        encoding: The encoding it was trained with.
        device: Where it runs (``cpu``, ``cuda``).
        batch_size: Patches (ring) or windows (dense) per forward pass; ``None``: 65536 for
            ring, 64 for dense.
        engine: ``events`` computes the ring network only at the bins where inputs arrive
            (``petnet.events``; needs a quiescent network), ``steps`` steps through every
            bin of every patch; ``auto``: events where possible.

    Raises:
        UserError: A device that is unknown or that this machine lacks, or ``events`` for a
            network that can fire without input.
    """

    def __init__(
        self,
        model: PETNet,
        scanner: Scanner,
        encoding: EncodingConfig,
        device: str | torch.device = "cpu",
        batch_size: int | None = None,
        engine: Engine = "auto",
    ) -> None:
        self.device = resolve_device(str(device))
        self.model = model.to(self.device).eval()
        self.scanner = scanner
        self.encoding = encoding
        dense = model.config.architecture == "dense"
        self.batch_size = batch_size or (64 if dense else 65536)
        if engine not in ("auto", "events", "steps"):
            raise UserError(f"engine must be 'auto', 'events' or 'steps', got {engine!r}")
        if engine == "events" and not is_quiescent(model):
            raise UserError(
                "the events engine needs a quiescent ring network (ModelConfig.quiescent); "
                "this one can fire without input (e.g. a checkpoint of petnet 0.1)"
            )
        self.engine = "events" if engine == "auto" and is_quiescent(model) else engine
        if self.engine == "auto":
            self.engine = "steps"

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        device: str | torch.device = "cpu",
        batch_size: int | None = None,
        engine: Engine = "auto",
    ) -> PETNetSorter:
        """The sorter stored in a checkpoint of ``petnet.train.train``.

        Args:
            path: A ``best.pt`` or ``last.pt``.
            device: Where it runs.
            batch_size: Hits (ring) or windows (dense) per forward pass; ``None``: a size that
                suits the architecture.
            engine: ``auto``, ``events`` or ``steps`` (see the class).

        Raises:
            CheckpointError: Not a readable PETNet checkpoint, or weights that do not fit.
            UserError: A device that is unknown or that this machine lacks.
        """
        payload = load_checkpoint(path)
        scanner = _rebuild(Scanner, payload["scanner"])
        encoding = _rebuild(EncodingConfig, payload["encoding"])
        # petnet 0.1 trained without the resting cap on biases
        config = _rebuild(ModelConfig, {"quiescent": False, **payload["model"]})
        model = build_model(scanner, encoding, config)
        try:
            model.load_state_dict(payload["state_dict"])
        except RuntimeError as error:
            raise CheckpointError(
                f"{path}: weights do not fit the stored model ({error})"
            ) from None
        return cls(model, scanner, encoding, device=device, batch_size=batch_size, engine=engine)

    def _check(self, singles: Singles) -> None:
        if singles.scanner.n_crystals != self.scanner.n_crystals or (
            singles.scanner.crystals_per_ring != self.scanner.crystals_per_ring
        ):
            raise UserError(
                f"the network was trained for scanner {self.scanner.name!r} "
                f"({self.scanner.n_rings} × {self.scanner.crystals_per_ring} crystals), the "
                f"singles come from {singles.scanner.name!r} ({singles.scanner.n_rings} × "
                f"{singles.scanner.crystals_per_ring})"
            )

    @torch.no_grad()
    def predict(self, singles: Singles, shard: tuple[int, int] = (0, 1)) -> Decoded:
        """Flag the singles of true coincidences.

        Args:
            singles: Time-sorted singles of the scanner the network was trained for.
            shard: (rank, size): do only this rank's share of the work.

        Raises:
            UserError: Singles of another scanner.
        """
        self._check(singles)
        stream = encode(singles, self.encoding)
        training = self.model.training
        self.model.eval()  # no training noise; restored below for callers that train on
        try:
            if self.model.config.architecture == "dense":
                return self._predict_dense(stream, shard)
            return self._predict_ring(stream, shard)
        finally:
            self.model.train(training)

    def _predict_ring(self, stream: SpikeStream, shard: tuple[int, int]) -> Decoded:
        cfg = self.encoding
        centres = np.arange(shard[0], len(stream), shard[1])
        flagged = np.zeros(len(centres), dtype=bool)
        extra = np.zeros(len(centres), dtype=np.int64)
        lag = np.zeros(len(centres), dtype=np.int64)
        if self.engine == "events":
            self._ring_events(stream, centres, flagged, extra, lag)
        else:
            self._ring_steps(stream, centres, flagged, extra, lag)
        flags = np.zeros(stream.n_singles, dtype=bool)
        flags[stream.single[centres[flagged]]] = True
        error = None
        if stream.partner is not None:
            true = flagged & (stream.partner[centres] >= 0)
            if true.any():
                expected = stream.decision_bin(stream.raw_bin) - stream.raw_bin
                error = float(np.abs(lag[true] - expected[centres[true]]).mean())
                error *= cfg.bin_width_ns
        return Decoded(flags, int(extra.sum()), error)

    def _ring_events(self, stream, centres, flagged, extra, lag) -> None:
        """Output spikes in each patch's matching window, computed at input events only."""
        cfg = self.encoding
        history, length = cfg.max_gap_bins, patch_length(cfg)
        scales = self.model.config.geometry_scales
        for start in range(0, len(centres), EVENT_BATCH):
            part = centres[start : start + EVENT_BATCH]
            events = patch_events(stream, part, self.scanner, cfg, scales)
            patch, when = event_output(self.model, events, length)
            inside = (when >= history) & (when <= history + cfg.tolerance_bins)
            patch, when = patch[inside], when[inside]
            counts = np.bincount(patch, minlength=len(part))
            first = np.full(len(part), length, dtype=np.int64)
            np.minimum.at(first, patch, when)
            chunk = slice(start, start + len(part))
            flagged[chunk] = counts > 0
            extra[chunk] = np.maximum(counts - 1, 0)
            lag[chunk] = np.where(counts > 0, first - history, 0)

    def _ring_steps(self, stream, centres, flagged, extra, lag) -> None:
        """Output spikes in each patch's matching window, stepping through every bin."""
        cfg = self.encoding
        history = cfg.max_gap_bins
        for start in range(0, len(centres), self.batch_size):
            part = centres[start : start + self.batch_size]
            x, _ = hit_patches(
                stream, part, self.scanner, cfg, self.model.config.geometry_scales, False
            )
            spikes = self.model(torch.from_numpy(x).to(self.device))
            window = spikes[:, history : history + cfg.tolerance_bins + 1] > 0
            counts = window.sum(dim=1).cpu().numpy()
            chunk = slice(start, start + len(part))
            flagged[chunk] = counts > 0
            extra[chunk] = np.maximum(counts - 1, 0)
            lag[chunk] = window.to(torch.int8).argmax(dim=1).cpu().numpy()

    def _predict_dense(self, stream: SpikeStream, shard: tuple[int, int]) -> Decoded:
        cfg = self.encoding
        length = DENSE_WINDOW_BINS
        warmup = cfg.warmup_bins
        stride = length - warmup
        starts = np.arange(-warmup, stream.n_bins, stride)[shard[0] :: shard[1]]
        bins, crystals = [], []
        for begin in range(0, len(starts), self.batch_size):
            part = starts[begin : begin + self.batch_size]
            x, _ = densify(stream, part, length, cfg, device=self.device, with_target=False)
            row, t, crystal = torch.nonzero(self.model(x)[:, warmup:], as_tuple=True)
            bins.append(part[row.cpu().numpy()] + warmup + t.cpu().numpy())
            crystals.append(crystal.cpu().numpy())
        if not bins:
            return decode(stream, np.zeros(0, np.int64), np.zeros(0, np.int64), cfg)
        return decode(stream, np.concatenate(bins), np.concatenate(crystals), cfg)


def _rebuild(cls, data: dict):
    """A config dataclass from its stored dict, checked field by field."""
    try:
        return load_config(cls, data)
    except ValueError as error:
        raise CheckpointError(f"stored {cls.__name__} is invalid: {error}") from None
