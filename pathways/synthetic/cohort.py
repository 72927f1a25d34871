"""SNDS-like synthetic cohorts with a known ground truth.

:func:`simulate_cohort` draws patients (birth, sex, observation window with administrative censoring and deaths)
and their care pathway: drug dispensations (ATC), diagnoses (ICD-10), medical acts (CCAM) and hospital stays, driven
by a **known sparse multivariate Hawkes process**, plus **planted drug -> adverse-event effects** with lagged
relative-incidence step curves, plus an optional fraction of **anomalous patients**. Everything that generated the
data comes back in a :class:`Truth` aligned with the log's vocabulary, so every model can be checked against it.

Generative model (time in days)
-------------------------------
* Intensity of code i for patient p::

      lambda_pi(t) = mu_i * s_p * m_pi  +  sum_{events (t_k, j) of p, t_k < t} phi_ij(t - t_k)

  with ``s_p`` a gamma frailty (mean 1, variance ``frailty``; 1 when ``frailty=0``), ``m_pi`` the anomaly
  multiplier (``anomaly_strength`` on the anomalous drug class of "frequency" anomalies, else 1).
* ``phi_ij`` between drugs, diagnoses, acts and stays: exponential (or sum-of-exponential) kernels on a sparse
  graph: every diagnosis repeats itself, every drug refills itself (decay ~ 1/30 days) and is started by one
  indication diagnosis, acts follow a diagnosis, hospital stays follow acts and severe diagnoses.
* Adverse-event outcomes have no exponential parent and excite nothing: their intensity is exactly
  ``mu_i s_p (1 + sum_steps (RI - 1) N_step(t))`` where ``N_step(t)`` counts the dispensations of a risky drug
  whose lag window ``[lag_start, lag_end)`` contains ``t``. The step kernel of height ``mu_i s_p (RI - 1)`` makes
  the relative incidence of an isolated exposure exactly ``RI`` (overlapping exposures add).
* Stays get a length of stay (``end``); each dispensation gets a number of boxes (``value``) and a prescriber id
  (extra column ``prescriber``; -1 on non-drug events). Deaths follow a Gompertz hazard in age (independent of
  the pathway) and end the observation window with a ``DEATH`` event.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from pathways.data.dates import EPOCH
from pathways.data.eventlog import EventLog
from pathways.data.order import event_order
from pathways.errors import PathwaysInputError
from pathways.synthetic.codes import (
    ACTS, ANOMALY_KINDS, DAYS_PER_YEAR, DEATH_CODE, DIAGNOSES, DRUGS, MISUSE_PRONE, OUTCOMES, STAYS, Catalogue,
)
from pathways.synthetic.hawkes import simulate_hawkes
from pathways.synthetic.planted import adverse_events, draw_anomalies, draw_effects, prescribers
from pathways.synthetic.truth import Truth, make_truth
from pathways.utils import SeedLike, rng


# ----------------------------------------------------------------------------------------------------------------
# public entry point
# ----------------------------------------------------------------------------------------------------------------
def simulate_cohort(
    n_patients: int = 2000,
    *,
    seed: SeedLike = 0,
    n_drugs: int = 20,
    n_diagnoses: int = 16,
    n_acts: int = 8,
    n_outcomes: int = 6,
    n_strong: int = 3,
    n_weak: int = 3,
    kernel: str = "exp",
    max_branching: float = 0.8,
    rate_scale: float = 1.0,
    follow_up_years: tuple[float, float] = (1.0, 5.0),
    study_start: str = "2015-01-01",
    entry_years: float = 2.0,
    frailty: float = 0.0,
    mortality: float = 1.0,
    anomaly_fraction: float = 0.0,
    anomaly_strength: float = 8.0,
    anomaly_kinds: Sequence[str] = ANOMALY_KINDS,
) -> tuple[EventLog, Truth]:
    """Simulate an SNDS-like cohort and return it with its ground truth.

    Parameters
    ----------
    n_patients : number of patients (each has an observation window; some have no event).
    seed : int or Generator; the same seed gives the same cohort.
    n_drugs, n_diagnoses, n_acts, n_outcomes : how many codes of each kind to use (at most 40, 24, 12, 12),
        taken from embedded lists of real ATC, ICD-10 and CCAM codes.
    n_strong, n_weak : drugs with a planted effect on one outcome: strong (two steps, RI 2.5-4 on [0, L) then
        1.3-2 on [L, 3L), L in {14, 30} days) or weak and rare (one step RI 1.3-1.6 on [0, 60), baseline / 5). The
        other drugs are null.
    kernel : ``"exp"`` (one decay per edge) or ``"sumexp"`` (decays 1/3, 1/30, 1/180 per day, random weights).
    max_branching : largest branching ratio of a code on itself (the spectral radius of the exponential part).
    rate_scale : multiplies every baseline (more or fewer events per patient).
    follow_up_years : range of the administrative follow-up (uniform), before deaths.
    study_start : date of the first possible entry; times are days since 1970-01-01.
    entry_years : entries are uniform over this many years after ``study_start``.
    frailty : variance of the gamma frailty multiplying each patient's baselines (0 = homogeneous). A frailty
        confounds between-patient comparisons (frail patients get more drugs and more adverse events) but not
        self-controlled ones.
    mortality : multiplier of the Gompertz death hazard (0 = nobody dies).
    anomaly_fraction : share of anomalous patients; anomaly_strength : baseline multiplier of the misuse-prone
        drug class for "frequency" anomalies; anomaly_kinds : which kinds to draw from ("frequency": abnormal
        dispensation frequency of misuse-prone drugs; "prescribers": dispensations from many prescribers).

    Returns
    -------
    (EventLog, Truth)

    Examples
    --------
    >>> log, truth = simulate_cohort(200, seed=0)
    >>> log.n_patients, bool(np.array_equal(truth.codes, log.vocab.codes))
    (200, True)
    """
    gen = rng(seed)
    _check_params(n_patients, n_drugs, n_diagnoses, n_acts, n_outcomes, n_strong, n_weak, kernel, max_branching,
                  rate_scale, follow_up_years, entry_years, frailty, mortality, anomaly_fraction, anomaly_strength,
                  anomaly_kinds)
    # Model parameters come from their own stream: one seed gives the same truth whatever the cohort size.
    param_gen, gen = gen.spawn(2)
    codes = Catalogue(n_drugs, n_diagnoses, n_acts, n_outcomes)
    mu = _draw_baselines(param_gen, codes, rate_scale)
    exp_adj, decays = _draw_excitation(param_gen, codes, kernel, max_branching)
    effects = draw_effects(param_gen, codes, n_strong, n_weak)
    patients = _draw_patients(gen, n_patients, study_start, entry_years, follow_up_years, mortality)
    mu[codes.index(effects.loc[effects["strength"] == "weak", "drug"].unique())] /= 5.0  # weak signals are rare
    scale = gen.gamma(1.0 / frailty, frailty, n_patients) if frailty > 0 else np.ones(n_patients)
    kinds = draw_anomalies(gen, n_patients, anomaly_fraction, anomaly_kinds)
    anomaly_codes = [c for c in codes.codes[codes.drugs] if c in MISUSE_PRONE]
    if anomaly_fraction > 0 and "frequency" in anomaly_kinds and not anomaly_codes:
        raise PathwaysInputError(f"anomaly_kinds: 'frequency' anomalies need a misuse-prone drug among the first "
                                 f"n_drugs={n_drugs} drugs (use n_drugs >= 3)")
    baseline = scale[:, None] * mu[None, :]
    if anomaly_codes:
        baseline[np.ix_(np.flatnonzero(kinds == "frequency"), codes.index(anomaly_codes))] *= anomaly_strength

    start, end = patients["start"].to_numpy(), patients["end"].to_numpy()
    seq = simulate_hawkes(baseline, kernel_adjacency_for(exp_adj, kernel), start=start, end=end,
                          decays=decays, kernel=kernel, seed=gen)
    patient, time, code = seq.sequence_ids, seq.times, seq.marks
    ae_patient, ae_time, ae_code = adverse_events(gen, patient, time, code, effects, codes, mu, scale, end)
    dead = np.flatnonzero(patients["death"].notna().to_numpy())
    patient, time, code = _merge_sorted(
        (patient, time, code),
        (np.concatenate([ae_patient, dead]), np.concatenate([ae_time, end[dead]]),
         np.concatenate([ae_code, np.full(dead.size, codes.death, dtype=np.int64)])),
    )
    log = _assemble(gen, codes, patients, patient, time, code, kinds)
    truth = make_truth(codes, mu, exp_adj, kernel, decays, effects, scale, kinds, anomaly_codes, anomaly_strength)
    truth.params = {"n_patients": n_patients, "kernel": kernel, "frailty": frailty, "rate_scale": rate_scale,
                    "anomaly_fraction": anomaly_fraction, "study_start": study_start}
    return log, truth


def kernel_adjacency_for(exp_adj: np.ndarray, kernel: str) -> np.ndarray:
    """Adjacency argument of :func:`simulate_hawkes`: (D, D) for ``"exp"``, (K, D, D) for ``"sumexp"``."""
    return exp_adj[0] if kernel == "exp" else exp_adj


# ----------------------------------------------------------------------------------------------------------------
# pieces
def _draw_patients(gen: np.random.Generator, n: int, study_start: str, entry_years: float,
                   follow_up_years: tuple[float, float], mortality: float) -> pd.DataFrame:
    """Birth, sex, entry, administrative end and Gompertz death of every patient (days since 1970-01-01)."""
    first = (pd.Timestamp(study_start) - EPOCH) / pd.Timedelta(days=1)
    start = first + gen.uniform(0.0, entry_years * DAYS_PER_YEAR, n)
    age = np.clip(gen.normal(55.0, 18.0, n), 18.0, 95.0)
    male = gen.random(n) < 0.48
    planned = start + gen.uniform(*follow_up_years, n) * DAYS_PER_YEAR
    # Gompertz hazard h(a) = h0 exp(b (a - 60)) per year (0.8 %/year at 60, x1.4 for men); inverse-cdf draw.
    h0, b = 0.008 * mortality * np.where(male, 1.4, 1.0), 0.09
    rate = h0 * np.exp(b * (age - 60.0))
    with np.errstate(divide="ignore", over="ignore"):
        years_to_death = np.log1p(b * gen.exponential(1.0, n) / np.where(rate > 0, rate, np.nan)) / b
    death_time = start + np.nan_to_num(years_to_death, nan=np.inf) * DAYS_PER_YEAR
    dies = death_time < planned
    return pd.DataFrame({
        "patient_id": np.char.add("P", np.char.zfill(np.arange(n).astype(str), 7)).astype(object),
        "birth": np.floor(start - age * DAYS_PER_YEAR),
        "sex": pd.Categorical(np.where(male, "M", "F"), categories=["F", "M"]),
        "death": np.where(dies, death_time, np.nan),
        "start": start,
        "end": np.where(dies, death_time, planned),
    })


def _draw_baselines(gen: np.random.Generator, codes: Catalogue, rate_scale: float) -> np.ndarray:
    """Population baseline per day of every code (events per year / 365.25)."""
    per_year = np.zeros(len(codes))
    per_year[codes.drugs] = gen.uniform(0.1, 0.6, codes.drugs.size)
    per_year[codes.diagnoses] = gen.uniform(0.2, 1.0, codes.diagnoses.size)
    per_year[codes.outcomes] = gen.uniform(0.1, 0.3, codes.outcomes.size)
    per_year[codes.acts] = gen.uniform(0.05, 0.3, codes.acts.size)
    per_year[codes.stays] = gen.uniform(0.02, 0.08, codes.stays.size)
    return per_year * rate_scale / DAYS_PER_YEAR


def _draw_excitation(gen: np.random.Generator, codes: Catalogue, kernel: str,
                     max_branching: float) -> tuple[np.ndarray, np.ndarray]:
    """Sparse exponential excitation graph: (K, D, D) L1 norms and decays ((D, D) for exp, (K,) for sumexp)."""
    d = len(codes)
    adj = np.zeros((d, d))
    decay = np.full((d, d), 1.0 / 30.0)
    # Diagonal terms: repeated diagnoses (a visit brings the next), refills of chronic drugs.
    adj[codes.diagnoses, codes.diagnoses] = gen.uniform(0.2, 0.5, codes.diagnoses.size) * max_branching
    decay[codes.diagnoses, codes.diagnoses] = 1.0 / 90.0
    adj[codes.drugs, codes.drugs] = gen.uniform(0.5, 1.0, codes.drugs.size) * max_branching
    decay[codes.drugs, codes.drugs] = 1.0 / 30.0
    # One indication per drug; acts follow a diagnosis; stays follow acts and severe diagnoses.
    indication = gen.choice(codes.diagnoses, size=codes.drugs.size)
    adj[codes.drugs, indication] = gen.uniform(0.2, 0.6, codes.drugs.size)
    decay[codes.drugs, indication] = 1.0 / 7.0
    if codes.acts.size:
        cause = gen.choice(codes.diagnoses, size=codes.acts.size)
        adj[codes.acts, cause] = gen.uniform(0.1, 0.4, codes.acts.size)
        decay[codes.acts, cause] = 1.0 / 14.0
        stay_of_act = gen.choice(codes.stays, size=codes.acts.size)
        adj[stay_of_act, codes.acts] = gen.uniform(0.1, 0.5, codes.acts.size)
        decay[stay_of_act, codes.acts] = 1.0
    severe = gen.choice(codes.diagnoses, size=min(3, codes.diagnoses.size), replace=False)
    adj[codes.stays[0], severe] = gen.uniform(0.05, 0.2, severe.size)
    decay[codes.stays[0], severe] = 1.0 / 3.0
    if kernel == "exp":
        return adj[None], decay
    sum_decays = np.array([1.0 / 3.0, 1.0 / 30.0, 1.0 / 180.0])
    weights = gen.dirichlet(np.ones(sum_decays.size), size=(d, d)).transpose(2, 0, 1)
    return weights * adj[None], sum_decays



def _merge_sorted(base: tuple[np.ndarray, np.ndarray, np.ndarray],
                  extra: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Insert a few (patient, time, code) events into arrays already sorted by (patient, time, code).

    Sorting the few extra events and inserting them by binary search on a (patient, time) key spares the full sort
    of every event; ``EventLog.from_arrays`` still checks the order (and sorts if a tie broke it).
    """
    order = event_order(*extra)
    if order is not None:
        extra = tuple(a[order] for a in extra)
    t0 = min(base[1].min(initial=np.inf), extra[1].min(initial=np.inf))
    span = max(base[1].max(initial=-np.inf), extra[1].max(initial=-np.inf)) - t0 + 1.0
    if not np.isfinite(span):
        return tuple(np.concatenate([b, e]) for b, e in zip(base, extra))
    pos = np.searchsorted(base[0] * span + (base[1] - t0), extra[0] * span + (extra[1] - t0), side="right")
    return tuple(np.insert(b, pos, e) for b, e in zip(base, extra))


