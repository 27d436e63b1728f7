"""Top-of-atmosphere insolation from date, time and position.

The model gets insolation as a forcing channel (as GraphCast does), computed here instead of read
from the data, so any ERA5-style dataset works without an extra variable. Orbital formulas of
Spencer (1971): declination and Earth–Sun distance from the day of the year, solar time from UTC
and longitude (equation of time neglected, < 17 min).
"""

from __future__ import annotations

import numpy as np

SOLAR_CONSTANT = 1361.0  # W m-2


def _day_angle(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Day angle (radians over the year) and UTC hour of ``times`` (datetime64)."""
    times = np.asarray(times, dtype="datetime64[s]")
    year_start = times.astype("datetime64[Y]").astype("datetime64[s]")
    days = (times - year_start).astype(np.float64) / 86400.0
    hours = (days % 1.0) * 24.0
    return 2.0 * np.pi * np.floor(days) / 365.25, hours


def declination(times: np.ndarray) -> np.ndarray:
    """Solar declination in radians (Spencer 1971).

    Args:
        times: The times (datetime64, UTC).
    """
    g, _ = _day_angle(times)
    return (
        0.006918
        - 0.399912 * np.cos(g)
        + 0.070257 * np.sin(g)
        - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g)
        - 0.002697 * np.cos(3 * g)
        + 0.00148 * np.sin(3 * g)
    )


def _distance_factor(times: np.ndarray) -> np.ndarray:
    g, _ = _day_angle(times)
    return 1.00011 + 0.034221 * np.cos(g) + 0.00128 * np.sin(g) + 0.000719 * np.cos(2 * g)


def toa_insolation(times: np.ndarray, lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """Instantaneous insolation [W m-2], shape ``[len(times), len(lat), len(lon)]``.

    Args:
        times: The times (datetime64, UTC).
        lat_deg: Latitudes in degrees.
        lon_deg: Longitudes in degrees.
    """
    times = np.atleast_1d(np.asarray(times, dtype="datetime64[s]"))
    dec = declination(times)[:, None, None]
    _, hours = _day_angle(times)
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))[None, :, None]
    lon = np.radians(np.asarray(lon_deg, dtype=np.float64))[None, None, :]
    hour_angle = 2.0 * np.pi * hours[:, None, None] / 24.0 + lon - np.pi
    cos_zenith = np.sin(lat) * np.sin(dec) + np.cos(lat) * np.cos(dec) * np.cos(hour_angle)
    return SOLAR_CONSTANT * _distance_factor(times)[:, None, None] * np.maximum(cos_zenith, 0.0)


def daily_mean_insolation(times: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    """Insolation averaged over the day [W m-2], shape ``[len(times), len(lat)]``.

    Args:
        times: The times (datetime64, UTC).
        lat_deg: Latitudes in degrees.
    """
    times = np.atleast_1d(np.asarray(times, dtype="datetime64[s]"))
    dec = declination(times)[:, None]
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))[None, :]
    h0 = np.arccos(np.clip(-np.tan(lat) * np.tan(dec), -1.0, 1.0))  # half-day length
    daily = h0 * np.sin(lat) * np.sin(dec) + np.cos(lat) * np.cos(dec) * np.sin(h0)
    return SOLAR_CONSTANT * _distance_factor(times)[:, None] * daily / np.pi
