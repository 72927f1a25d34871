"""New-user, active-comparator cohort design (OHDSI CohortMethod's): who enters, when, and for how long.

Each patient's index date is the first observed dispensation of the target or the comparator drug. Patients
enter the study when (1) they start exactly one of the two on that day, (2) they were observed for at least the
wash-out before it (so the first observed exposure is a new use), (3) they had no outcome in the look-back, and
(4) they have a positive time at risk. Time at risk starts ``risk_start`` days after index and ends at the first
of: end of data (observation end), death, study end, the end of ``max_follow_up``; on treatment also at the end of
the index drug's exposure era (purchases of ``duration`` days merged across ``grace`` days, + ``risk_end``) and at
a switch to the other drug. Everything is vectorised over patients.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pathways.cohort import Cohort, Flowchart, event_mask, limited_exposures
from pathways.cohort.cohort import derived_events
from pathways.cohort.followup import to_time
from pathways.data import EventLog
from pathways.errors import PathwaysInputError

TIME_AT_RISK = ("on_treatment", "itt")


@dataclass
class CohortDesign:
    """Settings of a new-user, active-comparator cohort study.

    Parameters
    ----------
    target, comparator : code sets (prefixes, e.g. ATC classes) of the two drugs.
    outcome : code set of the outcome.
    drug_categories : event categories holding dispensations (None: every event).
    outcome_categories : event categories holding the outcome (None: every event).
    washout : days observed before index with no use of either drug (new users); also the prior observation.
    outcome_lookback : days before index with no outcome (``np.inf``: never before).
    time_at_risk : ``on_treatment`` or ``itt`` (intention to treat).
    risk_start : lag, in days after index, before time at risk starts (e.g. 1: the index day is excluded).
    risk_end : days added after the end of the exposure era (on treatment).
    duration, grace : days covered by one dispensation, and the largest gap bridged between two.
    censor_at_switch : end time at risk at the first use of the other drug (on treatment; ITT ignores switches
        unless set explicitly).
    max_follow_up : cap on time at risk (days).
    study_end : date or time after which nothing is followed.
    """

    target: list[str]
    comparator: list[str]
    outcome: list[str]
    drug_categories: list[str] | None = None
    outcome_categories: list[str] | None = None
    washout: float = 365.0
    outcome_lookback: float = np.inf
    time_at_risk: str = "on_treatment"
    risk_start: float = 1.0
    risk_end: float = 0.0
    duration: float = 30.0
    grace: float = 30.0
    censor_at_switch: bool | None = None
    max_follow_up: float = np.inf
    study_end: float | str | None = None
    names: tuple[str, str] = field(default=("target", "comparator"))

    def check(self) -> None:
        if self.time_at_risk not in TIME_AT_RISK:
            raise PathwaysInputError(f"time_at_risk: expected one of {TIME_AT_RISK}, got {self.time_at_risk!r}")
        for name in ("washout", "outcome_lookback", "duration", "grace", "risk_end", "max_follow_up"):
            if not getattr(self, name) >= 0:
                raise PathwaysInputError(f"{name}: expected a value >= 0, got {getattr(self, name)!r}")
        for name in ("target", "comparator", "outcome"):
            if not list(getattr(self, name)):
                raise PathwaysInputError(f"{name}: empty code set")

    @property
    def switch_censoring(self) -> bool:
        return self.time_at_risk == "on_treatment" if self.censor_at_switch is None else bool(self.censor_at_switch)


@dataclass(frozen=True)
class StudyPopulation:
    """One row per patient in the study: ``patient`` (population index), ``treated`` (1 target, 0 comparator),
    ``index_time``, ``tar_start``, ``tar_end``, ``time`` (days at risk until outcome or censoring), ``event``
    (outcome in time at risk), ``censor_reason``; and the attrition ``flowchart``."""

    frame: pd.DataFrame
    flowchart: Flowchart | None

    @property
    def treated(self) -> np.ndarray:
        return self.frame["treated"].to_numpy(dtype=bool)

    def __len__(self) -> int:
        return len(self.frame)


def _first_use(log: EventLog, codes: list[str], categories: list[str] | None) -> np.ndarray:
    """Time of each patient's first event of the code set (NaN: none); events are in (patient, time) order."""
    rows = np.flatnonzero(event_mask(log, codes, categories=categories))
    patient = log.patient[rows]
    first = np.ones(rows.size, dtype=bool)
    first[1:] = patient[1:] != patient[:-1]
    out = np.full(log.n_patients, np.nan)
    out[patient[first]] = log.time[rows[first]]
    return out


def _step(log: EventLog, name: str, keep: np.ndarray, index_time: np.ndarray, description: str) -> Cohort:
    """A flowchart cohort: the patients of ``keep`` with their index date as their only event."""
    subjects = np.flatnonzero(keep)
    return Cohort(name, subjects, derived_events(log, subjects, index_time[subjects], "index"), description)