def _assemble(gen: np.random.Generator, codes: Catalogue, patients: pd.DataFrame, patient: np.ndarray,
              time: np.ndarray, code: np.ndarray, kinds: np.ndarray) -> EventLog:
    """Spans for stays, boxes and prescribers for dispensations, categories; one sort inside ``from_arrays``."""
    n = time.size
    window_end = patients["end"].to_numpy()[patient]
    is_stay = np.isin(code, codes.stays)
    end = np.full(n, np.nan)
    end[is_stay] = np.minimum(time[is_stay] + 1.0 + gen.poisson(4.0, int(is_stay.sum())), window_end[is_stay])
    is_drug = np.isin(code, codes.drugs)
    value = np.full(n, np.nan)
    value[is_drug] = 1.0 + gen.poisson(0.3, int(is_drug.sum()))
    prescriber = np.full(n, -1, dtype=np.int64)
    prescriber[is_drug] = prescribers(gen, patient[is_drug], kinds, len(patients))
    cat_names = np.array(sorted(set(codes.categories)), dtype=object)
    cat_index = np.searchsorted(cat_names, codes.categories)
    category = pd.Categorical.from_codes(cat_index[code], categories=cat_names)
    return EventLog.from_arrays(patient, time, code, codes.vocab, patients, end=end, value=value, category=category,
                                time_unit="days", origin="1970-01-01", extras={"prescriber": prescriber})


