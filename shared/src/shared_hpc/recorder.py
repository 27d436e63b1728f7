"""Recorder: the energy meter, the clock and the run record of one command, in one place.

Every command that trains or searches, and every demo, runs its work inside a ``Recorder`` and
then writes the run record; library functions compute and return typed results and never write
records. A library that measures energy inside the recorder's region (per training step, per
candidate) shares the recorder's sensors instead of nesting a second set (see ``EnergyMeter``).

Example:
    >>> with Recorder("petnet", __version__) as run:  # doctest: +SKIP
    ...     result = train(singles, config, output)
    >>> run.write(
    ...     output / "results.json",
    ...     config=config,
    ...     metrics=result.metrics(),
    ...     headline=result.headline(),
    ...     artifacts=["best.pt"],
    ... )  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

from shared_hpc.energy import EnergyMeter, EnergyReport
from shared_hpc.mpi import Comm, get_comm
from shared_hpc.records import Headline, RunRecord

__all__ = ["Recorder"]


class Recorder:
    """Measure one run on every rank, then write its ``RunRecord`` from rank 0.

    Args:
        package: Distribution name, e.g. ``"petnet"``.
        version: Its version.
        comm: Communicator of the ranks taking part (default: ``get_comm()``); entering and
            leaving the ``with`` block are collective over it.
        **meter_options: Passed to ``EnergyMeter`` (``backends``, ``sample_interval_s``, ...).

    Attributes:
        report: The energy of the region, summed over nodes (set when the block ends).
        wall_time_s: Its wall time, until the slowest rank finished.
    """

    def __init__(
        self, package: str, version: str, comm: Comm | None = None, **meter_options: Any
    ) -> None:
        self.package = package
        self.version = version
        self.comm = get_comm() if comm is None else comm
        self.meter = EnergyMeter(self.comm, **meter_options)
        self.report: EnergyReport | None = None
        self.wall_time_s: float | None = None

    def __enter__(self) -> Recorder:
        self._started_at = dt.datetime.now(dt.timezone.utc)
        self._t0 = time.perf_counter()
        self.meter.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.meter.__exit__(exc_type, *exc)
        self.report = self.meter.report
        self.wall_time_s = time.perf_counter() - self._t0

    @property
    def is_writer(self) -> bool:
        """Whether this rank writes the record and the run's other files (rank 0)."""
        return self.comm.Get_rank() == 0

    def record(
        self,
        *,
        config: Any,
        metrics: dict[str, Any],
        headline: Headline | None,
        artifacts: list[str] | tuple[str, ...] = (),
    ) -> RunRecord:
        """The run record of the finished region (every rank can build it; nothing is written).

        Args:
            config: The run's settings (a dataclass or a dict).
            metrics: What came out, as JSON-ready values.
            headline: The run's one figure.
            artifacts: Files the run wrote, relative to the record.
        """
        if self.wall_time_s is None:
            raise RuntimeError("the recorder's region has not finished; record after the block")
        return RunRecord.create(
            self.package,
            self.version,
            config=config,
            metrics=metrics,
            headline=headline,
            energy=self.report,
            wall_time_s=self.wall_time_s,
            started_at=self._started_at,
            artifacts=artifacts,
            comm=self.comm,
        )

    def write(
        self,
        path: str | os.PathLike[str],
        *,
        config: Any,
        metrics: dict[str, Any],
        headline: Headline | None,
        artifacts: list[str] | tuple[str, ...] = (),
    ) -> RunRecord:
        """Build the record and write it to ``path`` atomically on rank 0 (collective: when it
        returns on any rank, the file exists).

        Args:
            path: The record's file, usually ``<output>/results.json``.
            config: The run's settings (a dataclass or a dict).
            metrics: What came out, as JSON-ready values.
            headline: The run's one figure.
            artifacts: Files the run wrote, relative to the record.

        Returns:
            The record, on every rank.
        """
        record = self.record(config=config, metrics=metrics, headline=headline, artifacts=artifacts)
        if self.is_writer:
            record.write(Path(path))
        self.comm.barrier()
        return record
