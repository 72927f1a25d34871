"""Observation windows and age rows of the SCCS encoder (:func:`pathways.encode.sccs.sccs_data`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pathways.errors import PathwaysInputError
from pathways.utils import ragged_arange

__all__: list[str] = []


def _windows(log: Any, bucket_size: float, n_buckets: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-patient window start, number of observed buckets, and the common ``n_buckets``."""
    return _window_info(log, bucket_size, n_buckets)[:3]


def _window_info(log: Any, bucket_size: float, n_buckets: int | None
                 ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]:
    """:func:`_windows` plus the time at risk of the last observed bucket (share of a bucket) and whether death
    closed the window."""
    patients = log.patients
    start = patients["start"].to_numpy(dtype=np.float64)
    end = patients["end"].to_numpy(dtype=np.float64)
    died = np.zeros(start.size, dtype=bool)
    if "death" in patients:
        death = patients["death"].to_numpy(dtype=np.float64)
        died = np.isfinite(death) & (death <= end)
        end = np.where(died, death, end)
    bad = np.flatnonzero(~np.isfinite(start) | ~np.isfinite(end) | (end < start))
    if bad.size:
        raise PathwaysInputError(
            f"patients start/end must be finite with end >= start: {bad.size} patients fail, e.g. row {bad[0]}")
    # a window [start, end] covers buckets 0..floor((end-start)/size): the end day itself is observed, so the
    # window holds end - start + 1 time units and its last bucket only what is left of them
    observed = np.floor((end - start) / bucket_size).astype(np.int64) + 1
    total = int(observed.max()) if n_buckets is None else int(n_buckets)
    left = (end - start + 1.0) - (observed - 1) * bucket_size
    fraction = np.where(observed > total, 1.0, np.clip(left / bucket_size, 1e-9, 1.0))
    return start, np.minimum(observed, total), total, fraction, died & (observed <= total)


def _age_rows(log: Any, case_patient: np.ndarray, start: np.ndarray, censoring: np.ndarray, bucket_size: float,
              age_edges: Sequence[float], first_feature: int) -> tuple[np.ndarray, ...]:
    """Age-group indicator rows (one per observed bucket outside the reference group)."""
    edges = np.asarray(age_edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0) or not np.all(np.isfinite(edges)):
        raise PathwaysInputError(f"age_edges must be >= 2 increasing finite values, got {list(edges)}")
    if "birth" not in log.patients:
        raise PathwaysInputError("age_edges needs column 'birth' in log.patients, which is absent")
    birth = log.patients["birth"].to_numpy(dtype=np.float64)[case_patient]
    bad = np.flatnonzero(~np.isfinite(birth))
    if bad.size:
        raise PathwaysInputError(f"age_edges needs 'birth': {bad.size} cases lack it, e.g. case {bad[0]}")
    case = np.repeat(np.arange(case_patient.size), censoring)
    bucket = ragged_arange(censoring)
    age = start[case_patient][case] + bucket * bucket_size - birth[case]
    group = np.searchsorted(edges, age, side="right") - 1  # below the first edge -> reference group
    keep = group >= 1
    return case[keep], bucket[keep], first_feature + group[keep] - 1, np.ones(int(keep.sum()))