def _check_params(n_patients: int, n_drugs: int, n_diagnoses: int, n_acts: int, n_outcomes: int, n_strong: int,
                  n_weak: int, kernel: str, max_branching: float, rate_scale: float,
                  follow_up_years: tuple[float, float], entry_years: float, frailty: float, mortality: float,
                  anomaly_fraction: float, anomaly_strength: float, anomaly_kinds: Sequence[str]) -> None:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise PathwaysInputError(message)

    def is_int(x: Any) -> bool:
        return isinstance(x, (int, np.integer)) and not isinstance(x, bool)

    need(is_int(n_patients) and n_patients >= 1, f"n_patients: expected an integer >= 1, got {n_patients!r}")
    for name, value, top in (("n_drugs", n_drugs, len(DRUGS)), ("n_diagnoses", n_diagnoses, len(DIAGNOSES)),
                             ("n_acts", n_acts, len(ACTS)), ("n_outcomes", n_outcomes, len(OUTCOMES))):
        need(is_int(value) and 1 <= value <= top, f"{name}: expected an integer in [1, {top}], got {value!r}")
    need(is_int(n_strong) and is_int(n_weak) and n_strong >= 0 and n_weak >= 0 and n_strong + n_weak <= n_drugs,
         f"n_strong + n_weak: expected non-negative integers summing to at most n_drugs={n_drugs}, "
         f"got {n_strong!r} + {n_weak!r}")
    need(kernel in ("exp", "sumexp"), f"kernel: expected 'exp' or 'sumexp', got {kernel!r}")
    need(0.0 <= max_branching < 1.0, f"max_branching: expected a number in [0, 1), got {max_branching!r}")
    need(rate_scale > 0 and np.isfinite(rate_scale), f"rate_scale: expected a positive number, got {rate_scale!r}")
    lo, hi = follow_up_years
    need(0 < lo <= hi and np.isfinite(hi), f"follow_up_years: expected 0 < low <= high, got {follow_up_years!r}")
    need(entry_years >= 0, f"entry_years: expected >= 0, got {entry_years!r}")
    need(frailty >= 0 and np.isfinite(frailty), f"frailty: expected a variance >= 0, got {frailty!r}")
    need(mortality >= 0 and np.isfinite(mortality), f"mortality: expected >= 0, got {mortality!r}")
    need(0.0 <= anomaly_fraction <= 1.0, f"anomaly_fraction: expected a share in [0, 1], got {anomaly_fraction!r}")
    need(anomaly_strength >= 1.0, f"anomaly_strength: expected a multiplier >= 1, got {anomaly_strength!r}")
    bad = [k for k in anomaly_kinds if k not in ANOMALY_KINDS]
    need(len(anomaly_kinds) > 0 and not bad, f"anomaly_kinds: expected a non-empty subset of {ANOMALY_KINDS}, "
                                             f"got {list(anomaly_kinds)!r}")


__all__ = ["ACTS", "DIAGNOSES", "DRUGS", "OUTCOMES", "STAYS", "DEATH_CODE", "MISUSE_PRONE", "Truth",
           "simulate_cohort"]
