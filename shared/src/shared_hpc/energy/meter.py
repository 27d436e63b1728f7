"""EnergyMeter: measure a region of code on every node of an MPI job, each node exactly once.

Only local rank 0 of each node (rank 0 of ``node_comm``) reads that node's sensors; at ``stop``
the readings are gathered over ``comm`` and summed, so two ranks sharing a node, or eight ranks
sharing four GPUs, never count a device twice. For each device kind the first backend in
``backends`` that can read it wins; a sensor that fails (at start or during the run) costs one
warning and the kind is estimated instead, so measuring never raises inside a training run.

A meter started while another one runs in the same process (a library measuring each training
step inside a command that measures the whole run) reuses the running sensors: it reads the
difference between its start and its stop instead of opening the devices a second time.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from shared_hpc.energy.estimate import CodecarbonEstimate, power_model
from shared_hpc.energy.nvml import NvmlReader
from shared_hpc.energy.rapl import RaplReader
from shared_hpc.energy.report import EnergyReport, NodeReading
from shared_hpc.energy.sensor import METHODS, EnergyWarning, NoSensor, Sensor
from shared_hpc.mpi import Comm, get_comm, split_by_node

__all__ = ["EnergyMeter", "probe_sensors"]

_warned: set[str] = set()


def _warn(message: str) -> None:
    """Warn once per process per problem (a meter may run once per training step)."""
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


class _NodeSensors:
    """The open sensors of this node in this process, shared by every meter that runs.

    A background thread calls each sensor's ``sample`` at its interval; a lock keeps the
    thread's samples and the meters' marks apart.
    """

    def __init__(self, options: tuple[Any, ...]) -> None:
        self.options = options
        self.problems: list[str] = []
        self.sensors = _open_sensors(*options, self.problems)
        self.lock = threading.Lock()
        self.users = 0
        self.halt = threading.Event()
        self.sampler_cpu_s = 0.0
        self._failed: set[int] = set()
        self._thread: threading.Thread | None = None
        if any(s.sample_interval_s for s in self.sensors):
            self._thread = threading.Thread(target=self._sample, name="shared-hpc-energy")
            self._thread.daemon = True
            self._thread.start()

    def _sample(self) -> None:
        cpu0 = time.thread_time()
        sampled = [s for s in self.sensors if s.sample_interval_s]
        tick = min(s.sample_interval_s for s in sampled)  # type: ignore[type-var]
        due = [time.perf_counter() + s.sample_interval_s for s in sampled]  # type: ignore[operator]
        while not self.halt.wait(tick):
            now = time.perf_counter()
            for i, sensor in enumerate(sampled):
                if i in self._failed or now < due[i]:
                    continue
                due[i] = now + sensor.sample_interval_s  # type: ignore[operator]
                try:
                    with self.lock:
                        sensor.sample()
                except Exception as err:
                    self._failed.add(i)
                    self.problems.append(f"{sensor.method} failed during the run ({err})")
        self.sampler_cpu_s = time.thread_time() - cpu0

    def marks(self) -> list[Any]:
        """Where each sensor stands now (``None`` for one that cannot be read any more)."""
        marks = []
        with self.lock:
            for sensor in self.sensors:
                try:
                    marks.append(sensor.mark())
                except Exception as err:
                    self.problems.append(f"{sensor.method} could not be read ({err})")
                    marks.append(None)
        return marks

    def read_since(self, marks: list[Any]) -> NodeReading:
        """Energy, method and devices per kind since ``marks``, each kind from one sensor."""
        reading = NodeReading(host=socket.gethostname())
        with self.lock:
            for sensor, mark in zip(self.sensors, marks, strict=True):
                if mark is None:
                    continue
                try:
                    joules = sensor.joules_since(mark)
                except Exception as err:
                    self.problems.append(f"{sensor.method} could not be read at the end ({err})")
                    continue
                self.problems.extend(sensor.problems)
                sensor.problems.clear()
                for kind, value in joules.items():
                    if kind not in reading.joules:
                        reading.joules[kind] = value
                        reading.methods[kind] = sensor.method
                        reading.devices[kind] = sensor.devices.get(kind, 0)
        return reading

    def close(self) -> None:
        self.halt.set()
        if self._thread is not None:
            self._thread.join()
        for sensor in self.sensors:
            try:
                sensor.close()
            except Exception as err:
                self.problems.append(f"{sensor.method} could not be closed ({err})")

    @property
    def setup_cpu_s(self) -> float:
        return sum(getattr(s, "setup_cpu_s", 0.0) for s in self.sensors)


_running: dict[tuple[Any, ...], _NodeSensors] = {}
_running_lock = threading.Lock()


class EnergyMeter:
    """Measure the energy of a region of code, as a context manager or with start/stop.

    Example:
        >>> with EnergyMeter() as meter:  # doctest: +SKIP
        ...     train()
        >>> print(meter.report)  # doctest: +SKIP

    Args:
        comm: Communicator of the ranks taking part (default: ``shared_hpc.get_comm()``).
            ``start`` and ``stop`` are collective over it.
        backends: Methods to try, in order of preference, from ``rapl``, ``nvml`` and
            ``estimated`` (codecarbon). Leave out ``estimated`` to get measured numbers or none.
        powercap_root: Where the RAPL zones live (a test may point it at a tree it wrote).
        nvml_sample_interval_s: Power sampling interval for GPUs without an energy counter.
        node_comm: Communicator of the ranks that share this node's devices (default: split by
            shared memory). Passing a colour split simulates several nodes on one host.
        sample_interval_s: Interval of RAPL reads (wrap-around) and CPU load samples.
    """

    def __init__(
        self,
        comm: Comm | None = None,
        *,
        backends: Sequence[str] = METHODS,
        powercap_root: str | Path = "/sys/class/powercap",
        nvml_sample_interval_s: float = 0.1,
        node_comm: Comm | None = None,
        sample_interval_s: float = 1.0,
    ) -> None:
        unknown = [b for b in backends if b not in METHODS]
        if unknown:
            raise ValueError(f"unknown energy backend(s) {unknown}; choose from {list(METHODS)}")
        if sample_interval_s <= 0 or nvml_sample_interval_s <= 0:
            raise ValueError("sampling intervals must be positive")
        self.comm = get_comm() if comm is None else comm
        self._options = (tuple(backends), str(powercap_root), nvml_sample_interval_s,
                         sample_interval_s)  # fmt: skip
        self._node_comm = node_comm
        self._running = False
        self.report: EnergyReport | None = None
        self.overhead_s = 0.0
        """Meter's own cost in the last measurement on this rank: time blocked in ``start`` and
        ``stop`` plus CPU time of its sampling thread."""

    def __enter__(self) -> EnergyMeter:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.stop()
        else:
            self.abandon()

    def start(self) -> None:
        """Begin measuring (collective over ``comm``)."""
        if self._running:
            raise RuntimeError("this EnergyMeter is already running; stop() it first")
        if self._node_comm is None:
            self._node_comm = split_by_node(self.comm)
        self._reader = self._node_comm.Get_rank() == 0
        self._node: _NodeSensors | None = None
        self.comm.barrier()  # waiting for other ranks is not the meter's cost
        began = time.perf_counter()
        if self._reader:
            self._baseline = (time.perf_counter(), psutil.cpu_times())
            with _running_lock:
                node = _running.get(self._options)
                self._opened = node is None
                if node is None:
                    node = _running[self._options] = _NodeSensors(self._options)
                node.users += 1
            self._node = node
            self._marks = node.marks()
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
        reading = self._read_node()
        gathered = self.comm.allgather((reading, seconds))
        readings = [r for r, _ in gathered if r is not None]
        self.report = EnergyReport.from_readings(
            readings, seconds=max(s for _, s in gathered), ranks=self.comm.Get_size()
        )
        self.overhead_s += time.perf_counter() - began
        # Warn only now: with warnings turned into errors, raising before the allgather above
        # would leave the other ranks waiting in it.
        for problem in reading.warnings if reading else ():
            _warn(problem)
        return self.report

    def abandon(self) -> None:
        """End a measurement that failed: release this rank's sensors, no collective call.

        Another rank may have failed and never reach a collective, so a meter left by an
        exception reports only this rank's node (``report``) and waits for nobody.
        """
        if not self._running:
            return
        self._running = False
        seconds = time.perf_counter() - self._t0
        reading = self._read_node()
        self.report = EnergyReport.from_readings(
            [reading] if reading else [], seconds=seconds, ranks=1
        )

    def _read_node(self) -> NodeReading | None:
        """This node's reading since ``start`` (reader rank only), releasing the sensors."""
        node = self._node
        if node is None:
            return None
        reading = node.read_since(self._marks)
        self._estimate_lost_kinds(node, reading)
        with _running_lock:
            node.users -= 1
            last = node.users == 0
            if last:
                del _running[self._options]
        if last:
            node.close()
        if self._opened:
            self.overhead_s += node.sampler_cpu_s + node.setup_cpu_s
        reading.warnings = list(dict.fromkeys(node.problems))
        self._node = None
        return reading

    def _estimate_lost_kinds(self, node: _NodeSensors, reading: NodeReading) -> None:
        """A sensor that died mid-run leaves its kind empty: estimate it over the whole window
        from the load between start and stop."""
        started = {
            k
            for s, mark in zip(node.sensors, self._marks, strict=True)
            if s.method != "estimated" and mark is not None
            for k in s.devices
        }
        lost = tuple(k for k in ("cpu", "dram") if k in started and k not in reading.joules)
        if not lost or "estimated" not in self._options[0]:
            return
        estimate = CodecarbonEstimate(lost)
        try:
            estimate.start(baseline=self._baseline)
            joules = estimate.stop()
        except Exception as err:
            node.problems.append(f"estimated: {err}")
            return
        for kind, value in joules.items():
            reading.joules[kind] = value
            reading.methods[kind] = "estimated"
            reading.devices[kind] = estimate.devices[kind]


def probe_sensors(
    backends: Sequence[str] = METHODS, powercap_root: str | Path = "/sys/class/powercap"
) -> dict[str, Any]:
    """What this node can measure: per kind the method that would be used, and why.

    Starts and closes each backend once; for ``shared-hpc info``. ``absent`` names the sensors
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
            sensor.close()
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
