"""Estimated CPU and DRAM energy from codecarbon's power models, for nodes without readable RAPL.

This is codecarbon's machine-level fallback (what its ``OfflineEmissionsTracker`` does in
``tracking_mode="machine"`` without RAPL): CPU power ``= TDP × sockets × (0.1 + 0.9 · load³)``
with the TDP of this CPU model from codecarbon's table (or codecarbon's default of 4 W per
thread for a model the table lacks) and the system CPU load sampled every second; memory power
from codecarbon's ``RAM`` model of the installed (or SLURM-allocated) memory. The numbers are
estimates: a TDP is a cooling budget, not a measurement, and real power depends on the
instructions running.

The table ships with shared-hpc (``cpu_tdp.csv``, codecarbon 3.3.2's, MIT licence, source
named in its first lines) and is matched by exact name, by the name without ``(R)``, ``CPU`` and
clock speed, or by the one table name whose words are all in the model's (or the other way
round) — the rules codecarbon applies. Asking codecarbon itself (its ``TDP`` class) would start
a subprocess and half a second of Python work in the measuring process, which slowed the
measured run itself by several per cent on a two-core machine.

codecarbon's tracker is not started either, because its first start spends about 1.5 s probing
the hardware; the inputs are built once per process in a background thread while the load
samples are taken with ``psutil`` from the first moment. ``tests/test_estimate.py`` checks the
table against codecarbon's and the result against a real ``OfflineEmissionsTracker``.
"""

from __future__ import annotations

import csv
import functools
import logging
import re
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from importlib import metadata, resources
from typing import Any

import psutil

from shared_hpc.energy.sensor import Sensor
from shared_hpc.hardware import cpu_model, cpu_sockets

__all__ = ["CodecarbonEstimate", "PowerModel", "cpu_busy_fraction", "lookup_tdp", "power_model"]

DEFAULT_W_PER_THREAD = 4.0
"""codecarbon's power per thread of a CPU its table lacks (``DEFAULT_POWER_PER_CORE``)."""


@dataclass(frozen=True)
class PowerModel:
    """codecarbon's inputs for this node: TDP per socket, sockets and memory power."""

    cpu_model: str
    tdp_w: float
    tdp_source: str
    sockets: int
    ram_w: float
    codecarbon_version: str
    setup_cpu_s: float = 0.0

    @property
    def cpu_max_w(self) -> float:
        return self.tdp_w * self.sockets

    def cpu_watts(self, load: float) -> float:
        """codecarbon's machine-mode CPU power at a load between 0 and 1."""
        return self.cpu_max_w * (0.1 + 0.9 * load**3)


def _quiet_codecarbon() -> None:
    """codecarbon logs INFO lines (and a warning for an unknown CPU) to stderr; keep errors."""
    logger = logging.getLogger("codecarbon")
    if logger.getEffectiveLevel() < logging.ERROR:
        logger.setLevel(logging.ERROR)


@functools.cache
def _tdp_table() -> dict[str, float]:
    """CPU model -> TDP in watts (rows whose TDP is not a number, a few typos, are left out)."""
    table = {}
    with resources.files("shared_hpc.energy").joinpath("cpu_tdp.csv").open(newline="") as f:
        for row in csv.DictReader(line for line in f if not line.startswith("#")):
            try:
                table[row["Name"]] = float(row["TDP"])
            except (TypeError, ValueError):
                continue
    return table


def _words(name: str) -> frozenset[str]:
    return frozenset(re.sub(r"[^a-z0-9]+", " ", name.lower()).split())


def lookup_tdp(model: str) -> tuple[float, str] | None:
    """TDP in watts and the matched table name for a CPU model name, ``None`` if none matches.

    Tried in turn: the exact name (any case); the name without ``(R)``, ``CPU`` and clock
    speed; the only table name whose words are all in the model's name or that holds all the
    model's words (two or more such names: no match).

    Args:
        model: The CPU's marketing name, e.g. ``AMD EPYC 7763 64-Core Processor``.
    """
    table = _tdp_table()
    lowered = {name.lower(): name for name in table}
    cleaned = model.replace("(R)", "")
    if " CPU @ " in cleaned:
        cleaned = cleaned[: cleaned.find(" CPU @ ")]
    cleaned = re.sub(r" @\s*\d+\.\d+GHz", "", cleaned.replace(" CPU", ""))
    for candidate in (model, cleaned):
        if candidate.lower() in lowered:
            name = lowered[candidate.lower()]
            return table[name], name
    words = _words(cleaned)
    if not words:
        return None
    found = [n for n in table if (w := _words(n)) and (w <= words or words <= w)]
    if len(found) == 1:
        return table[found[0]], found[0]
    return None


