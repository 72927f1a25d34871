"""Drug-safety data of the shapes real claims studies produce, with a known relative incidence (issue 21).

Every patient is exposed once (a single new-user dispensation of one drug: ``"RISK"`` or a null drug), outcomes
follow a Poisson process at a baseline rate raised by ``relative_incidence`` during the ``risk_days`` days that
start on the dispensation day (``"RISK"`` and outcome ``"AE"`` only; ``"NE"`` is a null outcome). Times are whole
days, so an SCCS with one-day buckets and the risk window ``(0, risk_days)`` has exactly the planted design.
:data:`SCENARIOS` are the presets of the validation suite (``benchmarks/signals_validation.py``):

* ``"single exposure"``: one dispensation at a uniform time of a 1-4 year observation (the reference shape);
* ``"outcomes in window"``: decades of observation from the early 1900s and a baseline so low that nearly every
  outcome of the exposed cases falls in the risk window (complete or quasi-complete separation);
* ``"exposure at start"``: the dispensation opens the observation (no pre-exposure time);
* ``"outcome ends observation"``: each outcome ends the observation with probability ``death_prob`` (death, on the
  outcome's day: ``patients["death"]``);
* ``"rare outcome"``: 5-20 cases per drug;
* ``"contraindication"``: an outcome before the planned dispensation cancels it with probability
  ``contraindication_prob`` (the outcome contraindicates the drug).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pathways.data.eventlog import EventLog
from pathways.errors import PathwaysInputError
from pathways.utils import rng as make_rng

__all__ = ["SCENARIOS", "simulate_signal_shape"]

#: Presets of :func:`simulate_signal_shape` (keyword arguments), by scenario name.
SCENARIOS: dict[str, dict[str, Any]] = {
    "single exposure": {},
    "outcomes in window": {"relative_incidence": 50000.0, "baseline_per_year": 0.00001, "years": (30, 60),
                           "first_year": 1905, "n_patients": 3000},
    "exposure at start": {"exposure_at_start": True},
    "outcome ends observation": {"death_prob": 0.5},
    "rare outcome": {"relative_incidence": 20.0, "baseline_per_year": 0.05, "n_patients": 200},
    "contraindication": {"contraindication_prob": 0.9},
}


def simulate_signal_shape(scenario: str = "single exposure", seed: int | np.random.Generator | None = 0,
                          **overrides: Any) -> tuple[EventLog, pd.DataFrame]:
    """Simulate one data set of ``scenario`` (a key of :data:`SCENARIOS`; ``overrides`` replace its settings).

    Settings (defaults): ``n_patients`` (4000), ``n_null_drugs`` (3), ``relative_incidence`` (3.0),
    ``risk_days`` (61), ``baseline_per_year`` (0.1), ``years`` ((1, 4): observation length range),
    ``first_year`` (2005: observation starts within 10 years of it), ``exposure_at_start`` (False),
    ``death_prob`` (0.0), ``contraindication_prob`` (0.0).

    Returns
    -------
    log : EventLog with drugs (category ``"drug"``) and outcomes ``"AE"``, ``"NE"`` (``"diagnosis"``).
    truth : DataFrame ``exposure, outcome, ri`` of every (drug, outcome) pair (1 for null pairs).

    Examples
    --------
    >>> log, truth = simulate_signal_shape("rare outcome", seed=0)
    >>> truth[truth["ri"] > 1][["exposure", "outcome", "ri"]].values.tolist()
    [['RISK', 'AE', 20.0]]
    """
    if scenario not in SCENARIOS:
        raise PathwaysInputError(f"scenario: expected one of {sorted(SCENARIOS)}, got {scenario!r}")
    s = {"n_patients": 4000, "n_null_drugs": 3, "relative_incidence": 3.0, "risk_days": 61,
         "baseline_per_year": 0.1, "years": (1, 4), "first_year": 2005, "exposure_at_start": False,
         "death_prob": 0.0, "contraindication_prob": 0.0, **SCENARIOS[scenario], **overrides}
    g = make_rng(seed)
    n = int(s["n_patients"])
    drugs = np.array(["RISK"] + [f"NULL{k + 1}" for k in range(int(s["n_null_drugs"]))], dtype=object)
    drug = g.integers(0, drugs.size, n)
    length = np.maximum((g.uniform(*s["years"], n) * 365.25).astype(np.int64), int(s["risk_days"]) + 2)
    exposure = np.zeros(n, np.int64) if s["exposure_at_start"] else (g.random(n) * length).astype(np.int64)
    lam = float(s["baseline_per_year"]) / 365.25
    ri = np.where(drug == 0, float(s["relative_incidence"]), 1.0)
    pre = _poisson_days(g, np.zeros(n, np.int64), exposure, np.full(n, lam))
    cancelled = np.zeros(n, dtype=bool)
    if s["contraindication_prob"] > 0:  # an outcome before the planned dispensation may cancel it
        had = np.bincount(pre[0], minlength=n) > 0
        cancelled = had & (g.random(n) < float(s["contraindication_prob"]))
    w_end = np.minimum(exposure + int(s["risk_days"]), length)
    window = _poisson_days(g, exposure, w_end, lam * np.where(cancelled, 1.0, ri))
    post = _poisson_days(g, w_end, length, np.full(n, lam))
    ae_patient = np.concatenate([pre[0], window[0], post[0]])
    ae_day = np.concatenate([pre[1], window[1], post[1]])
    ne_patient, ne_day = _poisson_days(g, np.zeros(n, np.int64), length, np.full(n, lam))
    death = np.full(n, -1, np.int64)  # day of death (-1: alive at the end of observation)
    if s["death_prob"] > 0:  # an outcome may end the observation: later events are never recorded
        dies = g.random(ae_day.size) < float(s["death_prob"])
        death = length.copy()
        np.minimum.at(death, ae_patient[dies], ae_day[dies])
        death = np.where(death < length, death, -1)
        length = np.where(death >= 0, death + 1, length)
        keep = ae_day < length[ae_patient]
        ae_patient, ae_day = ae_patient[keep], ae_day[keep]
        keep = ne_day < length[ne_patient]
        ne_patient, ne_day = ne_patient[keep], ne_day[keep]
    exposed = ~cancelled & (exposure < length)
    start = pd.Timestamp(f"{int(s['first_year'])}-01-01") + pd.to_timedelta(g.integers(0, 3653, n), "D")
    ids = np.array([f"p{i}" for i in range(n)], dtype=object)
    patient = np.concatenate([np.flatnonzero(exposed), ae_patient, ne_patient])
    day = np.concatenate([exposure[exposed], ae_day, ne_day])
    code = np.concatenate([drugs[drug[exposed]], np.full(ae_day.size, "AE", object), np.full(ne_day.size, "NE",
                                                                                              object)])
    events = pd.DataFrame({"patient_id": ids[patient], "time": start[patient] + pd.to_timedelta(day, "D"),
                           "code": code, "category": np.where(np.isin(code, drugs), "drug", "diagnosis")})
    patients = pd.DataFrame({"patient_id": ids, "start": start, "end": start + pd.to_timedelta(length - 1, "D"),
                             "death": (start + pd.to_timedelta(death, "D")).where(death >= 0)})
    truth = pd.DataFrame([(d, o, float(s["relative_incidence"]) if (d, o) == ("RISK", "AE") else 1.0)
                          for d in drugs for o in ("AE", "NE")], columns=["exposure", "outcome", "ri"])
    return EventLog.from_pandas(events.sort_values(["patient_id", "time"], kind="stable"), patients), truth


def _poisson_days(g: np.random.Generator, lo: np.ndarray, hi: np.ndarray,
                  rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poisson events at ``rate`` per day in the whole days ``[lo, hi)`` of every patient: (patient, day)."""
    span = np.maximum(hi - lo, 0)
    count = g.poisson(rate * span)
    patient = np.repeat(np.arange(lo.size), count)
    day = lo[patient] + (g.random(patient.size) * span[patient]).astype(np.int64)
    return patient, day
