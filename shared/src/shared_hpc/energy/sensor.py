"""What every energy backend provides, and the two ways a backend can decline to measure."""

from __future__ import annotations

from typing import Any

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


class Sensor:
    """An energy backend for the devices of one node, read by several meters at once.

    ``start`` raises ``NoSensor`` or ``SensorError``; afterwards ``kinds`` and
    ``devices`` say what it measures. The meter calls ``sample`` every ``sample_interval_s``
    seconds from a background thread (``None``: no sampling needed). A meter that begins while
    the sensor runs takes a ``mark`` and later asks for the ``joules_since`` it, so nested
    meters share one sensor; ``close`` releases it. ``problems`` collects partial failures (one
    kind unreadable) as readable sentences.
    """

    method: str = ""
    kinds: tuple[str, ...] = ()
    sample_interval_s: float | None = None

    def __init__(self) -> None:
        self.devices: dict[str, int] = {}
        self.problems: list[str] = []
        self.origin: Any = None

    def start(self) -> None:
        """Open the devices and take the first reading (``origin``)."""
        raise NotImplementedError

    def sample(self) -> None:
        """Read the devices now (wrap-around, power integration, load)."""

    def mark(self) -> Any:
        """An opaque position from which ``joules_since`` counts."""
        raise NotImplementedError

    def joules_since(self, mark: Any) -> dict[str, float]:
        """Energy per kind since ``mark``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the devices."""

    def stop(self) -> dict[str, float]:
        """Energy per kind since ``start``, then close."""
        try:
            return self.joules_since(self.origin)
        finally:
            self.close()
