"""From a table with time stamps to a series of whole cycles, its calendar and its split.

Daylight saving: time stamps are handled as local wall-clock times on a regular grid. With a
``timezone``, a wall-clock slot that does not exist on the spring-forward day is filled by
linear interpolation, and a slot that occurs twice on the fall-back day is averaged, so that
every local day has the same number of steps (one cycle). Any other missing or repeated time
stamp is an error, never silently filled. Daily cycles start at local midnight; partial days at
either end are dropped.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recycle_ts.config import ForecastConfig
from shared_hpc import UserError, file_fingerprint

DAY = pd.Timedelta(days=1)
CALENDAR_FEATURES = 10
"""Per cycle: weekday one-hot (7), holiday flag, day of the year as sine and cosine."""
UTC_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"  # how a time stamp's text ends when it names its zone


@dataclass(frozen=True)
class CycleSeries:
    """A regular series cut into whole cycles.

    Attributes:
        values: Targets, shape ``(cycles, cycle, targets)``.
        covariates: Known-in-advance inputs, shape ``(cycles, cycle, covariates)``.
        starts: Wall-clock time stamp of each cycle's first step.
        step: Time between two steps.
        target_names: Names of the targets.
        covariate_names: Names of the covariates.
        timezone: IANA zone of the wall-clock times, ``""`` for none.
        filled: Steps filled in because the local time did not exist (spring forward).
    """

    values: np.ndarray
    covariates: np.ndarray
    starts: pd.DatetimeIndex
    step: pd.Timedelta
    target_names: tuple[str, ...]
    covariate_names: tuple[str, ...]
    timezone: str = ""
    filled: int = 0

    @property
    def cycle(self) -> int:
        return self.values.shape[1]

    @property
    def cycles(self) -> int:
        return self.values.shape[0]

    @property
    def daily(self) -> bool:
        """Whether a cycle is one local day."""
        return self.step * self.cycle == DAY

    def future_starts(self, count: int) -> pd.DatetimeIndex:
        """Start time stamps of the ``count`` cycles after the series' end."""
        period = self.step * self.cycle
        return pd.DatetimeIndex([self.starts[-1] + period * (i + 1) for i in range(count)])

    def slot_times(self, starts: pd.DatetimeIndex) -> pd.DatetimeIndex:
        """Wall-clock time stamp of every step of the cycles starting at ``starts``."""
        offsets = self.step * np.arange(self.cycle)
        return pd.DatetimeIndex([s + o for s in starts for o in offsets])


