"""The whole weak-signal path: EventLog + study design -> exposures -> SCCS and disproportionality -> signal table."""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from pathways.cohort import limited_exposures, match_codes
from pathways.data.eventlog import EventLog
from pathways.encode.sccs import SCCSData, sccs_data
from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.progress import progress_bar
from pathways.signals.disproportionality import disproportionality, exposure_event_matrix
from pathways.models.sccs import (EXPOSURE_CODINGS, SCCS, add_end_of_observation, add_pre_exposure, add_season,
                                  from_first_exposure)
from pathways.signals.table import signal_table

logger = logging.getLogger("pathways")

DISPROPORTIONALITY_METHODS = ("PRR", "ROR", "IC", "EBGM")


@dataclass
class StudyDesign:
    """What a drug-safety screen compares.

    Parameters
    ----------
    outcomes : outcome codes (or code prefixes) — the adverse events screened.
    drugs : drug codes or prefixes; default every event of category ``"drug"``.
    exposure_days : days each dispensation covers (SCALPEL "limited" exposures, overlapping periods merged).
    grace : largest gap (days) that still merges two exposure periods.
    risk_window : (first, last) day after a dispensation where SCCS looks for a raised incidence.
    bucket_days : SCCS time resolution (days per bucket); the risk window is cut to whole buckets
        (:meth:`sccs_windows`).
    exposure_coding : SCCS covariate when risk windows of several dispensations overlap: ``"exposed"`` (classic
        risk period: inside the window of at least one dispensation, counted once; the estimate is the incidence
        ratio of risk-period time vs other time) or ``"starts"`` (one term per dispensation, so ``k`` overlapping
        windows multiply the incidence by ``RI ** k``). See :class:`pathways.models.sccs.SCCS`.
    outcome_mode : SCCS keeps the ``"first"`` outcome per case (classic SCCS) or ``"all"``.
    negative_controls : (drug, outcome) pairs assumed without effect, for empirical calibration.
    methods : subset of ``("SCCS", "PRR", "ROR", "IC", "EBGM")``.
    pre_exposure_days : SCCS diagnostic and adjustment (0: off): a window of that many days (cut to buckets) before
        every dispensation, with its own RI — below 1 when outcomes delay or prevent the exposure (event-dependent
        exposure); those days leave the reference. See :mod:`pathways.models.sccs.terms`.
    end_of_observation_days : SCCS diagnostic (0: off): a probe over the last days of every case's observation;
        its RI above 1 flags outcomes that end observation (death), which bias the SCCS.
    season : SCCS adjustment for calendar season: 0 (off), or the number of equal seasons a year is cut into
        (4: quarters, 12: months); needs a log with dates.
    age_edges_years : SCCS adjustment for age: increasing cut points in years (e.g. ``(40, 60, 80)``; empty: off);
        one step per age group beyond the first; needs ``patients.birth``.
    observe_from_exposure : SCCS observation starts at each case's first dispensation (cases without one drop
        out): the design when an outcome prevents later exposure (contraindication).
    prior_sd : SCCS separation remedy: standard deviation of the weak normal prior on the log RI of separated
        windows only (see :class:`pathways.models.sccs.SCCS`).
    event_dependent_observation : SCCS for outcomes that end the observation (death, from ``patients["death"]``):
        None (classic SCCS) or the law of the time from the outcome to death (``"exponential"``, ``"weibull"``,
        ``"gamma"``, ``"exponential-weibull"``, ``"exponential-gamma"``, ``"auto"``: smallest AIC); the modified
        SCCS of :mod:`pathways.models.sccs.eventdep` (first outcome per case). The fitted laws are in
        ``table.attrs["sccs_observation_models"]``.

    Notes
    -----
    The SCCS rows of the diagnostic and adjustment terms are in ``table.attrs["sccs_terms"]`` (records).
    """

    outcomes: Sequence[str]
    drugs: Sequence[str] | None = None
    exposure_days: float = 30.0
    grace: float = 0.0
    risk_window: tuple[float, float] = (0.0, 60.0)
    bucket_days: float = 7.0
    exposure_coding: str = "exposed"
    outcome_mode: str = "first"
    negative_controls: Sequence[tuple[str, str]] = field(default_factory=list)
    methods: Sequence[str] = ("SCCS", "PRR", "ROR", "IC", "EBGM")
    pre_exposure_days: float = 0.0
    end_of_observation_days: float = 0.0
    season: int = 0
    observe_from_exposure: bool = False
    age_edges_years: Sequence[float] = ()
    prior_sd: float = 4.0
    event_dependent_observation: str | None = None

    def sccs_windows(self) -> list[list[int]]:
        """The SCCS risk window in buckets after the dispensation's bucket, both ends included:
        ``[[floor(first / bucket_days), ceil(last / bucket_days) - 1]]`` (at least one bucket)."""
        first = int(np.floor(self.risk_window[0] / self.bucket_days))
        last = int(np.ceil(self.risk_window[1] / self.bucket_days)) - 1
        return [[first, max(last, first)]]

    def sccs_terms(self, data: SCCSData, origin: pd.Timestamp | None) -> SCCSData:
        """``data`` with the design's SCCS adjustment and diagnostic terms (:mod:`pathways.models.sccs.terms`)."""
        if self.observe_from_exposure:
            data = from_first_exposure(data)
        if self.pre_exposure_days > 0:
            data = add_pre_exposure(data, max(int(np.ceil(self.pre_exposure_days / self.bucket_days)), 1))
        if self.end_of_observation_days > 0:
            data = add_end_of_observation(data, max(int(np.ceil(self.end_of_observation_days / self.bucket_days)), 1))
        if self.season:
            if origin is None:
                raise PathwaysInputError("season: the log has no dates (numeric times): calendar seasons are unknown")
            data = add_season(data, origin, int(self.season))
        return data


