"""A comparative cohort study from end to end: design -> covariates -> propensity score -> adjustment -> Cox ->
calibration with negative-control outcomes.

:func:`estimate_effect` is the array-level core (also used by the validity benchmark on simulated cohorts);
:func:`run_study` builds everything from an EventLog and a :class:`~pathways.studies.design.CohortDesign`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pathways.data import EventLog
from pathways.errors import PathwaysInputError
from pathways.studies.balance import (
    balance_table,
    effective_sample_size,
    equipoise,
    preference_score,
)
from pathways.studies.calibration import calibrate_estimates
from pathways.studies.covariates import Covariates, baseline_covariates
from pathways.studies.design import (
    CohortDesign,
    StudyPopulation,
    build_study_population,
    flowchart_by_arm,
)
from pathways.studies.outcome_models import cox_fit, kaplan_meier, poisson_rate_ratio
from pathways.studies.power import minimum_detectable_rr
from pathways.studies.propensity import (
    PropensityModel,
    fit_propensity,
    match,
    ps_weights,
    stratify,
    stratum_weights,
)

METHODS = ("match", "stratify", "iptw", "overlap", "none")


@dataclass
class AnalysisSettings:
    """How the propensity score adjusts the comparison.

    ``method``: ``match`` (greedy on the logit PS, up to ``max_ratio`` comparators within ``caliper`` SDs; Cox
    stratified by match set), ``stratify`` (``n_strata`` PS quantiles; Cox stratified by stratum), ``iptw`` or
    ``overlap`` (weighted Cox with robust variance), ``none`` (crude). ``Cs``, ``cv``, ``max_fit`` and ``seed``
    go to :func:`~pathways.studies.propensity.fit_propensity`; ``windows`` and ``rollup`` to the covariates.
    """

    method: str = "match"
    max_ratio: int = 1
    caliper: float = 0.2
    n_strata: int = 5
    Cs: int = 7
    cv: int = 3
    max_fit: int = 250_000
    windows: Sequence[float] = (365.0, 30.0)
    rollup: bool = True
    seed: int = 0
    alpha: float = 0.05

    def check(self) -> None:
        if self.method not in METHODS:
            raise PathwaysInputError(f"method: expected one of {METHODS}, got {self.method!r}")


_CRUDE = AnalysisSettings(method="none")


@dataclass(frozen=True)
class Adjustment:
    """Rows kept (positions into the study arrays), the Cox strata, Cox weights and the balance weights."""

    rows: np.ndarray
    strata: np.ndarray | None
    cox_weight: np.ndarray | None
    balance_weight: np.ndarray


def adjust(ps: np.ndarray, logit_ps: np.ndarray, treated: np.ndarray, settings: AnalysisSettings) -> Adjustment:
    """Apply the PS adjustment of ``settings`` to one study population."""
    settings.check()
    n = treated.size
    if settings.method == "match":
        m = match(logit_ps, treated, max_ratio=settings.max_ratio, caliper=settings.caliper)
        return Adjustment(m.matched, m.set_id, None, m.weight)
    if settings.method == "stratify":
        strata = stratify(ps, settings.n_strata)
        return Adjustment(np.arange(n), strata, None, stratum_weights(strata, treated))
    if settings.method in ("iptw", "overlap"):
        w = ps_weights(ps, treated, settings.method)
        return Adjustment(np.arange(n), None, w, w)
    return Adjustment(np.arange(n), None, None, np.ones(n))


def estimate_effect(time: np.ndarray, event: np.ndarray, treated: np.ndarray, adjustment: Adjustment,
                    alpha: float = 0.05) -> dict[str, float]:
    """Hazard ratio of target vs comparator on the adjusted population, with counts and the Poisson rate ratio."""
    rows = adjustment.rows
    t, e, z = time[rows], event[rows].astype(bool), treated[rows].astype(bool)
    row: dict[str, float] = {
        "n_target": int(z.sum()), "n_comparator": int((~z).sum()), "events_target": int(e[z].sum()),
        "events_comparator": int(e[~z].sum()), "person_time_target": float(t[z].sum()),
        "person_time_comparator": float(t[~z].sum()),
    }
    estimable = row["n_target"] > 0 and row["n_comparator"] > 0 and e.any()
    if estimable:
        fit = cox_fit(t, e, z.astype(float), weight=adjustment.cox_weight, strata=adjustment.strata)
        summary = fit.summary(["treated"], alpha=alpha).iloc[0]
        estimable = bool(np.isfinite(summary["se"]) and summary["se"] > 0)
    if estimable:
        row.update(hr=summary["hr"], log_hr=summary["coef"], se_log_hr=summary["se"], ci_low=summary["ci_low"],
                   ci_high=summary["ci_high"], p=summary["p"], status="estimated")
    else:
        row.update(hr=np.nan, log_hr=np.nan, se_log_hr=np.nan, ci_low=np.nan, ci_high=np.nan, p=np.nan,
                   status="no outcome in one arm" if e.any() else "no outcome")
    # balance_weight is aligned with rows: the ATT rate ratio for matching and strata, the weighted one otherwise.
    rate = poisson_rate_ratio(e.astype(float), t, z, weight=adjustment.balance_weight, alpha=alpha)
    row["irr"], row["irr_ci_low"], row["irr_ci_high"] = rate["rate_ratio"], rate["ci_low"], rate["ci_high"]
    row["mdrr"] = minimum_detectable_rr(row["n_target"], row["n_comparator"],
                                        row["events_target"] + row["events_comparator"], alpha=alpha)
    return row


@dataclass
class StudyResult:
    """Everything a study reports: estimates (one row per outcome), balance, flowchart, PS, KM, diagnostics."""

    estimates: pd.DataFrame
    balance: pd.DataFrame
    flowchart: pd.DataFrame
    propensity: pd.DataFrame
    km: pd.DataFrame
    diagnostics: dict[str, float] = field(default_factory=dict)
    null: object | None = None


def _km_by_arm(time: np.ndarray, event: np.ndarray, treated: np.ndarray, weight: np.ndarray) -> pd.DataFrame:
    frames = []
    for arm, mask in (("target", treated), ("comparator", ~treated)):
        km = kaplan_meier(time[mask], event[mask], weight[mask])
        km.insert(0, "arm", arm)
        frames.append(km)
    return pd.concat(frames, ignore_index=True)


def _population_for(log: EventLog, design: CohortDesign, outcome: Sequence[str],
                    flowchart: bool = False) -> StudyPopulation:
    other = CohortDesign(**{**design.__dict__, "outcome": list(outcome)})
    return build_study_population(log, other, flowchart=flowchart)


def run_study(log: EventLog, design: CohortDesign, settings: AnalysisSettings | None = None, *,
              negative_controls: Mapping[str, Sequence[str]] | None = None, outcome_name: str = "outcome",
              covariates: Covariates | None = None) -> StudyResult:
    """Run the study of ``design`` on ``log``: one estimate for the outcome and one per negative control.

    The propensity model is fitted once, on the new users before any outcome-specific exclusion (as OHDSI's
    CohortMethod does); each outcome then restricts to its own population (no prior outcome, time at risk) and is
    adjusted and estimated with the same settings. With at least five negative controls, every estimate is
    calibrated against their systematic-error null.
    """
    settings = settings or AnalysisSettings()
    settings.check()
    base = _population_for(log, CohortDesign(**{**design.__dict__, "outcome_lookback": 0.0}), design.outcome)
    frame = base.frame
    if frame["treated"].nunique() < 2:
        raise PathwaysInputError("design: the study population needs both target and comparator patients")
    if covariates is None:
        covariates = baseline_covariates(log, frame["patient"].to_numpy(), frame["index_time"].to_numpy(),
                                         windows=settings.windows, rollup=settings.rollup,
                                         exclude_codes=[*design.target, *design.comparator])
    treated_all = frame["treated"].to_numpy(bool)
    model: PropensityModel = fit_propensity(covariates.matrix, treated_all, Cs=settings.Cs, cv=settings.cv,
                                            max_fit=settings.max_fit, seed=settings.seed)
    ps_of = pd.Series(model.ps, index=frame["patient"].to_numpy())
    outcomes = {outcome_name: list(design.outcome), **{k: list(v) for k, v in (negative_controls or {}).items()}}
    rows, main = [], None
    for name, codes in outcomes.items():
        pop = _population_for(log, design, codes, flowchart=main is None)
        f = pop.frame
        ps = ps_of.reindex(f["patient"].to_numpy()).to_numpy()
        treated = f["treated"].to_numpy(bool)
        logit_ps = np.log(ps / (1 - ps))
        adj = adjust(ps, logit_ps, treated, settings)
        time, event = f["time"].to_numpy(float), f["event"].to_numpy(bool)
        row = estimate_effect(time, event, treated, adj, settings.alpha)
        crude = estimate_effect(time, event, treated, adjust(ps, logit_ps, treated, _CRUDE), settings.alpha)
        row.update({f"{k}_crude": crude[k] for k in ("hr", "ci_low", "ci_high")})
        rows.append({"outcome": name, "negative_control": name != outcome_name, **row})
        if main is None:
            main = (pop, adj, ps, treated)
    estimates = pd.DataFrame(rows)
    null = None
    controls = estimates["negative_control"].to_numpy(bool) & estimates["se_log_hr"].notna().to_numpy()
    if controls.sum() >= 5:
        estimates, null = calibrate_estimates(estimates, controls, alpha=settings.alpha)
    pop, adj, ps, treated = main
    position = pd.Series(np.arange(len(frame)), index=frame["patient"].to_numpy())
    cov_rows = position.reindex(pop.frame["patient"].to_numpy()).to_numpy()
    weight = np.zeros(len(pop.frame))
    weight[adj.rows] = adj.balance_weight
    balance = balance_table(covariates.matrix[cov_rows], treated, weight, list(covariates.names))
    km = _km_by_arm(pop.frame["time"].to_numpy(float)[adj.rows], pop.frame["event"].to_numpy(bool)[adj.rows],
                    treated[adj.rows], adj.balance_weight)
    propensity = pd.DataFrame({"treated": treated.astype(np.int8), "ps": ps,
                               "preference": preference_score(ps, treated), "kept": weight > 0})
    diagnostics = {
        "max_abs_smd_before": float(balance["smd_before"].abs().max()),
        "max_abs_smd_after": float(balance["smd_after"].abs().max()),
        "equipoise": equipoise(ps, treated), "ps_C": model.C, "n_covariates": int(covariates.matrix.shape[1]),
        "n_nonzero_ps_coef": int(np.count_nonzero(model.coef)),
        "ess_target": effective_sample_size(weight[treated]),
        "ess_comparator": effective_sample_size(weight[~treated]),
    }
    return StudyResult(estimates, balance, flowchart_by_arm(pop), propensity, km, diagnostics, null)


def cohort_study(log: EventLog, *, target: Sequence[str], comparator: Sequence[str], outcome: Sequence[str],
                 negative_controls: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
                 drug_categories: Sequence[str] | None = None, outcome_categories: Sequence[str] | None = None,
                 washout: float = 365.0, outcome_lookback: float = np.inf, time_at_risk: str = "on_treatment",
                 risk_start: float = 1.0, risk_end: float = 0.0, duration: float = 30.0, grace: float = 30.0,
                 censor_at_switch: bool | None = None, max_follow_up: float = np.inf,
                 study_end: float | str | None = None, method: str = "match", max_ratio: int = 1,
                 caliper: float = 0.2, n_strata: int = 5, Cs: int = 7, cv: int = 3, max_fit: int = 250_000,
                 windows: Sequence[float] = (365.0, 30.0), rollup: bool = True, seed: int = 0,
                 alpha: float = 0.05) -> StudyResult:
    """:func:`run_study` from flat settings (the ``study`` node of ``experiment=cohort_study``).

    The first block of keywords is :class:`~pathways.studies.design.CohortDesign`'s, the second
    :class:`AnalysisSettings`'. ``negative_controls``: a list of codes (each its own outcome) or a mapping
    name -> code set.
    """
    design = CohortDesign(list(target), list(comparator), list(outcome),
                          drug_categories=list(drug_categories) if drug_categories else None,
                          outcome_categories=list(outcome_categories) if outcome_categories else None,
                          washout=float(washout), outcome_lookback=float(outcome_lookback),
                          time_at_risk=time_at_risk, risk_start=float(risk_start), risk_end=float(risk_end),
                          duration=float(duration), grace=float(grace), censor_at_switch=censor_at_switch,
                          max_follow_up=float(max_follow_up), study_end=study_end)
    settings = AnalysisSettings(method=method, max_ratio=int(max_ratio), caliper=float(caliper),
                                n_strata=int(n_strata), Cs=int(Cs), cv=int(cv), max_fit=int(max_fit),
                                windows=tuple(float(w) for w in windows), rollup=bool(rollup), seed=int(seed),
                                alpha=float(alpha))
    if negative_controls is None:
        controls = None
    elif isinstance(negative_controls, Mapping):
        controls = {str(k): list(v) for k, v in negative_controls.items()}
    else:
        controls = {str(c): [str(c)] for c in negative_controls}
    return run_study(log, design, settings, negative_controls=controls)


__all__ = [
    "METHODS",
    "Adjustment",
    "AnalysisSettings",
    "StudyResult",
    "adjust",
    "cohort_study",
    "estimate_effect",
    "run_study",
]
