"""Adjustment and diagnostic terms of the SCCS, added to :class:`~pathways.encode.sccs.SCCSData` as indicators.

OHDSI users of the self-controlled case series check its three assumptions with extra terms of the same model:

* **pre-exposure window** (:func:`add_pre_exposure`): an indicator over the buckets just before every exposure
  start. Outcomes that delay or prevent the exposure (event-dependent exposure, reverse causality) leave that window
  with fewer outcomes than expected: its RI below 1 is the symptom; the term also keeps those buckets out of the
  reference, so the risk-window estimate no longer compares against them.
* **end-of-observation probe** (:func:`add_end_of_observation`): an indicator over the last buckets of every case's
  observation. When the outcome ends observation (death, leaving the database) the outcomes crowd the end: its RI
  above 1 flags event-dependent observation, which biases the SCCS.
* **season** (:func:`add_season`) and age (``age_edges`` of :func:`~pathways.encode.sccs.sccs_data`): step
  functions of calendar time and age shared by all cases, adjusting for time-varying baselines.

:func:`from_first_exposure` starts each case's observation at its first exposure start — the remedy when an outcome
contraindicates (prevents) a later exposure: only post-exposure time is compared, which such selection cannot bias.
Each term is a feature with one coefficient (unlagged, unpenalised by ConvSCCS); :class:`~pathways.models.sccs.SCCS`
reports it with the exposures, with a profile-likelihood interval (pre-exposure, end of observation) or a Wald one
(season, age).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pathways.encode.sccs import SCCSData
from pathways.errors import PathwaysInputError
from pathways.utils import ragged_arange

__all__ = ["add_end_of_observation", "add_pre_exposure", "add_season", "from_first_exposure"]


def _check_buckets(name: str, value: int) -> int:
    if int(value) != value or int(value) < 1:
        raise PathwaysInputError(f"{name}: expected a positive whole number of buckets, got {value!r}")
    return int(value)


def _with_terms(data: SCCSData, case: np.ndarray, bucket: np.ndarray, local: np.ndarray, names: list[str],
                kind: str) -> SCCSData:
    """``data`` plus indicator features ``names`` set at (case, bucket) (``local`` indexes ``names``; once each)."""
    f0 = data.n_features
    key = np.unique(np.column_stack([case, bucket, local]).astype(np.int64), axis=0).reshape(-1, 3)
    return SCCSData(
        n_buckets=data.n_buckets, censoring=data.censoring,
        exposure_case=np.concatenate([data.exposure_case, key[:, 0]]),
        exposure_bucket=np.concatenate([data.exposure_bucket, key[:, 1]]),
        exposure_feature=np.concatenate([data.exposure_feature, f0 + key[:, 2]]),
        exposure_value=np.concatenate([data.exposure_value, np.ones(len(key))]),
        outcome_case=data.outcome_case, outcome_bucket=data.outcome_bucket, outcome_count=data.outcome_count,
        feature_names=np.concatenate([data.feature_names, np.asarray(names, dtype=object)]),
        feature_kind=np.concatenate([data.feature_kind, np.full(len(names), kind, dtype=object)]),
        bucket_size=data.bucket_size, case_patient=data.case_patient, case_start=data.case_start,
        outcome_name=data.outcome_name, time_unit=data.time_unit, info=dict(data.info),
        last_bucket_fraction=data.last_bucket_fraction, case_death=data.case_death)


def add_pre_exposure(data: SCCSData, buckets: int) -> SCCSData:
    """Add ``"<exposure> [pre-exposure]"``: 1 in the ``buckets`` buckets before any start of that exposure.

    Examples
    --------
    >>> d = SCCSData(n_buckets=6, censoring=[6], exposure_case=[0], exposure_bucket=[3], exposure_feature=[0],
    ...              exposure_value=[1.0], outcome_case=[0], outcome_bucket=[4], outcome_count=[1],
    ...              feature_names=["drug"])
    >>> pre = add_pre_exposure(d, 2)
    >>> pre.feature_names.tolist(), pre.exposure_bucket.tolist()
    (['drug', 'drug [pre-exposure]'], [1, 2, 3])
    """
    k = _check_buckets("pre_exposure", buckets)
    exposures = np.flatnonzero(data.feature_kind == "exposure")
    is_exp = np.isin(data.exposure_feature, exposures)
    case, start = data.exposure_case[is_exp], data.exposure_bucket[is_exp]
    local = np.searchsorted(exposures, data.exposure_feature[is_exp])
    first = np.maximum(start - k, 0)
    width = start - first
    rep = np.repeat(np.arange(case.size), width)
    names = [f"{n} [pre-exposure]" for n in data.feature_names[exposures]]
    return _with_terms(data, case[rep], first[rep] + ragged_arange(width), local[rep], names, "pre-exposure")


def add_end_of_observation(data: SCCSData, buckets: int) -> SCCSData:
    """Add ``"end of observation"``: 1 in the last ``buckets`` observed buckets of every case (a probe of
    event-dependent observation: its RI should be 1)."""
    k = _check_buckets("end_of_observation", buckets)
    first = np.maximum(data.censoring - k, 0)
    width = data.censoring - first
    case = np.repeat(np.arange(data.n_cases), width)
    return _with_terms(data, case, np.repeat(first, width) + ragged_arange(width), np.zeros(case.size, np.int64),
                       ["end of observation"], "end of observation")


def add_season(data: SCCSData, origin: str | pd.Timestamp, n_seasons: int = 4) -> SCCSData:
    """Add season steps ``"season 2"`` .. ``"season n"`` (season 1, from January, is the reference).

    Needs ``data.case_start`` (bucket 0 of every case, in days since ``origin``, as built by
    :func:`~pathways.encode.sccs.sccs_data` from a log with dates); a bucket's season is that of its middle day.
    ``n_seasons`` divides the 12 months (4: quarters, 12: months).
    """
    if n_seasons not in (2, 3, 4, 6, 12):
        raise PathwaysInputError(f"n_seasons: expected 2, 3, 4, 6 or 12 (equal months per season), got {n_seasons!r}")
    if data.case_start is None or data.time_unit not in (None, "days"):
        raise PathwaysInputError("add_season: the data carries no case start dates in days (build it with "
                                 "sccs_data from an EventLog with datetime times)")
    case = np.repeat(np.arange(data.n_cases), data.censoring)
    bucket = ragged_arange(data.censoring)
    days = np.asarray(data.case_start, dtype=np.float64)[case] + (bucket + 0.5) * data.bucket_size
    date = np.datetime64(pd.Timestamp(origin).normalize().to_datetime64(), "D") + np.floor(days).astype(
        "timedelta64[D]")
    season = (date.astype("datetime64[M]").astype(np.int64) % 12) * n_seasons // 12
    keep = season > 0
    names = [f"season {s + 1}" for s in range(1, n_seasons)]
    return _with_terms(data, case[keep], bucket[keep], season[keep] - 1, names, "season")


def from_first_exposure(data: SCCSData) -> SCCSData:
    """Observation restarted at each case's first exposure start; cases without exposure start are dropped, and so
    are outcomes before it (the design when an outcome contraindicates a later exposure)."""
    is_exp = data.feature_kind[data.exposure_feature] == "exposure"
    first = np.full(data.n_cases, data.n_buckets, dtype=np.int64)
    np.minimum.at(first, data.exposure_case[is_exp], data.exposure_bucket[is_exp])
    cases = np.flatnonzero(first < data.censoring)
    if cases.size == 0:
        raise PathwaysInputError("from_first_exposure: no case has an exposure start inside its observation")
    new = np.full(data.n_cases, -1, dtype=np.int64)
    new[cases] = np.arange(cases.size)
    e_keep = (new[data.exposure_case] >= 0) & (data.exposure_bucket >= first[data.exposure_case])
    o_keep = (new[data.outcome_case] >= 0) & (data.outcome_bucket >= first[data.outcome_case])
    shift = first[cases]
    return SCCSData(
        n_buckets=data.n_buckets, censoring=data.censoring[cases] - shift,
        exposure_case=new[data.exposure_case[e_keep]],
        exposure_bucket=data.exposure_bucket[e_keep] - first[data.exposure_case[e_keep]],
        exposure_feature=data.exposure_feature[e_keep], exposure_value=data.exposure_value[e_keep],
        outcome_case=new[data.outcome_case[o_keep]],
        outcome_bucket=data.outcome_bucket[o_keep] - first[data.outcome_case[o_keep]],
        outcome_count=data.outcome_count[o_keep], feature_names=data.feature_names, feature_kind=data.feature_kind,
        bucket_size=data.bucket_size, case_patient=None if data.case_patient is None else data.case_patient[cases],
        case_start=None if data.case_start is None else np.asarray(data.case_start, dtype=np.float64)[cases]
        + shift * data.bucket_size,
        outcome_name=data.outcome_name, time_unit=data.time_unit, info=dict(data.info),
        last_bucket_fraction=None if data.last_bucket_fraction is None else data.last_bucket_fraction[cases],
        case_death=None if data.case_death is None else data.case_death[cases])
