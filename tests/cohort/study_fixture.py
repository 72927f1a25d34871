"""A small study population (numeric days) whose follow-ups, exposures and outcomes are computed by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pathways.data import EventLog

EVENTS = pd.DataFrame(
    [
        ("p0", 10.0, "D1", np.nan, "drug"), ("p0", 20.0, "D1", np.nan, "drug"), ("p0", 100.0, "D1", np.nan, "drug"),
        ("p0", 135.0, "D1", np.nan, "drug"), ("p0", 150.0, "X", np.nan, "diagnosis"),
        ("p1", 5.0, "D1", np.nan, "drug"), ("p1", 5.0, "D2", np.nan, "drug"), ("p1", 60.0, "X", np.nan, "diagnosis"),
        ("p2", 60.0, "D1", 3.0, "drug"),
        ("p3", 10.0, "X", np.nan, "diagnosis"), ("p3", 200.0, "X", np.nan, "diagnosis"),
    ],
    columns=["patient_id", "time", "code", "value", "category"],
)
PATIENTS = pd.DataFrame({
    "patient_id": ["p0", "p1", "p2", "p3"],
    "start": [0.0, 0.0, 50.0, 0.0],
    "end": [365.0, 365.0, 200.0, 365.0],
    "death": [np.nan, 100.0, np.nan, np.nan],
})


def study_log() -> EventLog:
    return EventLog.from_pandas(EVENTS, PATIENTS)


def spans(cohort) -> list[tuple]:
    """(patient index, code, start, end, value) of a cohort's events."""
    t = cohort.intervals()
    return [(int(r.patient), r.code, float(r.start), float(r.end), None if np.isnan(r.value) else float(r.value))
            for r in t.itertuples(index=False)]