def detect(log: EventLog, design: StudyDesign | None = None, *, q_threshold: float = 0.05, alpha: float = 0.05,
           min_events: int = 3, **design_kwargs: object) -> pd.DataFrame:
    """Screen every (drug, outcome) pair with SCCS and disproportionality and return the calibrated signal table.

    Parameters
    ----------
    log : the event log (drug dispensations and outcome diagnoses).
    design : a :class:`StudyDesign`; or pass its fields as keyword arguments.
    q_threshold, alpha, min_events : see :func:`pathways.signals.table.signal_table`.

    Examples
    --------
    >>> from pathways.synthetic.cohort import simulate_cohort
    >>> log, truth = simulate_cohort(300, seed=0)
    >>> table = detect(log, outcomes=truth.outcomes, methods=("PRR",))
    >>> sorted(table["method"].unique())
    ['PRR']
    """
    design = design or StudyDesign(**design_kwargs)  # type: ignore[arg-type]
    unknown = [m for m in design.methods if m not in ("SCCS", *DISPROPORTIONALITY_METHODS)]
    if unknown:
        raise PathwaysInputError(f"methods: unknown {unknown}; choose among SCCS, PRR, ROR, IC, EBGM")
    if design.exposure_coding not in EXPOSURE_CODINGS:
        raise PathwaysInputError(f"exposure_coding: expected one of {EXPOSURE_CODINGS}, got "
                                 f"{design.exposure_coding!r}")
    drug_idx, outcome_idx = _resolve_codes(log, design)
    parts = []
    dispro = [m for m in design.methods if m in DISPROPORTIONALITY_METHODS]
    if dispro:
        parts.append(_disproportionality(log, design, drug_idx, outcome_idx, dispro, alpha))
    terms: list[dict] = []
    laws: list[dict] = []
    if "SCCS" in design.methods:
        sccs_rows, terms, laws = _sccs(log, design, drug_idx, outcome_idx, alpha)
        parts.append(sccs_rows)
    estimates = pd.concat(parts, ignore_index=True)
    table = signal_table(estimates, negative_controls=design.negative_controls, q_threshold=q_threshold,
                         alpha=alpha, min_events=min_events)
    table.attrs["sccs_terms"] = terms
    table.attrs["sccs_observation_models"] = laws
    return table


