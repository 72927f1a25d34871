"""Deterministic patient-level train / validation / test split.

Each patient is assigned from a hash of its own identifier and the seed, never from its position or from the other
patients: adding patients to a cohort (a new extraction, a later year) leaves every existing patient in the same
split, and all events of one patient always land in the same split (no leakage between train and test).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import pandas as pd

from pathways.errors import PathwaysInputError

if TYPE_CHECKING:
    from pathways.data.eventlog import EventLog

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a fast, well-mixed bijection of uint64 (vectorised)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _id_hashes(ids: np.ndarray) -> np.ndarray:
    """Stable uint64 hash of each identifier (integers by value, anything else by its string form)."""
    if ids.dtype.kind in "iu":
        return _splitmix64(ids.astype(np.int64).view(np.uint64))
    if ids.dtype.kind == "f" and np.all(np.isfinite(ids)) and np.all(ids == np.round(ids)):
        return _splitmix64(ids.astype(np.int64).view(np.uint64))
    # pandas' SipHash with a fixed key: stable across runs, platforms and library versions.
    strings = pd.Series(ids, dtype=object).astype(str).to_numpy(dtype=object)
    return pd.util.hash_array(strings, encoding="utf8", hash_key="pathways-split-1", categorize=True)


def _patient_ids(n_or_log: "int | EventLog | Iterable[Any]") -> np.ndarray:
    if isinstance(n_or_log, (int, np.integer)) and not isinstance(n_or_log, bool):
        if n_or_log < 0:
            raise PathwaysInputError(f"n_or_log: number of patients must be >= 0, got {n_or_log}")
        return np.arange(int(n_or_log), dtype=np.int64)
    patients = getattr(n_or_log, "patients", None)
    if isinstance(patients, pd.DataFrame):
        return patients["patient_id"].to_numpy()
    if isinstance(n_or_log, (str, bytes)) or not hasattr(n_or_log, "__iter__"):
        raise PathwaysInputError(
            f"n_or_log: expected a patient count, an EventLog or an array of patient ids, got {type(n_or_log).__name__}"
        )
    ids = pd.Series(list(n_or_log) if not isinstance(n_or_log, np.ndarray) else n_or_log)
    missing = ids.isna().to_numpy()
    if missing.any():
        raise PathwaysInputError(f"n_or_log: {int(missing.sum())} of {ids.size} patient ids are missing, "
                                 f"first at position {int(np.flatnonzero(missing)[0])}")
    dup = ids.duplicated().to_numpy()
    if dup.any():
        raise PathwaysInputError(f"n_or_log: {int(dup.sum())} of {ids.size} patient ids repeat an earlier one, "
                                 f"first at position {int(np.flatnonzero(dup)[0])}")
    return ids.to_numpy()


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    frac = np.asarray(fractions, dtype=np.float64).reshape(-1)
    if frac.size < 1 or not np.all(np.isfinite(frac)) or np.any(frac < 0):
        raise PathwaysInputError(f"fractions: expected non-negative finite numbers, got {list(fractions)}")
    if abs(frac.sum() - 1.0) > 1e-6:
        raise PathwaysInputError(f"fractions: must sum to 1, got {list(fractions)} (sum {frac.sum():.6g})")
    return frac


def patient_uniforms(n_or_log: "int | EventLog | Iterable[Any]", seed: int = 0) -> np.ndarray:
    """One number in [0, 1) per patient, a deterministic function of (patient id, seed) only.

    Parameters
    ----------
    n_or_log : number of patients (ids ``0..n-1``), an EventLog (its ``patients.patient_id``) or an array of ids.
    seed : integer salt; another seed gives an independent assignment.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise PathwaysInputError(f"seed: expected an integer, got {seed!r}")
    ids = _patient_ids(n_or_log)
    salt = _splitmix64(np.array([int(seed) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    h = _splitmix64(_id_hashes(ids) ^ salt)
    # The top 53 bits give a uniform double in [0, 1).
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def split_patients(
    n_or_log: "int | EventLog | Iterable[Any]",
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> tuple[np.ndarray, ...]:
    """Split patients into train / validation / test index arrays, deterministically per patient id.

    Parameters
    ----------
    n_or_log : number of patients (ids ``0..n-1``), an EventLog (uses ``patients.patient_id``) or an array of
        unique patient ids.
    fractions : expected share of each split (non-negative, summing to 1); any number of splits.
    seed : integer salt of the hash.

    Returns
    -------
    One sorted int64 array of patient indices (positions) per fraction; together they partition ``0..n-1``.
    The realised shares differ from ``fractions`` by sampling noise (about ``sqrt(f (1 - f) / n)``), the price of a
    split that does not move when patients are added.

    Examples
    --------
    >>> train, val, test = split_patients(1000, seed=0)
    >>> len(train) + len(val) + len(test)
    1000
    >>> bool(np.array_equal(split_patients(1200, seed=0)[0][:50], train[:50]))  # stable when patients are added
    True
    """
    frac = _check_fractions(fractions)
    u = patient_uniforms(n_or_log, seed)
    edges = np.cumsum(frac)
    edges[-1] = np.inf  # guards against rounding: every patient lands somewhere
    which = np.searchsorted(edges, u, side="right")
    order = np.argsort(which, kind="stable")
    bounds = np.searchsorted(which[order], np.arange(frac.size + 1))
    return tuple(order[bounds[k]:bounds[k + 1]].astype(np.int64) for k in range(frac.size))


__all__ = ["patient_uniforms", "split_patients"]
