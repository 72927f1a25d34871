"""The factors table: one shape for every model that explains (Hawkes excitation, attributions, SCCS)."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

from pathways.errors import PathwaysInputError

FACTOR_COLUMNS = ("source", "target", "lag_days", "effect", "ci_low", "ci_high", "method")


def factors_frame(source: Iterable[Any], target: Iterable[Any], effect: Iterable[float], *, method: str,
                  lag_days: Iterable[float] | float | None = None, ci_low: Iterable[float] | None = None,
                  ci_high: Iterable[float] | None = None, **extra: Iterable[Any]) -> pd.DataFrame:
    """Build a validated factors table; missing intervals and lags are NaN, extra columns follow the standard ones.

    Examples
    --------
    >>> factors_frame(["A"], ["B"], [0.3], method="hawkes").columns.tolist()
    ['source', 'target', 'lag_days', 'effect', 'ci_low', 'ci_high', 'method']
    """
    src = np.asarray(list(source), dtype=object)
    n = src.size
    cols = {"source": src, "target": np.asarray(list(target), dtype=object)}
    cols["lag_days"] = _floats(lag_days, n, "lag_days")
    cols["effect"] = _floats(effect, n, "effect")
    cols["ci_low"] = _floats(ci_low, n, "ci_low")
    cols["ci_high"] = _floats(ci_high, n, "ci_high")
    cols["method"] = np.full(n, method, dtype=object)
    frame = pd.DataFrame(cols)
    for name, values in extra.items():
        frame[name] = np.asarray(list(values) if not np.isscalar(values) else [values] * n)
    return validate_factors(frame)


def validate_factors(frame: pd.DataFrame) -> pd.DataFrame:
    """Check a DataFrame has the factors-table columns first, in order; return it."""
    head = list(frame.columns[: len(FACTOR_COLUMNS)])
    if head != list(FACTOR_COLUMNS):
        raise PathwaysInputError(f"factors table: expected leading columns {list(FACTOR_COLUMNS)}, got {head}")
    return frame


def _floats(values: Iterable[float] | float | None, n: int, name: str) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    arr = np.asarray(values if not np.isscalar(values) else [values] * n, dtype=np.float64)
    if arr.shape != (n,):
        raise PathwaysInputError(f"{name}: expected {n} values, got {arr.shape}")
    return arr