def _resolve_codes(log: EventLog, design: StudyDesign) -> tuple[np.ndarray, np.ndarray]:
    outcome_idx = np.flatnonzero(match_codes(log.vocab, design.outcomes))
    if outcome_idx.size == 0:
        raise PathwaysInputError(f"outcomes: none of {list(design.outcomes)[:5]} matches a code of the log")
    if design.drugs is None:
        is_drug = pd.Series(log.category).astype(object).to_numpy() == "drug"
        drug_idx = np.unique(log.code[is_drug])
        if drug_idx.size == 0:
            raise PathwaysInputError("drugs: the log has no event of category 'drug'; name the drug codes")
    else:
        drug_idx = np.flatnonzero(match_codes(log.vocab, design.drugs))
        if drug_idx.size == 0:
            raise PathwaysInputError(f"drugs: none of {list(design.drugs)[:5]} matches a code of the log")
    overlap = np.intersect1d(drug_idx, outcome_idx)
    if overlap.size:
        raise PathwaysInputError(f"codes {log.vocab.codes[overlap][:3].tolist()} are both drugs and outcomes")
    return drug_idx, outcome_idx


def _disproportionality(log: EventLog, design: StudyDesign, drug_idx: np.ndarray, outcome_idx: np.ndarray,
                        methods: Sequence[str], alpha: float) -> pd.DataFrame:
    drugs = log.vocab.codes[drug_idx]
    # Cohort.events indexes the whole population's patients table, like ``log`` (to_eventlog would renumber)
    exposure = limited_exposures(log, codes=drugs, prefix=False, duration=design.exposure_days,
                                 grace=design.grace).events
    # the exposure log has its own vocabulary (one code per exposure group): map back by code string
    drug_pos = pd.Index(drugs).get_indexer(exposure.vocab.codes[exposure.code])
    windows = pd.DataFrame({"patient": exposure.patient, "exposure": drug_pos,
                            "start": exposure.time, "end": exposure.end})
    out_pos = np.full(log.n_codes, -1)
    out_pos[outcome_idx] = np.arange(outcome_idx.size)
    is_outcome = out_pos[log.code] >= 0
    x = exposure_event_matrix(log.patient[is_outcome], log.time[is_outcome], windows, drug_idx.size)
    return disproportionality(x, out_pos[log.code[is_outcome]], drugs, log.vocab.codes[outcome_idx],
                              methods=tuple(methods), alpha=alpha)


def _sccs(log: EventLog, design: StudyDesign, drug_idx: np.ndarray, outcome_idx: np.ndarray,
          alpha: float) -> tuple[pd.DataFrame, list[dict], list[dict]]:
    """One classic SCCS per outcome (all drugs in one model, so co-exposures adjust each other); returns the
    exposure rows, the records of the other terms (diagnostics, adjustments) and of the fitted laws of the time to
    death (``event_dependent_observation``)."""
    drugs = log.vocab.codes[drug_idx].tolist()
    rows, terms, laws = [], [], []
    bar = progress_bar(total=len(drugs) * outcome_idx.size, desc="detect: SCCS pairs", unit="pair")
    for code in log.vocab.codes[outcome_idx]:  # one model per outcome: a handful, never per patient
        bar.update(len(drugs))  # the outcome's model covers its pairs with every drug
        ages = [365.25 * float(a) for a in design.age_edges_years] or None
        data = sccs_data(log, {d: [d] for d in drugs}, [code], design.bucket_days, outcome_mode=design.outcome_mode,
                         age_edges=ages)
        if not np.any(data.outcomes_per_case() > 0):
            continue
        data = design.sccs_terms(data, log.origin)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PathwaysDataWarning)  # windows without outcomes are reported as NaN
            model = SCCS(risk_windows=design.sccs_windows(), exposure_coding=design.exposure_coding,
                         ci_level=1 - alpha, prior_sd=design.prior_sd,
                         event_dependent_observation=design.event_dependent_observation).fit(data)
        law = model.observation_model_
        if law is not None:
            laws.append({"outcome": code, "family": law.family, **law.params, "aic": law.aic, "cases": law.n_cases,
                         "deaths": law.n_deaths})
        other = model.results_[model.results_["kind"] != "exposure"]
        terms += other.assign(outcome=code).replace({np.inf: None, -np.inf: None}).to_dict("records")
        res = model.results_[model.results_["kind"] == "exposure"]
        rows.append(pd.DataFrame({
            "exposure": res["feature"].to_numpy(), "outcome": code, "method": "SCCS",
            "estimate": res["ri"].to_numpy(), "ci_low": res["ci_low"].to_numpy(),
            "ci_high": res["ci_high"].to_numpy(), "p": res["p"].to_numpy(), "se_log": res["std_err"].to_numpy(),
            "n_exposed_events": res["n_outcomes"].to_numpy().astype(np.int64), "status": res["status"].to_numpy(),
        }))
    bar.close()
    if not rows:
        warnings.warn("SCCS: no case with an outcome for any outcome code", PathwaysDataWarning, stacklevel=3)
        return pd.DataFrame(columns=["exposure", "outcome", "method", "estimate", "ci_low", "ci_high", "p",
                                     "se_log", "n_exposed_events", "status"]), terms, laws
    return pd.concat(rows, ignore_index=True), terms, laws


