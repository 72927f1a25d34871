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
#: Origin of the readers' float days.
EPOCH = pd.Timestamp("1970-01-01")


def date_window(date_range: tuple[str, str]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The plausible-date window as timestamps; errors when it is reversed.

    Examples
    --------
    >>> date_window(("2000-01-01", "2000-12-31"))[1].year
    2000
    """
    lo, hi = (pd.Timestamp(d) for d in date_range)
    if lo > hi:
        raise PathwaysInputError(f"date_range: start {date_range[0]} after end {date_range[1]}")
    return lo, hi


def date_bounds(date_range: tuple[str, str] | None) -> tuple[float, float]:
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
    lo, hi = date_window(date_range)
    return float((lo - EPOCH) / pd.Timedelta(days=1)), float((hi - EPOCH) / pd.Timedelta(days=1))


def days_from_parts(year: pd.Series, month: pd.Series | int = 1, day: pd.Series | int = 1) -> np.ndarray:
    """Days since 1970-01-01 of year / month / day columns (NaN where they make no date).

    Examples
    --------
    >>> days_from_parts(pd.Series([1970, 1970, None]), pd.Series([1, 2, 1])).tolist()
    [0.0, 31.0, nan]
    """
    stamps = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day}), errors="coerce")
    return ((stamps - EPOCH) / pd.Timedelta(days=1)).to_numpy(dtype=np.float64, na_value=np.nan, copy=True)


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


__all__ = ["DEFAULT_DATE_RANGE", "EPOCH", "TimeConverter", "date_bounds", "date_window", "days_from_parts", "looks_like_datetime"]
