"""Simulated comparative cohort studies with a planted hazard ratio and confounding by indication.

Every patient starts the target (``C09AA02``) or the comparator (``C08CA01``) drug on their index date. Older
patients and those with more comorbidities (five ICD-10 conditions recorded in the year before index) are more
likely to get the target, and they also have a higher hazard of the outcome (``I21``) and of every negative-control
outcome: the crude comparison is confounded, the adjusted one is not. The target multiplies the outcome hazard
by ``hr`` and leaves the negative controls alone. Background codes (ICD-10 and ATC) add noise covariates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pathways.data import EventLog, Vocabulary
from pathways.utils import rng as as_rng

TARGET, COMPARATOR, OUTCOME = "C09AA02", "C08CA01", "I21"
COMORBIDITIES = ("I50", "E119", "N18", "I48", "J44")
NEGATIVE_CONTROLS = tuple(f"L{20 + j:02d}" for j in range(30))


@dataclass(frozen=True)
class SimulatedStudy:
    """The simulated EventLog, its planted hazard ratio, and the code sets of the study."""

    log: EventLog
    hr: float
    target: str = TARGET
    comparator: str = COMPARATOR
    outcome: str = OUTCOME
    negative_controls: tuple[str, ...] = NEGATIVE_CONTROLS


def simulate_study(n_patients: int = 2000, *, hr: float = 1.5, seed: int | np.random.Generator | None = 0,
                   n_noise_codes: int = 60, n_negative_controls: int = 10, confounding: float = 1.0,
                   base_rate: float = 2e-4, persistence_days: float = 400.0) -> SimulatedStudy:
    """Simulate one new-user cohort study (days; index dates after 400 to 800 days of observation).

    Treatment: logit P(target) = confounding x (0.05 (age - 60) + 0.6 (comorbidities - 1)).
    Outcome hazard: base_rate x exp(0.04 (age - 60) + 0.5 comorbidities) x hr^target, from index + 1 day to the
    end of data; negative controls share the confounders' effects with hr 1. The index drug is dispensed every
    30 days for an exponential persistence of mean ``persistence_days``.

    Examples
    --------
    >>> study = simulate_study(200, seed=1)
    >>> study.log.n_patients, OUTCOME in study.log.vocab
    (200, True)
    """
    gen = as_rng(seed)
    n = int(n_patients)
    age = gen.uniform(35, 85, n)
    female = gen.random(n) < 0.5
    index = gen.uniform(400, 800, n)
    end = index + gen.uniform(60, 1500, n)
    comorb = gen.random((n, len(COMORBIDITIES))) < 1 / (1 + np.exp(-(-1.8 + 0.04 * (age[:, None] - 60))))
    n_comorb = comorb.sum(1)
    treated = gen.random(n) < 1 / (1 + np.exp(-confounding * (0.05 * (age - 60) + 0.6 * (n_comorb - 1))))
    noise = [f"R{k:02d}" for k in range(n_noise_codes // 2)] + [f"N0{k // 26}{chr(65 + k % 26)}"
                                                               for k in range(n_noise_codes - n_noise_codes // 2)]
    nc = list(NEGATIVE_CONTROLS[:n_negative_controls])
    codes = [TARGET, COMPARATOR, OUTCOME, *COMORBIDITIES, *noise, *nc]
    code_id = {c: i for i, c in enumerate(codes)}
    pats, times, cids = [], [], []
    # Comorbidities: one record in the year before index.
    p, k = np.nonzero(comorb)
    pats.append(p), times.append(index[p] - gen.uniform(1, 365, p.size))
    cids.append(np.array([code_id[c] for c in COMORBIDITIES])[k])
    # Background noise codes: Poisson counts, prevalence varying by code, over the whole observation.
    counts = gen.poisson(np.geomspace(0.02, 0.6, len(noise))[None, :] * np.ones((n, 1)))
    p, k = np.nonzero(counts)
    reps = counts[p, k]
    p, k = np.repeat(p, reps), np.repeat(k, reps)
    pats.append(p), times.append(gen.uniform(0, end[p])), cids.append(code_id[noise[0]] + k)
    # Dispensations every 30 days while persistent.
    n_disp = 1 + np.floor(gen.exponential(persistence_days, n) / 30).astype(np.int64)
    p = np.repeat(np.arange(n), n_disp)
    step = np.arange(p.size) - np.repeat(np.cumsum(n_disp) - n_disp, n_disp)
    t = index[p] + 30.0 * step
    ok = t <= end[p]
    pats.append(p[ok]), times.append(t[ok])
    cids.append(np.where(treated[p[ok]], code_id[TARGET], code_id[COMPARATOR]))
    # Outcomes (first occurrence only) from index + 1 to end of data.
    risk = base_rate * np.exp(0.04 * (age - 60) + 0.5 * n_comorb)
    for code, effect in [(OUTCOME, hr), *[(c, 1.0) for c in nc]]:
        wait = gen.exponential(1 / (risk * np.where(treated, effect, 1.0)))
        hit = index + 1 + wait < end
        pats.append(np.flatnonzero(hit)), times.append((index + 1 + wait)[hit])
        cids.append(np.full(int(hit.sum()), code_id[code]))
    patient, time, code = (np.concatenate(a) for a in (pats, times, cids))
    time = np.round(time)  # whole days, as in claims
    patients = pd.DataFrame({"patient_id": np.arange(n), "birth": np.round(index - age * 365.25),
                             "sex": np.where(female, "F", "M"), "start": np.zeros(n), "end": np.ceil(end)})
    order = np.lexsort((code, time, patient))
    log = EventLog.from_arrays(patient[order], time[order], code[order], Vocabulary(codes), patients)
    return SimulatedStudy(log, float(hr), negative_controls=tuple(nc))


def simulated_study_log(n_patients: int = 4000, *, hr: float = 1.5, seed: int = 0,
                        n_negative_controls: int = 10) -> EventLog:
    """The EventLog of :func:`simulate_study` alone (a ``data`` target for ``experiment=cohort_study``)."""
    return simulate_study(n_patients, hr=hr, seed=seed, n_negative_controls=n_negative_controls).log


__all__ = [
    "COMORBIDITIES",
    "COMPARATOR",
    "NEGATIVE_CONTROLS",
    "OUTCOME",
    "TARGET",
    "SimulatedStudy",
    "simulate_study",
    "simulated_study_log",
]
