"""EnergyMeter: measure a region of code on every node of an MPI job, each node exactly once.

Only local rank 0 of each node (rank 0 of ``node_comm``) reads that node's sensors; at ``stop``
the readings are gathered over ``comm`` and summed, so two ranks sharing a node, or eight ranks
sharing four GPUs, never count a device twice. For each device kind the first backend in
``backends`` that can read it wins; a sensor that fails (at start or during the run) costs one
warning and the kind is estimated instead, so measuring never raises inside a training run.
"""

from __future__ import annotations

import dataclasses
import functools
import socket
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import psutil

from shared_hpc.energy.estimate import CodecarbonEstimate, power_model
from shared_hpc.energy.nvml import NvmlReader
from shared_hpc.energy.rapl import RaplReader
from shared_hpc.energy.report import EnergyReport, NodeReading
from shared_hpc.energy.sensor import METHODS, EnergyWarning, NoSensor, Sensor
from shared_hpc.mpi import get_comm, split_by_node

__all__ = ["EnergyMeter", "probe_sensors"]

F = TypeVar("F", bound=Callable[..., Any])
_warned: set[str] = set()


def _warn(message: str) -> None:
    """Warn once per process per problem (a decorated function may run thousands of times)."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, EnergyWarning, stacklevel=3)


def _open_sensors(
    backends: Sequence[str],
    powercap_root: str | Path,
    nvml_sample_interval_s: float,
    sample_interval_s: float,
    problems: list[str],
    absent: list[str] | None = None,
) -> list[Sensor]:
    """Start the backends in order; each kind goes to the first that can read it."""
    sensors: list[Sensor] = []
    covered: set[str] = set()
    for name in backends:
        if name == "rapl":
            sensor: Sensor = RaplReader(powercap_root, sample_interval_s)
        elif name == "nvml":
            sensor = NvmlReader(nvml_sample_interval_s)
        else:
            missing = tuple(k for k in ("cpu", "dram") if k not in covered)
            if not missing:
                continue
            sensor = CodecarbonEstimate(missing, sample_interval_s)
        try:
            sensor.start()
        except NoSensor as why:
            if absent is not None:
                absent.append(f"{name}: {why}")
            continue
        except Exception as err:  # any failure of a sensor must not reach the user's code
            problems.append(f"{name}: {err}; falling back to the next method")
            continue
        problems.extend(sensor.problems)
        sensor.problems.clear()
        sensors.append(sensor)
        covered.update(sensor.kinds)
    return sensors


class _Sampler(threading.Thread):
    """Background thread that calls each sensor's ``sample`` at that sensor's interval."""

    def __init__(self, sensors: list[Sensor], problems: list[str]) -> None:
        super().__init__(name="shared-hpc-energy", daemon=True)
        self.sensors = [s for s in sensors if s.sample_interval_s]
        self.problems = problems
        self.failed: set[int] = set()
        self.halt = threading.Event()
        self.cpu_s = 0.0

    def run(self) -> None:
        cpu0 = time.thread_time()
        tick = min(s.sample_interval_s for s in self.sensors)  # type: ignore[type-var]
        due = [time.perf_counter() + s.sample_interval_s for s in self.sensors]  # type: ignore[operator]
        while not self.halt.wait(tick):
            now = time.perf_counter()
            for i, sensor in enumerate(self.sensors):
                if i in self.failed or now < due[i]:
                    continue
                due[i] = now + sensor.sample_interval_s  # type: ignore[operator]
                try:
                    sensor.sample()
                except Exception as err:
                    self.failed.add(i)
                    self.problems.append(f"{sensor.method} failed during the run ({err})")
        self.cpu_s = time.thread_time() - cpu0


class EnergyMeter:
    """Measure the energy of a region of code: context manager, decorator, or start/stop.

    Example:
        >>> with EnergyMeter() as meter:
        ...     train()
        >>> print(meter.report)  # doctest: +SKIP

    Args:
        comm: communicator of the ranks taking part (default: :func:`shared_hpc.get_comm`).
            ``start`` and ``stop`` are collective over it.
        backends: methods to try, in order of preference, from ``rapl``, ``nvml`` and
            ``estimated`` (codecarbon). Leave out ``estimated`` to get measured numbers or none.
        powercap_root: where the RAPL zones live (a test may point it at a tree it wrote).
        nvml_sample_interval_s: power sampling interval for GPUs without an energy counter.
        country_iso_code: grid of the data centre, for :meth:`EnergyReport.co2_kg`.
        node_comm: communicator of the ranks that share this node's devices (default: split by
            shared memory). Passing a colour split simulates several nodes on one host.
        sample_interval_s: interval of RAPL reads (wrap-around) and CPU load samples.
    """

    def __init__(
        self,
        comm: Any = None,
        *,
        backends: Sequence[str] = METHODS,
        powercap_root: str | Path = "/sys/class/powercap",
        nvml_sample_interval_s: float = 0.1,
        country_iso_code: str = "DEU",
        node_comm: Any = None,
        sample_interval_s: float = 1.0,
    ) -> None:
        unknown = [b for b in backends if b not in METHODS]
        if unknown:
            raise ValueError(f"unknown energy backend(s) {unknown}; choose from {list(METHODS)}")
        if sample_interval_s <= 0 or nvml_sample_interval_s <= 0:
            raise ValueError("sampling intervals must be positive")
        self.comm = get_comm() if comm is None else comm
        self.backends = tuple(backends)
        self.powercap_root = powercap_root
        self.nvml_sample_interval_s = nvml_sample_interval_s
        self.country_iso_code = country_iso_code
        self.sample_interval_s = sample_interval_s
        self._node_comm = node_comm
        self._running = False
        self.report: EnergyReport | None = None
        self.overhead_s = 0.0
        """Meter's own cost in the last measurement on this rank: time blocked in ``start`` and
        ``stop`` plus CPU time of its sampling thread."""

    # --- the three ways to use it -------------------------------------------------------
    def __enter__(self) -> EnergyMeter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __call__(self, fn: F) -> F:
        """Decorate ``fn``: each call is measured; the last report is ``fn.energy_report``."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                result = fn(*args, **kwargs)
            wrapper.energy_report = self.report  # type: ignore[attr-defined]
            return result

        wrapper.energy_report = None  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    def start(self) -> None:
        """Begin measuring (collective over ``comm``)."""
        if self._running:
            raise RuntimeError("this EnergyMeter is already running; stop() it first")
        if self._node_comm is None:
            self._node_comm = split_by_node(self.comm)
        self._reader = self._node_comm.Get_rank() == 0
        self._problems: list[str] = []
        self._sensors: list[Sensor] = []
        self._sampler: _Sampler | None = None
        self.comm.barrier()  # waiting for other ranks is not the meter's cost
        began = time.perf_counter()
        if self._reader:
            self._baseline = (time.perf_counter(), psutil.cpu_times())
            self._sensors = _open_sensors(
                self.backends,
                self.powercap_root,
                self.nvml_sample_interval_s,
                self.sample_interval_s,
                self._problems,
            )
            if any(s.sample_interval_s for s in self._sensors):
                self._sampler = _Sampler(self._sensors, self._problems)
                self._sampler.start()
        self.comm.barrier()  # no rank starts working before its node's sensors are read
        self._running = True
        self._t0 = time.perf_counter()
        self.overhead_s = self._t0 - began

    def stop(self) -> EnergyReport:
        """End the measurement and return the report summed over nodes (collective)."""
        if not self._running:
            raise RuntimeError("this EnergyMeter was not started")
        self._running = False
        self.comm.barrier()  # the region ends when the slowest rank is done
        began = time.perf_counter()
        seconds = began - self._t0
        reading = self._read_node() if self._reader else None
        gathered = self.comm.allgather((reading, seconds))
        readings = [r for r, _ in gathered if r is not None]
        self.report = EnergyReport.from_readings(
            readings,
            seconds=max(s for _, s in gathered),
            ranks=self.comm.Get_size(),
            country_iso_code=self.country_iso_code,
        )
        self.overhead_s += time.perf_counter() - began
        if self._sampler is not None:
            self.overhead_s += self._sampler.cpu_s
        self.overhead_s += sum(getattr(s, "setup_cpu_s", 0.0) for s in self._sensors)
        # Warn only now: with warnings turned into errors, raising before the allgather above
        # would leave the other ranks waiting in it.
        for problem in reading.warnings if reading else ():
            _warn(problem)
        return self.report

    # --- reading this node ----------------------------------------------------------------
    def _read_node(self) -> NodeReading:
        reading = NodeReading(host=socket.gethostname())
        if self._sampler is not None:
            self._sampler.halt.set()
            self._sampler.join()
        for sensor in self._sensors:
            try:
                joules = sensor.stop()
            except Exception as err:
                self._problems.append(f"{sensor.method} could not be read at the end ({err})")
                continue
            self._problems.extend(sensor.problems)
            for kind, value in joules.items():
                if kind not in reading.joules:
                    reading.joules[kind] = value
                    reading.methods[kind] = sensor.method
                    reading.devices[kind] = sensor.devices.get(kind, 0)
        self._estimate_lost_kinds(reading)
        reading.warnings = list(dict.fromkeys(self._problems))
        return reading

    def _estimate_lost_kinds(self, reading: NodeReading) -> None:
        """A sensor that died mid-run leaves its kind empty: estimate it over the whole window
        from the load between start and stop."""
        measured = [s for s in self._sensors if s.method != "estimated"]
        started = {k for s in measured for k in (*s.kinds, *s.devices)}
        lost = tuple(k for k in ("cpu", "dram") if k in started and k not in reading.joules)
        if not lost or "estimated" not in self.backends:
            return
        estimate = CodecarbonEstimate(lost)
        try:
            estimate.start(baseline=self._baseline)
            joules = estimate.stop()
        except Exception as err:
            self._problems.append(f"estimated: {err}")
            return
        for kind, value in joules.items():
            reading.joules[kind] = value
            reading.methods[kind] = "estimated"
            reading.devices[kind] = estimate.devices[kind]


def probe_sensors(
    backends: Sequence[str] = METHODS, powercap_root: str | Path = "/sys/class/powercap"
) -> dict[str, Any]:
    """What this node can measure: per kind the method that would be used, and why.

    Starts and stops each backend once; for ``shared-hpc info``. ``absent`` names the sensors
    this machine does not have, ``problems`` those it has but cannot read, ``estimate`` the
    inputs of codecarbon's model if it would be used.
    """
    problems: list[str] = []
    absent: list[str] = []
    sensors = _open_sensors(backends, powercap_root, 0.1, 1.0, problems, absent)
    methods: dict[str, str] = {}
    devices: dict[str, int] = {}
    estimate = None
    for sensor in sensors:
        try:
            sensor.stop()
        except Exception as err:
            problems.append(f"{sensor.method}: {err}")
            continue
        for kind in sensor.kinds:
            methods.setdefault(kind, sensor.method)
            devices.setdefault(kind, sensor.devices.get(kind, 0))
        if isinstance(sensor, CodecarbonEstimate):
            estimate = dataclasses.asdict(power_model())  # type: ignore[arg-type]
    return {
        "methods": methods,
        "devices": devices,
        "absent": absent,
        "problems": problems,
        "estimate": estimate,
    }
