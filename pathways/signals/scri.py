"""Self-controlled risk interval (SCRI) counts per (drug, outcome) at a look, with their null expectation.

Each *incident* dispensation (none of the drug in the ``washout`` days before) whose windows are observed by the
look contributes its outcome events in the risk window ``[t + r0, t + r1)`` and the control window
``[t + c0, t + c1)``. Under the null a case falls in the risk window with probability ``1 / (1 + z)`` if the
outcome's incidence is constant within person. Two departures from that, common in claims, are adjusted:

* **calendar time**: the outcome's background incidence is estimated per calendar bin (all patients, events over
  observed person-time) and a case's probability is the background integrated over the risk window over that
  over both windows (as the age and season terms of an SCCS);
* **co-medication**: the windows' intensities also carry the excess of the other drugs raised on the same
  outcome at that look, over the time each window is exposed to them (two stages: each pair's own estimate, then
  the adjusted expectations).

The sequential decision on these counts is in :mod:`pathways.signals.surveillance`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pathways.cohort import match_codes
from pathways.data.eventlog import EventLog
from pathways.errors import PathwaysInputError
from pathways.signals.plan import SurveillancePlan
from pathways.signals.sequential import binomial_llr

__all__ = ["ScriIndex", "scri_counts"]


def _codes(log: EventLog, codes: Sequence[str] | None, category: str) -> np.ndarray:
    if codes is None:
        is_cat = pd.Series(log.category).astype(object).to_numpy() == category
        return np.unique(log.code[is_cat])
    return np.flatnonzero(match_codes(log.vocab, codes))


def _incident(patient: np.ndarray, time: np.ndarray, washout: float) -> tuple[np.ndarray, np.ndarray]:
    """Patients and times of the dispensations (sorted by patient, time) without one in the ``washout`` days
    before."""
    new = np.ones(patient.size, bool)
    same = patient[1:] == patient[:-1]
    new[1:] = ~same | (time[1:] - time[:-1] > washout)
    return patient[new], time[new]


class ScriIndex:
    """What every look reuses: code indices, each code's events (one grouping pass), incident starts and the
    exposed time of each drug (built on first use). The looks differ only by the date that cuts the data."""

    def __init__(self, log: EventLog, plan: SurveillancePlan, drugs: Sequence[str] | None,
                 outcomes: Sequence[str] | None) -> None:
        self.drug_idx = _codes(log, drugs, "drug")
        self.out_idx = _codes(log, outcomes, "outcome") if outcomes is not None else np.zeros(0, np.int64)
        if self.out_idx.size == 0:
            raise PathwaysInputError("scri_counts: no outcome code matches the log; name the outcomes")
        self.scale = float(np.nanmax(np.abs(log.time))) * 4 + 1e6 if log.n_events else 1.0  # patient-major key
        codes = np.concatenate([self.drug_idx, self.out_idx])
        rows = np.flatnonzero(np.isin(log.code, codes))
        rows = rows[np.argsort(log.code[rows], kind="stable")]  # grouped by code, (patient, time) order kept
        lo, hi = np.searchsorted(log.code[rows], codes, "left"), np.searchsorted(log.code[rows], codes, "right")
        events = {int(c): (log.patient[rows[a:b]], log.time[rows[a:b]]) for c, a, b in zip(codes, lo, hi)}
        self.dispensed = {d: events[int(d)] for d in self.drug_idx}
        self.outcomes = {o: events[int(o)] for o in self.out_idx}
        self.starts = {d: _incident(*self.dispensed[d], plan.washout) for d in self.drug_idx}
        self.start_key = np.sort(np.concatenate([p * self.scale + t for p, t in self.starts.values()]
                                                + [np.zeros(0)]))
        self._exposed: dict[int, tuple[np.ndarray, ...]] = {}

    def exposed(self, drug: int, plan: SurveillancePlan) -> tuple[np.ndarray, ...]:
        """Exposed time of ``drug`` (:func:`_exposed_time`), computed once."""
        if drug not in self._exposed:
            self._exposed[drug] = _exposed_time(*self.dispensed[drug], plan, self.scale)
        return self._exposed[drug]


def scri_counts(log: EventLog, at: float, plan: SurveillancePlan, drugs: Sequence[str] | None = None,
                outcomes: Sequence[str] | None = None, index: ScriIndex | None = None) -> pd.DataFrame:
    """Self-controlled risk interval counts per (drug, outcome) with the data known at time ``at``.

    Parameters
    ----------
    log : the event log; at : the look (days since 1970-01-01, the EventLog clock).
    plan : windows, washout and adjustments (:class:`pathways.signals.surveillance.SurveillancePlan`).
    drugs, outcomes : codes or prefixes (default drugs: every event of category ``"drug"``).
    index : a :class:`ScriIndex` of the same log and plan, shared by the looks (built here when missing).

    Returns
    -------
    DataFrame ``exposure, outcome, n_cases`` (events in risk + control windows), ``n_risk``, ``n_exposures``
    (incident dispensations with both windows observed), ``expected_risk`` (null expectation of ``n_risk`` given
    the cases: ``n_cases / (1 + z)``, or calendar-adjusted, see ``SurveillancePlan.calendar_days``).
    """
    index = index or ScriIndex(log, plan, drugs, outcomes)
    drug_idx, out_idx, scale, start_key = index.drug_idx, index.out_idx, index.scale, index.start_key
    (r0, r1), (c0, c1) = plan.risk_window, plan.control_window
    p_start = log.patients["start"].to_numpy(float)
    p_end = np.minimum(log.patients["end"].to_numpy(float), at)
    incident = {}
    for d, (patient, time) in index.starts.items():  # episodes fully observed by ``at``, after a known washout
        ok = (time - plan.washout >= p_start[patient]) & (time + r1 <= p_end[patient])
        base, when = patient[ok] * scale + time[ok], time[ok]
        if plan.coexposure_days > 0:  # drop episodes where another screened drug starts around this one
            lo, hi = base + c0 - plan.coexposure_days, base + r1
            alone = np.searchsorted(start_key, hi) - np.searchsorted(start_key, lo) - 1 == 0  # minus itself
            base, when = base[alone], when[alone]
        incident[d] = (base, int(base.size), when)
    rows, cases = [], []
    for o in out_idx:  # a handful of outcomes x a few dozen drugs: each count is two searchsorted calls
        patient, time = index.outcomes[o]
        known = time < at
        key = patient[known] * scale + time[known]
        cumulative = _background(time[known], p_start, p_end, at, plan.calendar_days)
        for d in drug_idx:
            base, n_exposures, when = incident[d]
            risk = np.searchsorted(key, base + r1) - np.searchsorted(key, base + r0)
            control = np.searchsorted(key, base + c1) - np.searchsorted(key, base + c0)
            has = np.flatnonzero(risk + control)  # episodes with a case: the only ones the test conditions on
            lam_risk, lam_control = _window_intensity(when[has], plan, cumulative)
            cases.append((base[has], risk[has] + control[has], lam_risk, lam_control))
            rows.append((log.vocab.codes[d], log.vocab.codes[o], int(risk.sum() + control.sum()),
                         int(risk.sum()), n_exposures, _expected(cases[-1])))
    table = pd.DataFrame(rows, columns=["exposure", "outcome", "n_cases", "n_risk", "n_exposures", "expected_risk"])
    if plan.comedication and drug_idx.size > 1:
        table["expected_risk"] = _adjust_comedication(index, table, cases, plan)
    return table


def _expected(case: tuple[np.ndarray, ...], excess_risk: np.ndarray | float = 0.0,
              excess_control: np.ndarray | float = 0.0) -> float:
    """Null expectation of the risk-window count: each episode's cases times its risk-window probability."""
    _, n, lam_risk, lam_control = case
    a, b = lam_risk * (1.0 + excess_risk), lam_control * (1.0 + excess_control)
    return float(np.sum(n * np.divide(a, a + b, out=np.full(n.size, 0.5), where=a + b > 0)))