def _era_end(log: EventLog, design: CohortDesign, index_time: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """End of the exposure era that starts at index, per population patient (on-treatment time at risk)."""
    target_set, comparator_set = tuple(design.target), tuple(design.comparator)

    def group(code: str) -> str:
        return "target" if code.startswith(target_set) else "comparator" if code.startswith(comparator_set) else ""

    exposed = limited_exposures(log, codes=[*design.target, *design.comparator], categories=design.drug_categories,
                                duration=design.duration, grace=design.grace, rollup=group)
    ev = exposed.events
    code = ev.code_strings()
    wanted = np.where(treated[ev.patient], "target", "comparator")
    hit = (code == wanted) & (ev.time == index_time[ev.patient])
    end = np.full(log.n_patients, np.nan)
    end[ev.patient[hit]] = ev.end[hit]
    return end


def build_study_population(log: EventLog, design: CohortDesign, *, flowchart: bool = True) -> StudyPopulation:
    """Target and comparator new users with their time at risk and outcome, and the attrition flowchart
    (``flowchart=False`` skips it: negative-control outcomes need the population only).

    Examples
    --------
    >>> events = pd.DataFrame({"patient_id": [1, 1, 2, 2, 3, 3], "time": [0., 400., 0., 410., 0., 420.],
    ...                        "code": ["Z00", "A01", "Z00", "B01", "Z00", "A01"]})
    >>> patients = pd.DataFrame({"patient_id": [1, 2, 3], "start": [0.] * 3, "end": [900.] * 3})
    >>> log = EventLog.from_pandas(events, patients)
    >>> pop = build_study_population(log, CohortDesign(["A"], ["B"], ["I21"]))
    >>> pop.frame["treated"].tolist(), pop.frame["tar_end"].tolist()
    ([1, 0, 1], [430.0, 440.0, 450.0])
    """
    design.check()
    n = log.n_patients
    pts = log.patients
    t_first = _first_use(log, design.target, design.drug_categories)
    c_first = _first_use(log, design.comparator, design.drug_categories)
    index_time = np.fmin(t_first, c_first)
    treated = np.where(np.isnan(c_first), True, t_first < c_first)
    obs_start, obs_end = pts["start"].to_numpy(float), pts["end"].to_numpy(float)
    exposed = np.isfinite(index_time)
    single = exposed & ~(t_first == c_first)
    new_user = single & (index_time - obs_start >= design.washout)
    o_rows = event_mask(log, design.outcome, categories=design.outcome_categories)
    o_pat, o_time = log.patient[o_rows], log.time[o_rows]
    ref = index_time[o_pat]
    prior = (o_time < ref) & (o_time >= ref - design.outcome_lookback)
    no_prior = np.ones(n, dtype=bool)
    no_prior[o_pat[prior]] = False
    no_prior &= new_user

    start = index_time + design.risk_start
    ends = {"observation_end": obs_end, "death": pts["death"].to_numpy(float),
            "study_end": np.full(n, to_time(design.study_end, log, "study_end")),
            "max_follow_up": index_time + design.max_follow_up}
    if design.time_at_risk == "on_treatment":
        ends["exposure_end"] = _era_end(log, design, index_time, treated) + design.risk_end
    if design.switch_censoring:
        ends["switch"] = np.where(treated, c_first, t_first)
    names = list(ends)
    stacked = np.stack([np.nan_to_num(ends[k], nan=np.inf) for k in names], axis=1)
    which = np.argmin(stacked, axis=1)
    end = stacked[np.arange(n), which]
    at_risk = no_prior & (end > start)

    # First outcome inside [start, end]: outcome rows are in (patient, time) order, so the first hit wins.
    inside = at_risk[o_pat] & (o_time >= start[o_pat]) & (o_time <= end[o_pat])
    out_time = np.full(n, np.nan)
    hit_pat, hit_time = o_pat[inside], o_time[inside]
    first = np.ones(hit_pat.size, dtype=bool)
    first[1:] = hit_pat[1:] != hit_pat[:-1]
    out_time[hit_pat[first]] = hit_time[first]
    event = np.isfinite(out_time)
    stop = np.where(event, out_time, end)

    keep = np.flatnonzero(at_risk)
    reason = np.asarray(names, dtype=object)[which]
    reason[event] = "outcome"
    frame = pd.DataFrame({
        "patient": keep, "treated": treated[keep].astype(np.int8), "index_time": index_time[keep],
        "tar_start": start[keep], "tar_end": end[keep], "time": stop[keep] - start[keep],
        "event": event[keep].astype(np.int8), "censor_reason": pd.Categorical(reason[keep],
                                                                               categories=[*names, "outcome"]),
    })
    if not flowchart:
        return StudyPopulation(frame, None)
    steps = [
        _step(log, "population", np.ones(n, dtype=bool), np.nan_to_num(index_time), "every patient"),
        _step(log, "exposed", exposed, index_time, "a dispensation of the target or the comparator"),
        _step(log, "one drug at index", single, index_time, "not both drugs on the index day"),
        _step(log, "new users", new_user, index_time, f">= {design.washout:g} days observed before index"),
        _step(log, "no prior outcome", no_prior, index_time, f"no outcome in {design.outcome_lookback:g} days "
                                                             f"before index"),
        _step(log, "time at risk", at_risk, index_time, f"{design.time_at_risk} time at risk > 0"),
    ]
    return StudyPopulation(frame, Flowchart(steps))


def flowchart_by_arm(population: StudyPopulation) -> pd.DataFrame:
    """The attrition flowchart with the target and comparator counts of the final step added."""
    if population.flowchart is None:
        raise PathwaysInputError("population: built with flowchart=False")
    frame = population.flowchart.to_frame()
    treated = population.treated
    frame["n_target"] = pd.array([pd.NA] * (len(frame) - 1) + [int(treated.sum())], dtype="Int64")
    frame["n_comparator"] = pd.array([pd.NA] * (len(frame) - 1) + [int((~treated).sum())], dtype="Int64")
    return frame


__all__ = ["TIME_AT_RISK", "CohortDesign", "StudyPopulation", "build_study_population", "flowchart_by_arm"]
