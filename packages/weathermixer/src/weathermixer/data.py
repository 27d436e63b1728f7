"""ERA5-style data through xarray: validated, lazily read, one latitude band and channel subset
per rank, normalised with statistics computed once and stored.

A *store* is one or more netCDF files (or zarr stores) along time with pressure-level variables
``(time, level, latitude, longitude)``, surface variables ``(time, latitude, longitude)`` and
optional static fields ``(latitude, longitude)`` on one regular global lat–lon grid. The
dimension names of the CDS (``valid_time``, ``pressure_level``) are accepted as aliases, and so
are the long variable names of WeatherBench 2 (``geopotential``, ``2m_temperature``, ...; see
``LONG_NAMES``), which are mapped to the ERA5 short names used everywhere else. Reads
go through xarray's lazy indexing, so only the requested time, latitude band and level leave the
disk: a rank of a Jigsaw process grid reads only its part of the domain.

Channels are ordered: pressure variables × levels (``z500``, ``z850``, ``t500``...), then surface
variables. The model input adds *extra* channels: insolation at the input and the target time
(computed, see ``weathermixer.solar``) and the static fields.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from shared_hpc import Comm, UserError, atomic_path, file_fingerprint
from weathermixer.solar import SOLAR_CONSTANT, toa_insolation
from weathermixer.together import first_refusal

DIM_ALIASES = {
    "time": ("time", "valid_time"),
    "level": ("level", "pressure_level", "isobaricInhPa", "plev"),
    "latitude": ("latitude",),
    "longitude": ("longitude",),
}
INSOLATION = ("toa_incident_solar_radiation", "toa_incident_solar_radiation_next")
# WeatherBench 2 (and CDS "long") variable names -> ERA5 short names.
LONG_NAMES = {
    "geopotential": "z",
    "temperature": "t",
    "u_component_of_wind": "u",
    "v_component_of_wind": "v",
    "vertical_velocity": "w",
    "specific_humidity": "q",
    "relative_humidity": "r",
    "2m_temperature": "t2m",
    "2m_dewpoint_temperature": "d2m",
    "10m_u_component_of_wind": "u10",
    "10m_v_component_of_wind": "v10",
    "mean_sea_level_pressure": "msl",
    "surface_pressure": "sp",
    "total_column_water_vapour": "tcwv",
    "sea_surface_temperature": "sst",
}


@dataclass(frozen=True)
class Variables:
    """Which variables and levels make up the state, and which static fields the model sees.

    Attributes:
        pressure: Variables on pressure levels (ERA5 short names).
        levels: Pressure levels in hPa.
        surface: Surface variables.
        static: Static fields the model gets as inputs.
    """

    pressure: tuple[str, ...] = ("z", "t", "u", "v")
    levels: tuple[int, ...] = (500, 850)
    surface: tuple[str, ...] = ("t2m", "u10", "v10", "msl")
    static: tuple[str, ...] = ("geopotential_at_surface", "land_sea_mask")

    @property
    def state_channels(self) -> list[str]:
        return [f"{v}{lev}" for v in self.pressure for lev in self.levels] + list(self.surface)

    @property
    def extra_channels(self) -> list[str]:
        return [*INSOLATION, *self.static]

    def __post_init__(self) -> None:
        if not self.pressure and not self.surface:
            raise UserError("no state variables: give pressure-level or surface variables")
        if self.pressure and not self.levels:
            raise UserError("pressure-level variables need at least one level")
        names = self.state_channels + self.extra_channels
        if len(set(names)) != len(names):
            raise UserError(f"channel names repeat: {names}")


def _is_zarr(path: Path) -> bool:
    """A zarr store: named ``*.zarr`` or a folder with zarr v2 or v3 metadata at its top."""
    marks = (".zgroup", ".zmetadata", "zarr.json")
    return path.suffix == ".zarr" or (path.is_dir() and any((path / m).exists() for m in marks))


def _open(path: Path) -> xr.Dataset:
    if _is_zarr(path):
        try:
            import zarr  # noqa: F401
        except ImportError:
            raise UserError(
                f"{path} is a zarr store; install zarr (pip install 'weathermixer[zarr]')"
            ) from None
        with warnings.catch_warnings():  # stores without consolidated metadata are fine
            warnings.simplefilter("ignore", RuntimeWarning)
            return xr.open_zarr(path, chunks=None)
    if not path.exists():
        raise UserError(f"no such data file: {path}")
    try:
        return xr.open_dataset(path, engine="netcdf4", chunks=None, cache=False)
    except OSError as err:
        raise UserError(f"{path} is not a readable netCDF file ({err})") from None


def _canonical_dims(ds: xr.Dataset, path: Path) -> xr.Dataset:
    """Rename known dimension aliases to time/level/latitude/longitude and long variable names
    to short ones (where the short one is not taken), or say what is wrong."""
    names = {
        long: short
        for long, short in LONG_NAMES.items()
        if long in ds.data_vars and short not in ds.variables
    }
    ds = ds.rename(names) if names else ds
    rename = {}
    for canonical, aliases in DIM_ALIASES.items():
        found = [a for a in aliases if a in ds.dims]
        if found and found[0] != canonical:
            rename[found[0]] = canonical
    ds = ds.rename(rename) if rename else ds
    for required in ("latitude", "longitude"):
        if required not in ds.dims:
            raise UserError(
                f"{path}: no '{required}' dimension (found dimensions {sorted(ds.dims)}); "
                f"rename yours, e.g. ds.rename({{'lat': 'latitude', 'lon': 'longitude'}})"
            )
    return ds


def _check_regular(values: np.ndarray, name: str, path: Path) -> float:
    step = np.diff(values)
    if values.size < 2 or not np.allclose(step, step[0], rtol=1e-4, atol=1e-6) or step[0] == 0:
        raise UserError(f"{path}: {name} is not a regular grid (steps {np.unique(step)[:5]})")
    return float(step[0])


class Era5Store:
    """A validated, lazily read ERA5-style dataset, one or more files along time.

    Args:
        paths: netCDF files or zarr stores, in time order (a directory or glob is expanded).
        variables: The state and static variables to use.
        static_path: A separate file with the static fields (ERA5 ships them apart).

    Raises:
        UserError: A file is missing or unreadable, or lacks a variable, level or dimension,
            the grid is not regular and global, or the time steps are not uniform.
    """

    def __init__(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        variables: Variables | None = None,
        static_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.variables = variables or Variables()
        self.paths = _expand(paths)
        self.datasets = [_canonical_dims(_open(p), p) for p in self.paths]
        self._level_positions: list[dict[int, int]] = []
        for ds, path in zip(self.datasets, self.paths, strict=True):
            self._check_file(ds, path)
        self._check_grid()
        times = [ds["time"].values.astype("datetime64[s]") for ds in self.datasets]
        self.times = np.concatenate(times)
        if self.times.size < 2:
            raise UserError(f"need at least two time steps, found {self.times.size}")
        steps = np.diff(self.times).astype(np.int64)
        if (steps <= 0).any():
            raise UserError("time is not strictly increasing across the files; sort them")
        if (steps != steps[0]).any():
            raise UserError(
                f"time steps are not uniform (found {sorted(set(steps.tolist()))[:5]} s); "
                "gaps or mixed intervals are not supported"
            )
        self.interval_s = int(steps[0])
        self._file_of = np.concatenate([np.full(len(t), i) for i, t in enumerate(times)])
        self._index_in_file = np.concatenate([np.arange(len(t)) for t in times])
        self._static_ds = self.datasets[0]
        self.static_path = None if static_path is None else Path(static_path)
        if self.static_path is not None:
            self._static_ds = _canonical_dims(_open(self.static_path), self.static_path)
        for name in self.variables.static:
            if name not in self._static_ds:
                raise UserError(
                    f"static variable '{name}' not found (looked in {static_path or self.paths[0]};"
                    f" variables there: {sorted(self._static_ds.data_vars)})"
                )
        self._static_cache: dict[tuple[str, int, int], np.ndarray] = {}
        self._memory: tuple[tuple[int, int], list[int], np.ndarray] | None = None

    # --- validation ---------------------------------------------------------------------
    def _check_file(self, ds: xr.Dataset, path: Path) -> None:
        v = self.variables
        if "time" not in ds.dims:
            raise UserError(f"{path}: no 'time' dimension (found {sorted(ds.dims)})")
        missing = [n for n in (*v.pressure, *v.surface) if n not in ds.data_vars]
        if missing:
            raise UserError(
                f"{path}: variable(s) {missing} not found; the file has {sorted(ds.data_vars)}"
            )
        for name in v.pressure:
            self._check_dims(ds[name], ("time", "level", "latitude", "longitude"), path)
        for name in v.surface:
            self._check_dims(ds[name], ("time", "latitude", "longitude"), path)
        positions: dict[int, int] = {}
        if v.pressure:
            have = np.rint(ds["level"].values.astype(np.float64)).astype(int).tolist()
            absent = [lev for lev in v.levels if lev not in have]
            if absent:
                raise UserError(f"{path}: pressure level(s) {absent} not found (has {have})")
            positions = {k: have.index(lev) for k, lev in enumerate(v.levels)}
        self._level_positions.append(positions)

    @staticmethod
    def _check_dims(da: xr.DataArray, expected: tuple[str, ...], path: Path) -> None:
        if set(da.dims) != set(expected):
            raise UserError(
                f"{path}: variable '{da.name}' has dimensions {da.dims}, expected {expected}"
            )

    def _check_grid(self) -> None:
        first = self.datasets[0]
        lat = first["latitude"].values.astype(np.float64)
        lon = first["longitude"].values.astype(np.float64)
        dlat = _check_regular(lat, "latitude", self.paths[0])
        dlon = _check_regular(lon, "longitude", self.paths[0])
        if not np.isclose(abs(dlon) * lon.size, 360.0, rtol=1e-4):
            raise UserError(
                f"{self.paths[0]}: longitude covers {abs(dlon) * lon.size:.3f}°, not the globe"
            )
        if abs(lat).max() > 90.0 + 1e-6:
            raise UserError(f"{self.paths[0]}: latitude outside ±90°")
        for ds, path in zip(self.datasets[1:], self.paths[1:], strict=True):
            same = ds["latitude"].size == lat.size and ds["longitude"].size == lon.size
            if not same or not np.allclose(ds["latitude"].values, lat):
                raise UserError(f"{path}: grid differs from {self.paths[0]}")
        self.flipped = dlat > 0  # model rows always run north to south, like ERA5
        self.latitude = lat[::-1].copy() if self.flipped else lat
        self.longitude = lon

    def fingerprint(self) -> dict[str, Any]:
        """The identity of the data: sizes and content hashes of its files (the static file
        included), which a checkpoint stores so that a resume on other data is refused.

        A zarr store is identified by the metadata files at its top (its chunks are not read).
        """
        files = [*self.paths, *([self.static_path] if self.static_path else [])]
        parts = [_fingerprint(p) for p in files]
        if len(parts) == 1:
            return parts[0]
        digest = hashlib.sha256("".join(p["sha256"] for p in parts).encode())
        return {
            "path": os.path.commonpath([p["path"] for p in parts]),
            "size": sum(p["size"] for p in parts),
            "sha256": digest.hexdigest(),
            "sampled": any(p["sampled"] for p in parts),
            "files": len(parts),
        }

    # --- reading ------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return self.latitude.size, self.longitude.size

    def _file_rows(self, rows: slice) -> tuple[slice, bool]:
        start, stop, _ = rows.indices(self.latitude.size)
        if self.flipped:
            n = self.latitude.size
            return slice(n - stop, n - start), True
        return slice(start, stop), False

    def preload(self, rows: slice = slice(None), channels: Sequence[int] | None = None) -> int:
        """Keep a band and channels of every time step in memory (for data that fits).

        Later reads of that part are served from memory.

        Args:
            rows: The latitude band.
            channels: State channels (default: all).

        Returns:
            The bytes held.
        """
        channels = list(range(len(self.variables.state_channels)) if channels is None else channels)
        data = np.stack([self.read(i, rows, channels) for i in range(self.times.size)])
        start, stop, _ = rows.indices(self.shape[0])
        self._memory = ((start, stop), channels, data)
        return data.nbytes

    def read(
        self, index: int, rows: slice = slice(None), channels: Sequence[int] | None = None
    ) -> np.ndarray:
        """State channels at one time on a latitude band: ``[c, rows, lon]``.

        Each variable is read once, for just the band and levels needed (positional indexing
        of the lazily opened variable: a hyperslab read, no whole-field load).

        Args:
            index: The time index.
            rows: The latitude band (rows north to south).
            channels: State channels, in the order returned (default: all).

        Raises:
            UserError: A value read is NaN or infinite.
        """
        if self._memory is not None:
            (start, stop), held, data = self._memory
            a, b, _ = rows.indices(self.shape[0])
            wanted = list(
                range(len(self.variables.state_channels)) if channels is None else channels
            )
            if start <= a and b <= stop and set(wanted) <= set(held):
                return data[index, [held.index(c) for c in wanted], a - start : b - start]
        v = self.variables
        n_pressure = len(v.pressure) * len(v.levels)
        channels = list(range(len(v.state_channels)) if channels is None else channels)
        file_index = int(self._file_of[index])
        ds = self.datasets[file_index]
        t = int(self._index_in_file[index])
        file_rows, flip = self._file_rows(rows)
        wanted: dict[str, list[int]] = {}  # variable -> level positions in the request
        for c in channels:
            if c < n_pressure:
                wanted.setdefault(v.pressure[c // len(v.levels)], []).append(c % len(v.levels))
            else:
                wanted.setdefault(v.surface[c - n_pressure], [])
        fields: dict[tuple[str, int], np.ndarray] = {}
        for name, levels in wanted.items():
            var = ds[name].variable
            key = {"time": t, "latitude": file_rows, "longitude": slice(None)}
            if levels:
                positions = [self._level_positions[file_index][lev] for lev in levels]
                key["level"] = _as_slice(positions)
            data = np.asarray(var[tuple(key[d] for d in var.dims)].values, dtype=np.float32)
            kept = [d for d in var.dims if d != "time"]
            order = [kept.index(d) for d in ("level", "latitude", "longitude") if d in kept]
            data = np.transpose(data, order)
            if levels:
                for k, lev in enumerate(levels):
                    fields[(name, lev)] = data[k]
            else:
                fields[(name, -1)] = data
        out = []
        for c in channels:
            if c < n_pressure:
                field = fields[(v.pressure[c // len(v.levels)], c % len(v.levels))]
            else:
                field = fields[(v.surface[c - n_pressure], -1)]
            if not np.isfinite(field).all():
                bad = int((~np.isfinite(field)).sum())
                raise UserError(
                    f"{self.paths[file_index]}: '{v.state_channels[c]}' has {bad} NaN/inf "
                    f"value(s) at {self.times[index]} (rows {file_rows.start}..{file_rows.stop}); "
                    "fill or drop those times before training"
                )
            out.append(field[::-1] if flip else field)
        if not out:
            return np.zeros((0, file_rows.stop - file_rows.start, self.longitude.size), np.float32)
        return np.stack(out)

    def static(self, name: str, rows: slice = slice(None)) -> np.ndarray:
        """A static field on a latitude band (cached: it never changes).

        Args:
            name: The field's variable name.
            rows: The latitude band.
        """
        start, stop, _ = rows.indices(self.latitude.size)
        key = (name, start, stop)
        if key not in self._static_cache:
            file_rows, flip = self._file_rows(rows)
            da = self._static_ds[name]
            if "time" in da.dims:  # ERA5 ships invariants with a length-1 time axis
                da = da.isel(time=0)
            field = np.asarray(
                da.isel(latitude=file_rows).transpose("latitude", "longitude").values, np.float32
            )
            if not np.isfinite(field).all():
                raise UserError(f"static field '{name}' has NaN values")
            self._static_cache[key] = field[::-1].copy() if flip else field
        return self._static_cache[key]

    def insolation(self, index: int, rows: slice = slice(None)) -> np.ndarray:
        """Top-of-atmosphere insolation divided by the solar constant: ``[rows, lon]``.

        Args:
            index: The time index.
            rows: The latitude band.
        """
        start, stop, _ = rows.indices(self.latitude.size)
        lat = self.latitude[start:stop]
        return (toa_insolation(self.times[index : index + 1], lat, self.longitude)[0]).astype(
            np.float32
        ) / np.float32(SOLAR_CONSTANT)

    def close(self) -> None:
        """Close the files."""
        for ds in self.datasets:
            ds.close()
        self._static_ds.close()


def _fingerprint(path: Path) -> dict[str, Any]:
    """``file_fingerprint`` of a file; of a zarr store, one over its top-level metadata files."""
    if not path.is_dir():
        return file_fingerprint(path)
    parts = [file_fingerprint(p) for p in sorted(path.iterdir()) if p.is_file()]
    digest = hashlib.sha256("".join(p["sha256"] for p in parts).encode())
    return {
        "path": str(path.resolve()),
        "size": sum(p["size"] for p in parts),
        "sha256": digest.hexdigest(),
        "sampled": True,
    }


def _as_slice(positions: list[int]) -> slice | list[int]:
    """A slice for ascending consecutive positions (one contiguous read), else the list."""
    if positions == list(range(positions[0], positions[0] + len(positions))):
        return slice(positions[0], positions[0] + len(positions))
    return positions


def _expand(paths: Any) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        text = os.fspath(paths)
        path = Path(text)
        if any(ch in text for ch in "*?["):
            found = sorted(path.parent.glob(path.name))
            if not found:
                raise UserError(f"no files match {text}")
            return found
        if path.is_dir() and not _is_zarr(path):
            found = sorted(path.glob("*.nc"))
            if not found:
                raise UserError(f"no .nc files in {path}")
            return found
        return [path]
    paths = [Path(p) for p in paths]
    if not paths:
        raise UserError("no data files given")
    return paths


def latitude_weights(latitude: np.ndarray) -> np.ndarray:
    """Cell-area weights of a regular latitude grid, normalised to mean 1 (WeatherBench 2).

    A row's weight is sin(φ + Δ/2) − sin(φ − Δ/2) with the edges clipped to ±90°: exactly
    ∝ cos φ away from the poles, and half a cell for rows that sit on a pole (ERA5's 721 rows).

    Args:
        latitude: Latitudes of the rows in degrees.
    """
    lat = np.asarray(latitude, dtype=np.float64)
    if lat.size == 1:
        return np.ones(1)
    delta = abs(lat[1] - lat[0])
    upper = np.radians(np.clip(lat + delta / 2, -90.0, 90.0))
    lower = np.radians(np.clip(lat - delta / 2, -90.0, 90.0))
    w = np.abs(np.sin(upper) - np.sin(lower))
    return w / w.mean()


@dataclass(frozen=True)
class Shard:
    """The part of the data one rank holds: a latitude band and subsets of the channels.

    Attributes:
        rows: The latitude band.
        state: Indices of the state channels.
        extra: Indices of the extra channels.
    """

    rows: slice
    state: tuple[int, ...]
    extra: tuple[int, ...]

    @classmethod
    def full(cls, store: Era5Store) -> Shard:
        """All of the data of ``store``.

        Args:
            store: The data.
        """
        v = store.variables
        return cls(
            slice(0, store.shape[0]),
            tuple(range(len(v.state_channels))),
            tuple(range(len(v.extra_channels))),
        )


@dataclass
class NormStats:
    """Per-channel normalisation: mean and std of every channel, std of the state's change
    over one lead time (the model predicts that change, GraphCast-style).

    Attributes:
        channels: State then extra channel names.
        mean: Area-weighted mean per channel.
        std: Area-weighted standard deviation per channel (1 for constant fields).
        diff_std: Standard deviation of the change over one lead, per state channel.
        lead_time_h: The lead time of ``diff_std``.
        n_samples: Time steps the statistics were computed from.
    """

    channels: list[str]
    mean: np.ndarray
    std: np.ndarray
    diff_std: np.ndarray
    lead_time_h: float
    n_samples: int

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write as netCDF, atomically.

        Args:
            path: The file.
        """
        path = Path(path)
        n_state = self.diff_std.size
        ds = xr.Dataset(
            {
                "mean": ("channel", self.mean),
                "std": ("channel", self.std),
                "diff_std": ("state_channel", self.diff_std),
            },
            coords={"channel": self.channels, "state_channel": self.channels[:n_state]},
            attrs={
                "lead_time_h": self.lead_time_h,
                "n_samples": self.n_samples,
                "description": "weathermixer normalisation statistics (area-weighted)",
            },
        )
        with atomic_path(path) as tmp:
            ds.to_netcdf(tmp, engine="netcdf4")
        return path

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> NormStats:
        """Statistics written by ``write``.

        Args:
            path: The file.

        Raises:
            UserError: ``path`` is missing or not a statistics file.
        """
        try:
            ds = xr.open_dataset(path, engine="netcdf4")
        except (OSError, ValueError) as err:
            raise UserError(f"{path} is not a readable statistics file ({err})") from None
        with ds:
            return cls(
                channels=[str(c) for c in ds["channel"].values],
                mean=ds["mean"].values.astype(np.float64),
                std=ds["std"].values.astype(np.float64),
                diff_std=ds["diff_std"].values.astype(np.float64),
                lead_time_h=float(ds.attrs["lead_time_h"]),
                n_samples=int(ds.attrs["n_samples"]),
            )

    def matches(self, variables: Variables, lead_time_h: float) -> bool:
        """Whether these statistics are of the same channels and lead time.

        Args:
            variables: The run's variables.
            lead_time_h: The run's lead time.
        """
        names = variables.state_channels + variables.extra_channels
        return self.channels == names and np.isclose(self.lead_time_h, lead_time_h)


def extras(store: Era5Store, index: int, lead_steps: int, shard: Shard) -> np.ndarray:
    """Raw extra channels for a step from ``index`` to ``index + lead_steps``: ``[e, rows, lon]``.

    Args:
        store: The data.
        index: The time index of the step's start.
        lead_steps: The lead time in time steps.
        shard: Which band and extra channels.
    """
    names = store.variables.extra_channels
    out = []
    for e in shard.extra:
        if names[e] == INSOLATION[0]:
            out.append(store.insolation(index, shard.rows))
        elif names[e] == INSOLATION[1]:
            out.append(store.insolation(index + lead_steps, shard.rows))
        else:
            out.append(store.static(names[e], shard.rows))
    if not out:
        start, stop, _ = shard.rows.indices(store.shape[0])
        return np.zeros((0, stop - start, store.shape[1]), np.float32)
    return np.stack(out)


def compute_stats(
    store: Era5Store,
    times: Sequence[int],
    lead_steps: int,
    shard: Shard | None = None,
    comm: Comm | None = None,
) -> NormStats:
    """Area-weighted statistics over ``times`` (time indices that have a successor at lead).

    Collective over ``comm``: every rank passes its own shard and time subset, together covering
    each (time, row, channel) once; partial sums are exchanged with one allgather, so each rank
    reads only its part of the data and all ranks return the same statistics. NaNs found by one
    rank travel in the same allgather, so that every rank refuses them together.

    Args:
        store: The data.
        times: This rank's time indices.
        lead_steps: The lead time in time steps.
        shard: This rank's band and channels (default: all of the data).
        comm: The ranks that share the work (default: none, one process).

    Raises:
        UserError: A value read on some rank is NaN or infinite (on every rank of ``comm``).
    """
    v = store.variables
    shard = shard or Shard.full(store)
    n_state, n_extra = len(v.state_channels), len(v.extra_channels)
    start, stop, _ = shard.rows.indices(store.shape[0])
    w = latitude_weights(store.latitude)[start:stop, None] / store.shape[1] / store.shape[0]
    sums = np.zeros((3, n_state + n_extra))  # weight, Σ w x, Σ w x²
    diff = np.zeros(n_state)  # Σ w (Δx)²
    count = 0
    refusal = None
    try:
        for t in times:
            if t + lead_steps >= store.times.size:
                raise ValueError(f"time index {t} has no target {lead_steps} steps later")
            now = store.read(t, shard.rows, shard.state).astype(np.float64)
            later = store.read(t + lead_steps, shard.rows, shard.state).astype(np.float64)
            ext = extras(store, t, lead_steps, shard).astype(np.float64)
            cols = list(shard.state) + [n_state + e for e in shard.extra]
            both = np.concatenate([now, ext])
            sums[0, cols] += w.sum() * store.shape[1]
            sums[1, cols] += (both * w).sum(axis=(1, 2))
            sums[2, cols] += (both**2 * w).sum(axis=(1, 2))
            diff[list(shard.state)] += ((later - now) ** 2 * w).sum(axis=(1, 2))
            count += 1
    except UserError as error:  # NaNs in this rank's band: every rank must learn of them
        if comm is None or comm.Get_size() == 1:
            raise
        refusal = str(error)
    if comm is not None and comm.Get_size() > 1:
        parts = comm.allgather((sums, diff, count, refusal))
        error = first_refusal([p[3] for p in parts])
        if error is not None:
            raise error
        sums = sum(p[0] for p in parts)
        diff = sum(p[1] for p in parts)
        count = max(p[2] for p in parts)
    weight = np.where(sums[0] > 0, sums[0], 1.0)
    mean = sums[1] / weight
    var = np.maximum(sums[2] / weight - mean**2, 0.0)
    std = np.sqrt(var)
    std = np.where(std > 1e-6 * np.maximum(np.abs(mean), 1.0), std, 1.0)  # constant fields
    diff_std = np.sqrt(diff / weight[:n_state])
    diff_std = np.where(diff_std > 0, diff_std, 1.0)
    return NormStats(
        channels=v.state_channels + v.extra_channels,
        mean=mean,
        std=std,
        diff_std=diff_std,
        lead_time_h=lead_steps * store.interval_s / 3600.0,
        n_samples=count,
    )


class ForecastSamples:
    """(input, target) samples at a lead time, with rollout targets, for one shard.

    ``sample(i)`` gives the normalised states at ``history`` times ending at the initial time
    ``times[i]`` (one lead apart, oldest first), the extra channels of each of the ``rollout``
    steps, and the targets at ``+lead``, ``+2·lead``, ...

    Args:
        store: The data.
        stats: The normalisation statistics.
        lead_steps: The lead time in time steps.
        times: Candidate initial times (those without room for history and rollout are
            dropped).
        shard: The band and channels (default: all of the data).
        rollout: Forecast steps per sample.
        history: Input states per sample.

    Raises:
        UserError: No initial time leaves room for the history and the rollout.
    """

    def __init__(
        self,
        store: Era5Store,
        stats: NormStats,
        lead_steps: int,
        times: Sequence[int],
        shard: Shard | None = None,
        rollout: int = 1,
        history: int = 1,
    ) -> None:
        if lead_steps < 1:
            raise ValueError(f"lead_steps must be >= 1, got {lead_steps}")
        if rollout < 1:
            raise ValueError(f"rollout must be >= 1, got {rollout}")
        self.store, self.stats, self.lead_steps = store, stats, lead_steps
        self.shard = shard or Shard.full(store)
        self.rollout, self.history = rollout, history
        first = lead_steps * (history - 1)
        last = store.times.size - 1 - lead_steps * rollout
        self.times = np.asarray([t for t in times if first <= t <= last], dtype=np.int64)
        if self.times.size == 0:
            raise UserError(
                f"no initial times leave room for {rollout} step(s) of {lead_steps} interval(s)"
            )
        n_state = len(store.variables.state_channels)
        state, extra = list(self.shard.state), [n_state + e for e in self.shard.extra]
        self._state_norm = (
            stats.mean[state, None, None].astype(np.float32),
            stats.std[state, None, None].astype(np.float32),
        )
        self._extra_norm = (
            stats.mean[extra, None, None].astype(np.float32),
            stats.std[extra, None, None].astype(np.float32),
        )

    def __len__(self) -> int:
        return int(self.times.size)

    def normalise_state(self, raw: np.ndarray) -> np.ndarray:
        """State channels of the shard, normalised.

        Args:
            raw: In physical units, ``[..., c, rows, lon]``.
        """
        mean, std = self._state_norm
        return (raw - mean) / std

    def denormalise_state(self, norm: np.ndarray) -> np.ndarray:
        """State channels of the shard back in physical units.

        Args:
            norm: Normalised, ``[..., c, rows, lon]``.
        """
        mean, std = self._state_norm
        return norm * std + mean

    def step_extras(self, index: int) -> np.ndarray:
        """Normalised extra channels of a step.

        Args:
            index: The time index of the step's start.
        """
        mean, std = self._extra_norm
        return (extras(self.store, index, self.lead_steps, self.shard) - mean) / std

    def sample(self, i: int) -> dict[str, np.ndarray]:
        """One sample, normalised.

        Args:
            i: Its index (into ``times``).

        Returns:
            ``state`` [history, c, rows, lon], ``extras`` [rollout, e, rows, lon] and
            ``targets`` [rollout, c, rows, lon].
        """
        t0 = int(self.times[i])
        read = self.store.read
        shard, lead = self.shard, self.lead_steps
        steps = [t0 + k * lead for k in range(self.rollout)]
        past = [t0 - k * lead for k in range(self.history - 1, -1, -1)]
        return {
            "state": np.stack(
                [self.normalise_state(read(t, shard.rows, shard.state)) for t in past]
            ),
            "extras": np.stack([self.step_extras(t) for t in steps]),
            "targets": np.stack(
                [self.normalise_state(read(t + lead, shard.rows, shard.state)) for t in steps]
            ),
        }

    def batch(self, indices: Sequence[int]) -> dict[str, Any]:
        """Stacked samples as float32 torch tensors (batch first).

        Args:
            indices: The samples.
        """
        import torch

        samples = [self.sample(int(i)) for i in indices]
        return {k: torch.from_numpy(np.stack([s[k] for s in samples])) for k in samples[0]}
