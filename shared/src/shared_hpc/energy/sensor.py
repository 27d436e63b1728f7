"""What every energy backend provides, and the two ways a backend can decline to measure."""

from __future__ import annotations

from typing import Protocol

__all__ = ["KINDS", "METHODS", "EnergyWarning", "NoSensor", "Sensor", "SensorError"]

KINDS = ("cpu", "dram", "gpu")
"""Device kinds, in the order reports list them."""

METHODS = ("rapl", "nvml", "estimated")
"""Backend names, in the default order of preference."""


class EnergyWarning(RuntimeWarning):
    """A sensor could not be read; the meter fell back to the next method."""


class NoSensor(Exception):
    """This machine has no such device (e.g. no NVIDIA GPU): skip the backend quietly."""


class SensorError(Exception):
    """The device exists but its sensor cannot be read: warn and fall back."""


class Sensor(Protocol):
    """An energy backend for the devices of one node.

    ``start`` raises :class:`NoSensor` or :class:`SensorError`; afterwards ``kinds`` and
    ``devices`` say what it measures. The meter calls ``sample`` every ``sample_interval_s``
    seconds from a background thread (``None``: no sampling needed), then ``stop`` once.
    ``problems`` collects partial failures (one kind unreadable) as readable sentences.
    """

    method: str
    kinds: tuple[str, ...]
    devices: dict[str, int]
    problems: list[str]
    sample_interval_s: float | None

    def start(self) -> None: ...

    def sample(self) -> None: ...

    def stop(self) -> dict[str, float]: ...
