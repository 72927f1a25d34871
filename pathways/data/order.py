"""The (patient, time, code) order of event arrays: the one sort every EventLog builder uses."""
from __future__ import annotations

import numpy as np


def is_sorted(patient: np.ndarray, time: np.ndarray, code: np.ndarray, chunk: int = 1 << 20) -> bool:
    """Whether rows are in (patient, time, code) order; checked by chunks so that the temporaries stay small.

    Examples
    --------
    >>> is_sorted(np.array([0, 0, 1]), np.array([1., 2., 0.]), np.array([3, 1, 0]))
    True
    >>> is_sorted(np.array([0, 0]), np.array([1., 1.]), np.array([2, 1]))
    False
    """
    for lo in range(0, patient.size - 1, chunk):
        hi = min(lo + chunk + 1, patient.size)  # chunks overlap by one row: every adjacent pair is compared
        p, t, c = patient[lo:hi], time[lo:hi], code[lo:hi]
        dp, dt = p[1:] - p[:-1], t[1:] - t[:-1]
        if not np.all((dp > 0) | ((dp == 0) & ((dt > 0) | ((dt == 0) & (c[1:] >= c[:-1]))))):
            return False
    return True


def event_order(patient: np.ndarray, time: np.ndarray, code: np.ndarray) -> np.ndarray | None:
    """Stable order by (patient, time, code) of non-negative indices and finite times; None when already sorted.

    One stable argsort of a single integer key (patient, time rank, code) rather than a three-key ``lexsort``
    (same order, a fraction of the time at millions of events); the three-key sort is kept for keys that would
    overflow int64.

    Examples
    --------
    >>> event_order(np.array([1, 0, 0]), np.array([0., 2., 1.]), np.array([0, 0, 5])).tolist()
    [2, 1, 0]
    >>> event_order(np.array([0, 1]), np.array([0., 0.]), np.array([0, 0])) is None
    True
    """
    if time.size < 2 or is_sorted(patient, time, code):
        return None
    if np.all(time == np.round(time)) and time.max() - time.min() < 2 ** 31:  # whole days: the usual claims case
        t_rank = (time - time.min()).astype(np.int64)
    else:
        t_rank = np.unique(time, return_inverse=True)[1].astype(np.int64).reshape(-1)
    n_t, n_codes = int(t_rank.max()) + 1, int(code.max()) + 1
    if (int(patient.max()) + 1) * n_t * n_codes >= 2 ** 62:  # the key would overflow: three-key sort
        return np.lexsort((code, time, patient))
    key = t_rank
    key += patient * n_t  # in place: t_rank is ours
    key *= n_codes
    key += code
    return np.argsort(key, kind="stable")


__all__ = ["event_order", "is_sorted"]
