"""Per-patient index times: the anchor of outcome labels, sparse time series and study windows."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from pathways.errors import PathwaysInputError

if TYPE_CHECKING:
    from pathways.data.eventlog import EventLog

#: ``index_time`` naming the middle of each observation window [start, end] (when no patients column has the name).
MIDPOINT = "midpoint"


def index_times(log: "EventLog", index_time: str | Sequence[float] | np.ndarray) -> np.ndarray:
    """One index time per patient (float64, NaN where the patient has none).

    Parameters
    ----------
    log : the EventLog whose patients are indexed.
    index_time : a column of ``log.patients`` (e.g. ``"start"``, a diagnosis date), ``"midpoint"`` (the middle of
        each observation window: history before, outcome after) or one time per patient.

    Examples
    --------
    >>> from pathways.data.eventlog import EventLog
    >>> log = EventLog.from_pandas(pd.DataFrame({"patient_id": [0, 0, 1], "time": [0.0, 10.0, 4.0],
    ...                                          "code": ["a", "b", "a"]}))
    >>> index_times(log, "start").tolist(), index_times(log, "midpoint").tolist()
    ([0.0, 4.0], [5.0, 4.0])
    """
    if isinstance(index_time, str):
        if index_time in log.patients.columns:
            return pd.to_numeric(log.patients[index_time], errors="coerce").to_numpy(dtype=np.float64)
        if index_time == MIDPOINT:
            start = log.patients["start"].to_numpy(dtype=np.float64)
            return start + 0.5 * (log.patients["end"].to_numpy(dtype=np.float64) - start)
        raise PathwaysInputError(
            f"index_time: column {index_time!r} not in the patients table (columns: {list(log.patients.columns)})"
        )
    anchor = np.asarray(index_time, dtype=np.float64).reshape(-1)
    if anchor.shape != (log.n_patients,):
        raise PathwaysInputError(f"index_time: expected {log.n_patients} values (one per patient), got {anchor.size}")
    return anchor


__all__ = ["MIDPOINT", "index_times"]
