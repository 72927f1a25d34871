"""The counts of an EventLog that a study report needs (never an identifier)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pathways.data.columns import EventColumns


def log_summary(log: EventColumns) -> dict[str, Any]:
    """Counts of events, patients, codes, follow-up and categories of ``log`` (no identifiers)."""
    per_patient = np.diff(log.offsets)
    follow = (log.patients["end"] - log.patients["start"]).to_numpy(dtype=float)
    return {
        "n_events": log.n_events,
        "n_patients": log.n_patients,
        "n_codes": log.n_codes,
        "n_patients_without_events": int((per_patient == 0).sum()),
        "events_per_patient_median": float(np.median(per_patient)) if per_patient.size else 0.0,
        "follow_up_median": float(np.nanmedian(follow)) if follow.size else 0.0,
        "time_unit": log.time_unit,
        "origin": None if log.origin is None else str(log.origin.date()),
        "n_deaths": int(log.patients["death"].notna().sum()),
        "categories": {str(k): int(v) for k, v in pd.Series(log.category).value_counts().items()},
    }


__all__ = ["log_summary"]