def read_csv(path: Path, date_column: str) -> pd.DataFrame:
    """Read a CSV file into a frame, checking that it exists and has the date column.

    Raises:
        UserError: The file is missing, unreadable or lacks ``date_column``.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not a readable CSV file: {str(err).splitlines()[0]}") from None
    if date_column not in frame.columns:
        raise UserError(f"{path} has no column {date_column!r}; it has {list(frame.columns)}")
    return frame


def _parse_stamps(stamps: pd.Series) -> pd.DatetimeIndex:
    """Time stamps as read. Stamps that all carry UTC offsets, but several of them (local time
    across a DST change, ``+01:00`` then ``+02:00``), are read as UTC instants, which pandas 3
    no longer does by itself; naive and aware stamps mixed stay refused."""
    try:
        parsed, error = pd.to_datetime(stamps), None
    except (ValueError, TypeError) as err:
        parsed, error = None, err
    if parsed is None or parsed.dtype == object:  # pandas 3 raises, pandas 2 gives objects
        reason = str(error).splitlines()[0] if error else "they mix time zones"
        if not stamps.dropna().astype(str).str.strip().str.contains(UTC_OFFSET).all():
            raise UserError(f"time stamps cannot be read: {reason}")
        try:
            parsed = pd.to_datetime(stamps, utc=True)
        except (ValueError, TypeError):
            raise UserError(f"time stamps cannot be read: {reason}") from None
    return pd.DatetimeIndex(parsed).as_unit("ns")


def wall_clock(stamps: pd.Series, timezone: str) -> tuple[pd.DatetimeIndex, str]:
    """Time stamps as naive wall-clock times of ``timezone`` (or of their own zone)."""
    index = _parse_stamps(stamps)
    if index.hasnans:
        raise UserError(f"time stamp missing in row {int(np.argmax(index.isna()))}")
    if index.tz is not None:
        zone = timezone or str(index.tz)
        try:
            index = index.tz_convert(zone).tz_localize(None)
        except Exception:
            raise UserError(f"unknown timezone {zone!r}") from None
        return index, zone if zone != "UTC" or timezone else ""
    return index, timezone


def _nonexistent(times: pd.DatetimeIndex, timezone: str) -> np.ndarray:
    """Which wall-clock ``times`` do not exist in ``timezone`` (skipped at spring forward)."""
    if not timezone or len(times) == 0:
        return np.zeros(len(times), bool)
    try:
        local = times.tz_localize(timezone, nonexistent="NaT", ambiguous="NaT")
    except Exception:
        raise UserError(f"unknown timezone {timezone!r}") from None
    shifted = times.tz_localize(timezone, nonexistent="shift_forward", ambiguous=True)
    return np.asarray(local.isna() & (shifted.tz_localize(None) != times))


def _ambiguous(times: pd.DatetimeIndex, timezone: str) -> np.ndarray:
    """Which wall-clock ``times`` occur twice in ``timezone`` (fall back)."""
    if not timezone or len(times) == 0:
        return np.zeros(len(times), bool)
    local = times.tz_localize(timezone, nonexistent="shift_forward", ambiguous="NaT")
    return np.asarray(local.isna())


def _regular(frame: pd.DataFrame, index: pd.DatetimeIndex, timezone: str) -> pd.DataFrame:
    """``frame`` on a regular wall-clock grid, DST slots filled or averaged, else errors."""
    order = np.diff(index.asi8)
    if (order < 0).any():
        row = int(np.argmax(order < 0)) + 1
        raise UserError(f"time stamps are not in increasing order at row {row} ({index[row]})")
    repeated = index.duplicated()
    if repeated.any():
        bad = repeated & ~_ambiguous(index, timezone)
        if bad.any():
            raise UserError(f"duplicate time stamp {index[bad][0]}")
        frame = frame.groupby(index).mean()
        index = pd.DatetimeIndex(frame.index)
    else:
        frame = frame.set_axis(index)
    if len(index) < 3:
        raise UserError(f"the series has {len(index)} time stamps; it needs many cycles")
    step = pd.Timedelta(pd.Series(np.diff(index.asi8)).mode().iloc[0], unit="ns")
    grid = pd.date_range(index[0], index[-1], freq=step)
    off_grid = ~index.isin(grid)
    if off_grid.any():
        raise UserError(f"irregular time step at {index[off_grid][0]} (the step is {step})")
    missing = grid[~grid.isin(index)]
    gaps = missing[~_nonexistent(missing, timezone)]
    if len(gaps):
        hint = "" if timezone else " (local times with daylight saving? pass --timezone)"
        raise UserError(
            f"gap in the series: {len(gaps)} missing time steps, the first at {gaps[0]}{hint}"
        )
    frame = frame.reindex(grid)
    if len(missing):
        frame = frame.interpolate(method="linear", limit_area="inside")
    frame.attrs["filled"] = len(missing)
    return frame


def to_cycles(
    frame: pd.DataFrame,
    date_column: str,
    targets: list[str],
    covariates: list[str] | tuple[str, ...] = (),
    cycle: int | None = None,
    timezone: str = "",
) -> CycleSeries:
    """Cut a table into whole cycles of a regular series.

    Args:
        frame: One row per time step.
        date_column: Column of the time stamps (naive wall-clock or with UTC offsets).
        targets: Columns to forecast.
        covariates: Columns known in advance.
        cycle: Steps per cycle; ``None`` detects it from the first target.
        timezone: Zone of local days; ``""`` takes the stamps as they are.

    Raises:
        UserError: Missing columns, unreadable or unordered time stamps, gaps, NaNs, or too
            few cycles.
    """
    names = [date_column, *targets, *covariates]
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise UserError(f"the data have no column {missing[0]!r}; they have {list(frame.columns)}")
    index, timezone = wall_clock(frame[date_column], timezone)
    columns = [*targets, *covariates]
    data = frame[columns].reset_index(drop=True)
    for column in columns:
        if not pd.api.types.is_numeric_dtype(data[column]):
            raise UserError(f"column {column!r} is not numeric")
    data = data.astype(np.float64)
    nan = data.isna().to_numpy()
    if nan.any():
        row, col = np.argwhere(nan)[0]
        raise UserError(
            f"column {columns[col]!r} has {int(nan[:, col].sum())} missing values (NaN), the "
            f"first at {index[row]}; fill or drop them first"
        )
    if not np.isfinite(data.to_numpy()).all():
        raise UserError("the data hold infinite values")
    regular = _regular(data, index, timezone)
    step = regular.index[1] - regular.index[0]
    if cycle is None:
        cycle = detect_cycle(regular[targets[0]].to_numpy())
    first = 0
    if step * cycle == DAY:
        midnight = regular.index.normalize() == regular.index
        if not midnight.any():
            raise UserError("the series does not contain a single local midnight")
        first = int(np.argmax(midnight))
    whole = (len(regular) - first) // cycle
    if whole < 4:
        raise UserError(
            f"the series holds {whole} whole cycles of {cycle} steps; it needs many more"
        )
    block = regular.iloc[first : first + whole * cycle].to_numpy()
    block = block.reshape(whole, cycle, len(columns))
    starts = pd.DatetimeIndex(regular.index[first : first + whole * cycle : cycle])
    return CycleSeries(
        values=block[..., : len(targets)],
        covariates=block[..., len(targets) :],
        starts=starts,
        step=step,
        target_names=tuple(targets),
        covariate_names=tuple(covariates),
        timezone=timezone,
        filled=int(regular.attrs["filled"]),
    )


def to_steps(cycles: np.ndarray) -> np.ndarray:
    """Undo the cycle compression: ``(cycles, cycle, ...)`` back to ``(steps, ...)``."""
    return cycles.reshape(cycles.shape[0] * cycles.shape[1], *cycles.shape[2:])


def from_steps(steps: np.ndarray, cycle: int) -> np.ndarray:
    """Primary cycle compression: ``(steps, ...)`` into ``(steps // cycle, cycle, ...)``.

    Raises:
        UserError: The steps are not whole cycles.
    """
    if len(steps) % cycle:
        raise UserError(f"{len(steps)} steps are not whole cycles of {cycle}")
    return steps.reshape(len(steps) // cycle, cycle, *steps.shape[1:])


def detect_cycle(series: np.ndarray, max_cycle: int | None = None) -> int:
    """The primary cycle: the strongest period of the spectrum, refined by folding.

    The periodogram of the linearly detrended series picks the dominant period (at least three
    repetitions in the data). Around it (within 20 %), the integer length is the one whose
    cycle-mean profile explains the most variance: a length off by one step smears the profile
    over many cycles. The autocorrelation at that length must be clearly positive.

    Raises:
        UserError: No period stands out (the autocorrelation at it is below 0.2).
    """
    x = np.asarray(series, dtype=np.float64)
    n = len(x)
    x = x - np.polyval(np.polyfit(np.arange(n), x, 1), np.arange(n))
    longest = n // 3 if max_cycle is None else min(max_cycle, n // 3)
    power = np.abs(np.fft.rfft(x)) ** 2
    k = np.arange(len(power))
    allowed = (k >= max(1, int(np.ceil(n / max(longest, 2))))) & (k <= n // 2)
    if longest < 2 or not allowed.any():
        raise UserError(f"the series ({n} steps) is too short to detect a cycle; pass --cycle")
    guess = n / int(k[allowed][np.argmax(power[allowed])])
    low, high = max(2, int(np.floor(guess * 0.8))), max(2, min(longest, int(np.ceil(guess * 1.2))))

    def explained(length: int) -> float:
        folded = x[: n // length * length].reshape(-1, length)
        return float(folded.mean(axis=0).var() / max(folded.var(), 1e-300))

    lag = max(range(low, high + 1), key=explained)
    acf = float(np.dot(x[:-lag], x[lag:]) / max(np.dot(x, x), 1e-300))
    if acf < 0.2:
        raise UserError(f"no cycle stands out in the data (best guess {lag} steps); pass --cycle")
    return lag


def holiday_dates(starts: pd.DatetimeIndex, country: str) -> set:
    """Public holidays of ``country`` over the years of ``starts`` (empty without a country).

    Raises:
        UserError: ``holidays`` does not know the country.
    """
    if not country:
        return set()
    import holidays

    years = range(starts.min().year, starts.max().year + 1)
    try:
        return set(holidays.country_holidays(country, years=years))
    except NotImplementedError:
        raise UserError(f"the holidays package knows no country {country!r}") from None


def calendar_features(starts: pd.DatetimeIndex, country: str = "") -> np.ndarray:
    """Per cycle: weekday one-hot, holiday flag, day of year (sine, cosine)."""
    features = np.zeros((len(starts), CALENDAR_FEATURES))
    features[np.arange(len(starts)), starts.day_of_week] = 1.0
    free = holiday_dates(starts, country)
    features[:, 7] = [d.date() in free for d in starts]
    angle = 2 * np.pi * (starts.day_of_year - 1) / 365.25
    features[:, 8] = np.sin(angle)
    features[:, 9] = np.cos(angle)
    return features


def day_types(starts: pd.DatetimeIndex, country: str = "") -> np.ndarray:
    """0 for a weekday, 1 for a Saturday, 2 for a Sunday or a public holiday."""
    free = holiday_dates(starts, country)
    types = np.where(starts.day_of_week == 5, 1, np.where(starts.day_of_week == 6, 2, 0))
    holiday = np.array([d.date() in free for d in starts], bool)
    return np.where(holiday, 2, types)


@dataclass(frozen=True)
class Split:
    """Forecast origins (index of the first forecast cycle) of each part, chronological.

    The targets of different parts never overlap: a window belongs to the part that holds all
    of its forecast cycles. The scaler sees the cycles before ``validation_start`` only.

    Attributes:
        train: Origins of the training windows.
        validation: Origins of the validation windows.
        test: Origins of the test windows.
        validation_start: First cycle after the training span.
        test_start: First cycle of the test span.
    """

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    validation_start: int
    test_start: int


def split_cycles(cycles: int, history: int, horizon: int, validation: float, test: float) -> Split:
    """Chronological split in whole cycles.

    Raises:
        UserError: A part would hold no window (too short a series for these settings).
    """
    test_start = cycles - max(horizon, round(cycles * test))
    validation_start = test_start - max(horizon, round(cycles * validation))
    first = history + 1  # the first cycle has no profile forecast of its own
    split = Split(
        train=np.arange(first, validation_start - horizon + 1),
        validation=np.arange(validation_start, test_start - horizon + 1),
        test=np.arange(test_start, cycles - horizon + 1),
        validation_start=validation_start,
        test_start=test_start,
    )
    if min(len(split.train), len(split.validation), len(split.test)) < 1:
        need = history + 1 + 3 * horizon
        raise UserError(
            f"the series is too short: {cycles} cycles, while {history} cycles of history and "
            f"{horizon} of horizon need at least {need} plus room for validation and test"
        )
    return split


@dataclass(frozen=True)
class Scaler:
    """Per-column standardisation, fitted on the training span only.

    Attributes:
        mean: Mean of each column.
        std: Standard deviation of each column (1 where it is 0).
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> Scaler:
        """Fit on ``values`` of shape ``(..., columns)``."""
        flat = values.reshape(int(np.prod(values.shape[:-1])), values.shape[-1])
        std = flat.std(axis=0)
        return cls(flat.mean(axis=0), np.where(std > 0, std, 1.0))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.std

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.std + self.mean

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> Scaler:
        return cls(np.asarray(data["mean"], float), np.asarray(data["std"], float))


TAYLOR_START = pd.Timestamp("2000-06-05")
"""Taylor's series has no time stamps; it starts on Monday 5 June 2000 (Taylor 2003)."""


def taylor() -> pd.DataFrame:
    """Half-hourly electricity demand of England and Wales, 12 weeks from 5 June 2000.

    Raises:
        UserError: ``pmdarima`` is not installed.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pmdarima.datasets import load_taylor
    except ImportError:
        raise UserError("the Taylor data need pmdarima: pip install recycle-ts[demo]") from None
    demand = np.asarray(load_taylor(), dtype=np.float64)
    dates = pd.date_range(TAYLOR_START, periods=len(demand), freq="30min")
    return pd.DataFrame({"date": dates, "load": demand})


def _vega_hourly(name: str) -> pd.DataFrame:
    """An hourly 2010 temperature file of ``vega_datasets`` as columns ``date`` and ``load``.

    The files' time stamps follow no zone's daylight-saving rule (02:00 exists on 14 March,
    03:00 does not, and no hour repeats in November), so they are taken as a regular hourly
    series and the one missing hour is interpolated linearly.

    Raises:
        UserError: ``vega_datasets`` is not installed.
    """
    try:
        from vega_datasets import local_data  # the file shipped in the package, never a URL
    except ImportError:
        raise UserError(
            "the temperature data need vega_datasets: pip install recycle-ts[demo]"
        ) from None
    frame = local_data(name).set_index("date")
    grid = pd.date_range(frame.index[0], frame.index[-1], freq="1h")
    frame = frame.reindex(grid).interpolate(method="linear")
    return frame.rename_axis("date").reset_index().rename(columns={"temp": "load"})


def seattle() -> pd.DataFrame:
    """Hourly temperatures of Seattle in 2010 (climate normals, degrees Fahrenheit)."""
    return _vega_hourly("seattle-temps")


def san_francisco() -> pd.DataFrame:
    """Hourly temperatures of San Francisco in 2010 (climate normals, degrees Fahrenheit)."""
    return _vega_hourly("sf-temps")


def west_coast() -> pd.DataFrame:
    """Seattle's and San Francisco's hourly temperatures as two series of one table (column
    ``city``): the embedded example of many series of one cycle."""
    parts = [seattle().assign(city="seattle"), san_francisco().assign(city="san-francisco")]
    return pd.concat(parts, ignore_index=True)


def load_series(
    csv: Path | None, dataset: str | None, config: ForecastConfig
) -> tuple[CycleSeries, dict[str, Any]]:
    """The series a command works on, from a CSV file or an embedded data set, and its
    fingerprint (file size and hash, or the data set's name).

    Args:
        csv: A CSV file, or ``None`` for ``dataset``.
        dataset: The name of an embedded data set of one series where ``csv`` is ``None``.
        config: A ``ForecastConfig`` (columns, cycle, timezone).

    Raises:
        UserError: Neither or both sources, or bad data.
    """
    if (csv is None) == (dataset is None):
        raise UserError("give exactly one of --csv FILE and --dataset NAME")
    if csv is not None:
        frame = read_csv(csv, config.date_column)
        fingerprint = file_fingerprint(csv)
    else:
        frame = EMBEDDED[dataset][0]()
        fingerprint = {"name": dataset, "rows": len(frame)}
    series = to_cycles(
        frame, config.date_column, config.target, config.covariates, config.cycle_length,
        config.timezone,
    )  # fmt: skip
    return series, fingerprint


EMBEDDED = {
    "taylor": (taylor, {"cycle": "48", "country": "GB", "history": 7, "horizon": 1}),
    "seattle": (seattle, {"cycle": "24", "country": "US"}),
    "san-francisco": (san_francisco, {"cycle": "24", "country": "US"}),
    "west-coast": (west_coast, {"cycle": "24", "country": "US", "series_column": "city"}),
}
"""Embedded data sets: loader and the settings that suit them (columns ``date`` and ``load``;
``west-coast`` holds two series, told apart by ``city``). Taylor's 84 days leave room for
day-ahead forecasts from one week of history only."""
