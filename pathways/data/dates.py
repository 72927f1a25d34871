"""Event times: the plausible-date window and the conversion of datetime or numeric columns to float times.

Claims and EHR extracts hold placeholder dates (1600-01-01, 9999-12-31); every reader and the EventLog builder
treat dates outside one window as invalid. Datetimes become float days since an origin.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pathways.errors import PathwaysInputError

#: Dates outside this window are placeholders, treated as invalid (EventLog ``valid_dates``, readers' ``date_range``).
DEFAULT_DATE_RANGE = ("1900-01-01", "2100-12-31")
#: Largest plausible |time| per time unit (about 2700 years): beyond it a time is a corrupt value (int64 max,
#: a day count in nanoseconds), and one such outlier would make a binned encoding of the log allocate terabytes.
MAX_ABS_TIME = {"days": 1e6, "d": 1e6, "weeks": 1.5e5, "months": 3.3e4, "years": 2.8e3, "hours": 2.4e7,
                "h": 2.4e7, "minutes": 1.44e9, "min": 1.44e9, "seconds": 8.64e10, "s": 8.64e10,
                "milliseconds": 8.64e13, "ms": 8.64e13}
#: limit for a unit not listed above (still rejects int64 max and nanosecond garbage)
MAX_ABS_TIME_OTHER = 1e14
#: Origin of the readers' float days.
EPOCH = pd.Timestamp("1970-01-01")


def date_window(date_range: tuple[str, str], name: str = "date_range") -> tuple[pd.Timestamp, pd.Timestamp]:
    """The plausible-date window as timestamps; errors naming ``name`` when it is not two dates or reversed.

    Examples
    --------
    >>> date_window(("2000-01-01", "2000-12-31"))[1].year
    2000
    """
    if isinstance(date_range, (str, bytes)) or not hasattr(date_range, "__len__") or len(date_range) != 2:
        raise PathwaysInputError(f"{name}: expected (start, end) dates, got {date_range!r}")
    try:
        lo, hi = (pd.Timestamp(d) for d in date_range)
    except (ValueError, TypeError, OverflowError) as exc:
        raise PathwaysInputError(f"{name}: expected (start, end) dates such as ('2015-01-01', '2019-12-31'); "
                                 f"got {tuple(date_range)!r}") from exc
    if pd.isna(lo) or pd.isna(hi):
        raise PathwaysInputError(f"{name}: start and end must both be dates, got {tuple(date_range)!r}")
    if lo > hi:
        raise PathwaysInputError(f"{name}: start {date_range[0]} after end {date_range[1]} (reversed)")
    return lo, hi


def date_bounds(date_range: tuple[str, str] | None, name: str = "date_range") -> tuple[float, float]:
    """(low, high) of the plausible-date window in days since 1970-01-01 (infinite when None).

    Examples
    --------
    >>> date_bounds(("1970-01-01", "1970-01-11"))
    (0.0, 10.0)
    >>> date_bounds(None)
    (-inf, inf)
    """
    if date_range is None:
        return -np.inf, np.inf
    lo, hi = date_window(date_range, name)
    return float((lo - EPOCH) / pd.Timedelta(days=1)), float((hi - EPOCH) / pd.Timedelta(days=1))


def days_from_parts(year: pd.Series, month: pd.Series | int = 1, day: pd.Series | int = 1) -> np.ndarray:
    """Days since 1970-01-01 of year / month / day columns (NaN where they make no date).

    Examples
    --------
    >>> days_from_parts(pd.Series([1970, 1970, None]), pd.Series([1, 2, 1])).tolist()
    [0.0, 31.0, nan]
    """
    # as floats: pandas cannot assemble dates from nullable integers holding a missing value
    parts = {k: pd.to_numeric(v, errors="coerce").astype(float) if isinstance(v, pd.Series) else v
             for k, v in (("year", year), ("month", month), ("day", day))}
    stamps = pd.to_datetime(pd.DataFrame(parts), errors="coerce")
    return ((stamps - EPOCH) / pd.Timedelta(days=1)).to_numpy(dtype=np.float64, na_value=np.nan, copy=True)


def max_abs_time(time_unit: str) -> float:
    """Largest plausible |time| in ``time_unit`` (see :data:`MAX_ABS_TIME`).

    Examples
    --------
    >>> max_abs_time("days"), max_abs_time("ticks")
    (1000000.0, 100000000000000.0)
    """
    return MAX_ABS_TIME.get(str(time_unit).lower(), MAX_ABS_TIME_OTHER)


@dataclass
class TimeConverter:
    """Turns a column of datetimes or numbers into float times and tells which rows were invalid.

    ``origin`` None means numeric input (kept in the user's ``time_unit``); otherwise datetimes become days since
    ``origin`` and those outside ``valid_dates`` count as invalid.
    """

    origin: pd.Timestamp | None
    time_unit: str
    valid_dates: tuple[pd.Timestamp, pd.Timestamp]

    def convert(self, values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Return (float times, mask of values present but unparseable or out of the valid date range)."""
        present = values.notna().to_numpy()
        if self.origin is None:
            out = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
            with np.errstate(invalid="ignore"):
                out[np.abs(out) > max_abs_time(self.time_unit)] = np.nan  # int64 max, nanoseconds, ...
            bad = present & ~np.isfinite(out)
            return np.where(np.isfinite(out), out, np.nan), bad
        stamps = pd.to_datetime(values, errors="coerce")
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_convert(None)
        lo, hi = self.valid_dates
        in_range = (stamps >= lo) & (stamps <= hi)
        bad = present & ~in_range.fillna(False).to_numpy(dtype=bool)
        days = ((stamps - self.origin) / pd.Timedelta(days=1)).to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        days[bad] = np.nan
        return days, bad


def looks_like_datetime(values: pd.Series) -> bool:
    """Whether a column holds datetimes (or text that mostly parses as dates) rather than numbers.

    Examples
    --------
    >>> looks_like_datetime(pd.Series(["2020-01-01", "2020-02-01"])), looks_like_datetime(pd.Series([1.0, 2.0]))
    (True, False)
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if pd.api.types.is_numeric_dtype(values) or values.dropna().empty:
        return False
    sample = values.dropna().iloc[:50].astype(str)
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() > 0.5)


__all__ = ["DEFAULT_DATE_RANGE", "EPOCH", "MAX_ABS_TIME", "max_abs_time", "TimeConverter", "date_bounds", "date_window", "days_from_parts", "looks_like_datetime"]