def _exposed_time(patient: np.ndarray, time: np.ndarray, plan: SurveillancePlan,
                  scale: float) -> tuple[np.ndarray, ...]:
    """Union per patient of the risk windows of a drug's dispensations (sorted by patient, time): sorted
    ``(start, end)`` keys (patient-major) and the covered length before each interval."""
    lo = patient * scale + time + plan.risk_window[0]
    hi = lo + plan.risk_window[1] - plan.risk_window[0]
    reach = np.maximum.accumulate(hi)  # rows are sorted by (patient, time): merge overlapping windows
    new = np.ones(lo.size, bool)
    new[1:] = lo[1:] > reach[:-1]
    starts, ends = lo[new], np.maximum.reduceat(reach, np.flatnonzero(new)) if lo.size else hi
    return starts, ends, np.concatenate([[0.0], np.cumsum(ends - starts)])


def _covered(exposed: tuple[np.ndarray, ...], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exposed time of one drug inside ``[a, b)`` (patient-major keys)."""
    starts, ends, before = exposed

    def upto(x: np.ndarray) -> np.ndarray:
        j = np.searchsorted(starts, x, side="right") - 1
        inside = np.clip(x - starts[np.maximum(j, 0)], 0.0, (ends - starts)[np.maximum(j, 0)])
        return np.where(j >= 0, before[np.maximum(j, 0)] + inside, 0.0)

    return upto(b) - upto(a) if starts.size else np.zeros(a.size)


def _adjust_comedication(index: ScriIndex, table: pd.DataFrame, cases: list[tuple[np.ndarray, ...]],
                         plan: SurveillancePlan) -> np.ndarray:
    """Null expectations that account for the other drugs' effects on the same outcome (co-medication).

    Two stages at each look: every pair's own estimate first; then, for each case of a pair (d, o), the outcome
    intensity in each window is the background times ``1 + sum_r (RI_ro - 1) x share of the window exposed to
    r`` over the other drugs r whose estimate on o is raised at the nominal one-sided 5 % level (LLR >= 1.353),
    an additive excess as the step kernels of co-prescribed drugs add. A null drug co-started with a harmful one
    then no longer inherits its excess in the risk window ("innocent bystander" in pharmacovigilance).
    """
    drug_idx = index.drug_idx
    n, k, e = (table[c].to_numpy(float) for c in ("n_cases", "n_risk", "expected_risk"))
    with np.errstate(divide="ignore", invalid="ignore"):
        z_pair = np.where((e > 0) & (n > e), (n - e) / e, plan.z)
        ri = np.where(n - k > 0, z_pair * k / (n - k), np.nan)
    raised = binomial_llr(k, n, z_pair) >= 1.353  # chi2(1) 0.90 quantile / 2: one-sided 5 %
    excess = np.where(raised & np.isfinite(ri), np.maximum(ri - 1.0, 0.0), 0.0).reshape(-1, drug_idx.size)
    (r0, r1), (c0, c1) = plan.risk_window, plan.control_window
    out = table["expected_risk"].to_numpy(float).copy()
    adjusting = np.flatnonzero(excess.any(axis=0))  # drugs raised on some outcome
    exposed = {r: index.exposed(int(drug_idx[r]), plan) for r in adjusting}
    for i, case in enumerate(cases):  # pairs: outcome-major, as the table
        o, d = divmod(i, drug_idx.size)
        others = [r for r in adjusting if r != d and excess[o, r] > 0]
        if not others or case[0].size == 0:
            continue
        base = case[0]
        share_risk = sum(excess[o, r] * _covered(exposed[r], base + r0, base + r1) for r in others) / (r1 - r0)
        share_control = sum(excess[o, r] * _covered(exposed[r], base + c0, base + c1) for r in others) / (c1 - c0)
        out[i] = _expected(case, share_risk, share_control)
    return out


def _background(times: np.ndarray, p_start: np.ndarray, p_end: np.ndarray, at: float,
                width: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Cumulative background intensity of one outcome at calendar bin edges: ``(edges, Lambda(edges))``.

    Per bin: outcome events over the person-time observed in it (all patients, up to ``at``); ``Lambda`` is the
    integral of that piecewise-constant rate. ``None`` when ``width`` is 0 (no calendar adjustment).
    """
    if width <= 0 or times.size == 0:
        return None
    first = float(np.min(p_start))
    edges = first + width * np.arange(int(np.ceil((at - first) / width)) + 1)
    starts, ends = np.sort(p_start), np.sort(np.maximum(p_end, p_start))
    cum_s, cum_e = np.concatenate([[0.0], np.cumsum(starts)]), np.concatenate([[0.0], np.cumsum(ends)])
    n_s, n_e = np.searchsorted(starts, edges), np.searchsorted(ends, edges)
    # person-time observed before x: sum over patients of clip(x - start, 0, end - start)
    before = (n_s * edges - cum_s[n_s]) - (n_e * edges - cum_e[n_e])
    person_time = np.diff(before)
    events = np.histogram(times, bins=edges)[0]
    rate = np.divide(events, person_time, out=np.zeros(events.size), where=person_time > 0)
    return edges, np.concatenate([[0.0], np.cumsum(rate * width)])


def _window_intensity(time: np.ndarray, plan: SurveillancePlan,
                      cumulative: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """Background intensity integrated over the risk and control windows of episodes starting at ``time``
    (the window lengths without calendar adjustment)."""
    (r0, r1), (c0, c1) = plan.risk_window, plan.control_window
    if cumulative is None:
        return np.full(time.size, r1 - r0), np.full(time.size, c1 - c0)
    edges, lam = cumulative
    risk = np.interp(time + r1, edges, lam) - np.interp(time + r0, edges, lam)
    control = np.interp(time + c1, edges, lam) - np.interp(time + c0, edges, lam)
    return risk, control
