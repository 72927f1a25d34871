"""What the EventLog's file, Arrow and summary helpers read of a log: its columns, patients and vocabulary.

The helpers of :mod:`pathways.data.parquet`, :mod:`pathways.data.arrow` and :mod:`pathways.data.summary` serve
:class:`~pathways.data.eventlog.EventLog` (which imports them), so they name what they need by this structural
type instead of importing the class back: the data layer keeps one direction of imports.
"""
from __future__ import annotations

from typing import Any, Mapping, Protocol

import numpy as np
import pandas as pd

from pathways.data.vocabulary import Vocabulary

__all__ = ["EventColumns"]


class EventColumns(Protocol):
    """The read-only face of an event log: one row per event, sorted by (patient, time, code).

    Examples
    --------
    >>> import pandas as pd
    >>> from pathways.data import EventLog
    >>> from pathways.data.summary import log_summary
    >>> log = EventLog.from_pandas(pd.DataFrame({"patient_id": ["p1", "p1", "p2"], "time": [1.0, 2.0, 0.5],
    ...                                          "code": ["A", "B", "A"]}))
    >>> log_summary(log)["n_events"]  # an EventLog is an EventColumns
    3
    """

    patient: np.ndarray
    time: np.ndarray
    code: np.ndarray
    end: np.ndarray
    value: np.ndarray
    category: np.ndarray
    extras: Mapping[str, Any]
    vocab: Vocabulary
    patients: pd.DataFrame
    offsets: np.ndarray
    time_unit: str
    origin: pd.Timestamp | None

    @property
    def n_events(self) -> int: ...

    @property
    def n_patients(self) -> int: ...

    @property
    def n_codes(self) -> int: ...