def _build_power_model() -> PowerModel:
    cpu0 = time.thread_time()
    from codecarbon.external.ram import RAM

    _quiet_codecarbon()  # after the import, which sets codecarbon's own level
    model = cpu_model()
    found = lookup_tdp(model)
    if found is None:
        from codecarbon.core.util import count_cpus  # SLURM-aware, as codecarbon counts

        threads = count_cpus()
        tdp, source = (
            threads * DEFAULT_W_PER_THREAD,
            f"codecarbon's default, 4 W x {threads} threads",
        )
    else:
        tdp, source = found[0], f"codecarbon's table: {found[1]}"
    return PowerModel(
        cpu_model=model,
        tdp_w=tdp,
        tdp_source=source,
        sockets=cpu_sockets(),
        ram_w=RAM(tracking_mode="machine").total_power().W,
        codecarbon_version=metadata.version("codecarbon"),
        setup_cpu_s=time.thread_time() - cpu0,
    )


_model_lock = threading.Lock()
_model_future: Future[PowerModel] | None = None


def power_model(wait: bool = True) -> Future[PowerModel] | PowerModel:
    """This node's ``PowerModel``, built once per process in a background thread.

    With ``wait=False`` return the future at once, so the caller can start measuring while
    codecarbon is imported.
    """
    global _model_future
    with _model_lock:
        if _model_future is None:
            future: Future[PowerModel] = Future()

            def build() -> None:
                try:
                    future.set_result(_build_power_model())
                except BaseException as err:  # handed to whoever waits for the model
                    future.set_exception(err)

            threading.Thread(target=build, name="shared-hpc-power-model", daemon=True).start()
            _model_future = future
    return _model_future.result() if wait else _model_future


def cpu_busy_fraction(before: Any, after: Any) -> float:
    """Share of the node's CPU time that was busy between two ``psutil.cpu_times()`` readings.

    Busy is everything but idle and iowait; guest time is already inside user time on Linux,
    so it is taken out of the total (as codecarbon does).
    """

    def total(t: Any) -> float:
        return sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)

    def busy(t: Any) -> float:
        return total(t) - t.idle - getattr(t, "iowait", 0.0)

    span = total(after) - total(before)
    if span <= 0:
        return 0.0
    return min(max((busy(after) - busy(before)) / span, 0.0), 1.0)


class CodecarbonEstimate(Sensor):
    """Sensor that estimates ``cpu`` and ``dram`` energy with codecarbon's models."""

    method = "estimated"

    def __init__(self, kinds: tuple[str, ...] = ("cpu", "dram"), sample_interval_s: float = 1.0):
        super().__init__()
        unknown = set(kinds) - {"cpu", "dram"}
        if unknown:
            raise ValueError(f"codecarbon estimates cpu and dram only, not {sorted(unknown)}")
        self.kinds = tuple(kinds)
        self.sample_interval_s = sample_interval_s
        self._intervals: list[tuple[float, float]] = []  # (seconds, busy fraction)

    def start(self, baseline: tuple[float, Any] | None = None) -> None:
        """Begin now, or at ``baseline`` = ``(time.perf_counter(), psutil.cpu_times())`` taken
        earlier (the meter keeps one so it can still estimate a kind whose sensor failed)."""
        self._builds_model = _model_future is None
        self._model = power_model(wait=False)
        self._t0, self._last_times = baseline or (time.perf_counter(), psutil.cpu_times())
        self._last_t = self._t0
        self.devices = {kind: cpu_sockets() for kind in self.kinds}
        self.origin = 0

    def sample(self) -> None:
        now_t, now_times = time.perf_counter(), psutil.cpu_times()
        load = cpu_busy_fraction(self._last_times, now_times)
        self._intervals.append((now_t - self._last_t, load))
        self._last_t, self._last_times = now_t, now_times

    def mark(self) -> int:
        """The number of load intervals so far (the model need not be ready yet)."""
        self.sample()
        return len(self._intervals)

    def joules_since(self, mark: int) -> dict[str, float]:
        self.sample()
        model = self._model.result()
        intervals = self._intervals[mark:]
        joules = {}
        if "cpu" in self.kinds:
            joules["cpu"] = sum(dt * model.cpu_watts(load) for dt, load in intervals)
        if "dram" in self.kinds:
            joules["dram"] = model.ram_w * sum(dt for dt, _ in intervals)
        return joules

    @property
    def setup_cpu_s(self) -> float:
        """CPU time spent building the power model, if this estimate was the one that built it."""
        if not self._builds_model or not self._model.done() or self._model.exception():
            return 0.0
        return self._model.result().setup_cpu_s
