"""A synthetic population for the cartography with planted pathology states, costs and transitions (the default
data of ``experiment=cartography`` and the recovery benchmark).

Four exclusive *primary* states (``chronic_heart_failure``, ``dialysis``, ``dementia``, ``parkinson``, else
``none``) follow a yearly Markov chain with state-dependent death; two *secondary* groups (``diabetes``,
``chronic_respiratory``) follow independent onset / remission chains. Each active patient-year leaves the evidence
the packaged rule set reads (ALD periods, dialysis sessions and acts, >= 4 tracer-drug dispensations, with
cancelled-and-redone dispensations as regularisation rows); others get sub-threshold noise (1-2 dispensations,
2 acts). Spending = base (age, sex) + the attributable cost of each group held, each times mean-one gamma noise (coefficient of variation 0.5 and 0.25),
carried by the events as the ``paid`` extras column (``base`` = paid / 0.7).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pathways.cartography.identify import year_start
from pathways.data.eventlog import EventLog
from pathways.data.vocabulary import Vocabulary

PRIMARY = ("chronic_heart_failure", "dialysis", "dementia", "parkinson")
SECONDARY = ("diabetes", "chronic_respiratory")
STATES = ("none", *PRIMARY)
#: yearly transition matrix between STATES for the survivors (rows sum to 1) and death probability per state
TRANSITION = np.array([[0.955, 0.015, 0.005, 0.015, 0.010],
                       [0.050, 0.850, 0.050, 0.050, 0.000],
                       [0.020, 0.030, 0.900, 0.050, 0.000],
                       [0.000, 0.050, 0.000, 0.950, 0.000],
                       [0.000, 0.030, 0.000, 0.070, 0.900]])
DEATH = np.array([0.01, 0.08, 0.10, 0.12, 0.05])
INITIAL = np.array([0.80, 0.06, 0.03, 0.06, 0.05])
#: secondary groups: (initial prevalence, yearly onset, yearly remission)
SECONDARY_CHAINS = {"diabetes": (0.15, 0.02, 0.0), "chronic_respiratory": (0.10, 0.02, 0.10)}
#: attributable yearly cost (euros) of each group
COSTS = {"chronic_heart_failure": 4000.0, "dialysis": 30000.0, "dementia": 6000.0, "parkinson": 2500.0,
         "diabetes": 1500.0, "chronic_respiratory": 800.0}
TRACER = {"dementia": "ATC:N06DA02", "parkinson": "ATC:N04BA02", "diabetes": "ATC:A10BA02",
          "chronic_respiratory": "ATC:R03AC02"}
ALD = {"chronic_heart_failure": "CIM10:I500", "dementia": "CIM10:G309"}
#: every code the generator emits: one vocabulary whatever the draw, so that chunks drawn apart concatenate
CODES = tuple(sorted({"CCAM:YYYY001", "CCAM:DEQP003", "CCAM:JVJF008", "MCO:stay", "CIM10:Z491", "DEATH",
                      *TRACER.values(), *ALD.values()}))


@dataclass
class CartographyTruth:
    """What :func:`simulate_cartography` planted: ``patient_years`` (patient, year, state, one boolean column per
    group, died), ``costs`` (attributable euros per group), ``transition`` (from_state, to_state, probability,
    death included) and the first and last ``years``."""

    patient_years: pd.DataFrame
    costs: dict[str, float]
    transition: pd.DataFrame
    years: tuple[int, ...]


def simulate_cartography(n_patients: int = 2000, years: Sequence[int] = (2019, 2020, 2021, 2022), seed: int = 0
                         ) -> tuple[EventLog, CartographyTruth]:
    """Draw the population and its events; returns ``(log, truth)``.

    Examples
    --------
    >>> log, truth = simulate_cartography(200, years=(2020, 2021), seed=1)
    >>> sorted(truth.costs) == sorted(PRIMARY + SECONDARY), log.n_patients
    (True, 200)
    """
    rng = np.random.default_rng(seed)
    years = tuple(int(y) for y in years)
    n, n_years = int(n_patients), len(years)
    state, secondary, alive, death_year = _chains(rng, n, n_years)
    ys = year_start(np.asarray(years))
    # death on day 1..364 of its year: the patient lives at least one day of it
    death_day = np.where(death_year >= 0, ys[np.maximum(death_year, 0)] + rng.integers(1, 365, n), np.nan)
    age0 = rng.integers(30, 91, n)
    female = rng.random(n) < 0.52
    py_p, py_y = np.nonzero(alive)  # patient-years of the population (alive on 1 January)
    died = np.isfinite(death_day[py_p]) & (death_day[py_p] < ys[py_y] + 365) & (death_day[py_p] >= ys[py_y])
    horizon = np.where(died, death_day[py_p] - ys[py_y], 365.0)  # days of the year the patient lives
    events = _Events(rng, py_p, ys[py_y], horizon)
    age = age0[py_p] + py_y
    events.add(np.ones(py_p.size, bool), 1, "CCAM:YYYY001", "act",
               (300 + 8 * age + 100 * female[py_p]) * rng.gamma(4, 1 / 4, py_p.size))
    flags = {}
    for k, g in enumerate(PRIMARY, start=1):
        flags[g] = state[py_p, py_y] == k
    for j, g in enumerate(SECONDARY):
        flags[g] = secondary[py_p, py_y, j]
    for g, held in flags.items():
        _evidence(events, rng, g, held)
    dead = np.flatnonzero(np.isfinite(death_day))
    events.extra(dead, death_day[dead], "DEATH", "death")
    log = events.log(n, female, age0, ys[0], death_day, ys[-1] + 365 - 1)
    truth = CartographyTruth(_truth_frame(py_p, np.asarray(years)[py_y], state[py_p, py_y], flags, died),
                             dict(COSTS), _transition_frame(), years)
    return log, truth


def _chains(rng: np.random.Generator, n: int, n_years: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """States (n, years), secondary flags (n, years, 2), alive on 1 January (n, years), year index of death
    (-1: alive at the end)."""
    state = np.zeros((n, n_years), dtype=np.int64)
    secondary = np.zeros((n, n_years, len(SECONDARY)), dtype=bool)
    alive = np.zeros((n, n_years), dtype=bool)
    death_year = np.full(n, -1)
    state[:, 0] = rng.choice(len(STATES), size=n, p=INITIAL)
    for j, g in enumerate(SECONDARY):
        secondary[:, 0, j] = rng.random(n) < SECONDARY_CHAINS[g][0]
    alive[:, 0] = True
    cumulative = np.cumsum(TRANSITION, axis=1)
    for t in range(n_years):
        if t > 0:
            alive[:, t] = alive[:, t - 1] & (death_year < 0)
            u = rng.random(n)
            state[:, t] = (u[:, None] > cumulative[state[:, t - 1]]).sum(axis=1)
            for j, g in enumerate(SECONDARY):
                _, onset, remission = SECONDARY_CHAINS[g]
                prev = secondary[:, t - 1, j]
                u = rng.random(n)
                secondary[:, t, j] = np.where(prev, u >= remission, u < onset)
        dies = alive[:, t] & (death_year < 0) & (rng.random(n) < DEATH[state[:, t]])
        death_year[dies] = t
    return state, secondary, alive, death_year


class _Events:
    """Collects vectorised event blocks (patient, time, code, category, end, paid) for the population rows."""

    def __init__(self, rng: np.random.Generator, patient: np.ndarray, start: np.ndarray, horizon: np.ndarray):
        self.rng, self.patient, self.start, self.horizon = rng, patient, start, horizon
        self.parts: list[pd.DataFrame] = []

    def add(self, rows: np.ndarray, count: np.ndarray | int, code: str, category: str, total: np.ndarray | float,
            end: str | None = None, negative: bool = False) -> None:
        """``count`` events per selected row (mask ``rows``), sharing ``total`` euros; ``end='year'`` = ALD
        period to the end of the year (or death)."""
        idx = np.flatnonzero(rows)
        count = np.broadcast_to(np.asarray(count), rows.shape)[idx]
        total = np.broadcast_to(np.asarray(total, dtype=float), rows.shape)[idx]
        rep = np.repeat(np.arange(idx.size), count)
        r = idx[rep]
        time = self.start[r] + np.floor(self.rng.random(rep.size) * self.horizon[r])
        paid = np.round(total[rep] / count[rep], 2) * (-1 if negative else 1)
        stop = self.start[r] + self.horizon[r] - 1 if end == "year" else np.full(rep.size, np.nan)
        self.parts.append(pd.DataFrame({"p": self.patient[r], "time": time, "end": stop, "code": code,
                                        "category": category, "paid": paid}))

    def extra(self, patient: np.ndarray, time: np.ndarray, code: str, category: str) -> None:
        self.parts.append(pd.DataFrame({"p": patient, "time": time, "end": np.nan, "code": code,
                                        "category": category, "paid": np.nan}))

    def log(self, n: int, female: np.ndarray, age0: np.ndarray, first_day: float, death_day: np.ndarray,
            last_day: float) -> EventLog:
        frame = pd.concat(self.parts, ignore_index=True)
        vocab = Vocabulary(list(CODES))
        birth = first_day - 365.25 * age0 - 180
        patients = pd.DataFrame({"patient_id": np.arange(n), "birth": birth, "sex": np.where(female, "F", "M"),
                                 "death": death_day, "start": first_day,
                                 "end": np.where(np.isfinite(death_day), death_day, last_day),
                                 "department": np.where(np.arange(n) % 3 == 0, "13", "75")})
        paid = frame["paid"].to_numpy(float)
        return EventLog.from_arrays(frame["p"].to_numpy(), frame["time"].to_numpy(),
                                    vocab.encode(frame["code"].to_numpy()), vocab, patients, frame["end"].to_numpy(),
                                    None, frame["category"].to_numpy(), origin="1970-01-01",
                                    extras={"paid": paid, "base": np.round(paid / 0.7, 2)})


def _evidence(events: _Events, rng: np.random.Generator, group: str, held: np.ndarray) -> None:
    """Events revealing ``group`` where ``held`` (carrying its cost), and sub-threshold noise elsewhere."""
    cost = COSTS[group] * rng.gamma(16, 1 / 16, held.size)  # coefficient of variation 0.25
    if group in ALD:
        events.add(held, 1, ALD[group], "ald", 0.0, end="year")
        events.add(held, 2, "CCAM:DEQP003", "act", cost if group not in TRACER else 0.0)
    if group == "dialysis":
        events.add(held, 1, "MCO:stay", "stay", 0.0)
        events.add(held, 1, "CIM10:Z491", "main_diagnosis", 0.0)
        events.add(held, rng.integers(3, 9, held.size), "CCAM:JVJF008", "act", cost)
        events.add(~held & (rng.random(held.size) < 0.02), 2, "CCAM:JVJF008", "act", 300.0)
    if group in TRACER:
        events.add(held, rng.integers(4, 13, held.size), TRACER[group], "drug", cost)
        redo = held & (rng.random(held.size) < 0.2)  # a dispensation cancelled (regularisation row) and redone
        events.add(redo, 1, TRACER[group], "drug", 30.0)
        events.add(redo, 1, TRACER[group], "drug", 30.0, negative=True)
        events.add(~held & (rng.random(held.size) < 0.1), rng.integers(1, 3, held.size), TRACER[group], "drug", 40.0)


def _truth_frame(patient: np.ndarray, year: np.ndarray, state: np.ndarray, flags: dict[str, np.ndarray],
                 died: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({"patient": patient, "year": year, "state": np.asarray(STATES, dtype=object)[state]})
    for g, f in flags.items():
        frame[g] = f
    frame["died"] = died
    return frame.sort_values(["patient", "year"]).reset_index(drop=True)


def _transition_frame() -> pd.DataFrame:
    rows = []
    for i, s in enumerate(STATES):
        rows.append({"from_state": s, "to_state": "death", "probability": DEATH[i]})
        rows += [{"from_state": s, "to_state": t, "probability": (1 - DEATH[i]) * TRANSITION[i, j]}
                 for j, t in enumerate(STATES)]
    return pd.DataFrame(rows)


__all__ = ["CODES", "COSTS", "PRIMARY", "SECONDARY", "STATES", "CartographyTruth", "simulate_cartography"]