def relative_incidence_curves(log: EventLog, pairs: Sequence[tuple[str, str]], *,
                               lag_edges_days: Sequence[float] = (0, 14, 28, 42, 56, 90), bucket_days: float = 7.0,
                               outcome_mode: str = "first", exposure_coding: str = "exposed",
                               alpha: float = 0.05) -> pd.DataFrame:
    """Relative incidence as a step function of the lag after a dispensation, with profile-likelihood intervals.

    For every outcome of ``pairs``, one classic SCCS with consecutive risk windows (``lag_edges_days``, cut to
    buckets) per drug of those pairs; each window's relative incidence and interval is one step of the curve.
    With ``exposure_coding="exposed"`` a bucket is in a step when it lies in that step's lags of at least one
    dispensation (see :class:`pathways.models.sccs.SCCS`).

    Returns
    -------
    DataFrame ``exposure, outcome, lag_start, lag_end`` (days), ``ri, ci_low, ci_high, n_outcomes, status``: a step
    without outcome says ``"no exposed outcome"`` (penalised RI below 1, interval from 0), steps holding every
    outcome of the cases say ``"separated"`` (see :class:`pathways.models.sccs.SCCS`).
    """
    edges = np.unique(np.round(np.asarray(lag_edges_days, dtype=float) / bucket_days).astype(int))
    if edges.size < 2:
        raise PathwaysInputError("lag_edges_days: need at least two distinct edges (one window) at this bucket size")
    windows = [[int(a), int(b) - 1] for a, b in zip(edges[:-1], edges[1:])]
    frame = pd.DataFrame(list(pairs), columns=["exposure", "outcome"]).drop_duplicates()
    rows = []
    for outcome, part in frame.groupby("outcome", sort=True):  # one model per outcome, never per patient
        drugs = part["exposure"].astype(str).tolist()
        data = sccs_data(log, {d: [d] for d in drugs}, [str(outcome)], bucket_days, outcome_mode=outcome_mode)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PathwaysDataWarning)
            model = SCCS(risk_windows=windows, exposure_coding=exposure_coding, ci_level=1 - alpha)
            res = model.fit(data).results_
        res = res[res["kind"] == "exposure"]
        rows.append(pd.DataFrame({
            "exposure": res["feature"].to_numpy(), "outcome": outcome,
            "lag_start": res["window_start"].to_numpy() * bucket_days,
            "lag_end": (res["window_end"].to_numpy() + 1) * bucket_days,
            "ri": res["ri"].to_numpy(), "ci_low": res["ci_low"].to_numpy(), "ci_high": res["ci_high"].to_numpy(),
            "n_outcomes": res["n_outcomes"].to_numpy(), "status": res["status"].to_numpy(),
        }))
    columns = ["exposure", "outcome", "lag_start", "lag_end", "ri", "ci_low", "ci_high", "n_outcomes", "status"]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)


def negative_control_pairs(drugs: Iterable[str], outcomes: Iterable[str],
                           known: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """All (drug, outcome) pairs except ``known`` ones: a starting list of negative controls to review."""
    known_set = set(map(tuple, known))
    return [(d, o) for d in drugs for o in outcomes if (d, o) not in known_set]
