"""Acute-care (PMSI MCO) stays of one chunk: stays of each pathology (with an index stay at onset for acute
diseases), one-day sessions (dialysis, chemotherapy), unplanned background stays, and adverse-event stays planted
by the simulator's drug -> event steps (:func:`pathways.synthetic.planted.adverse_events`)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pathways.synthetic.codes import Catalogue as SimCatalogue
from pathways.synthetic.planted import adverse_events, draw_effects
from pathways.synthetic.snds.care import PHARMACY, renewals
from pathways.synthetic.snds.catalogue import Catalogue
from pathways.synthetic.snds.model import BACKGROUND_STAY_ICD, PATHOLOGIES
from pathways.synthetic.snds.population import Population

#: GHM-like root of each pathology's stays (CMD + type + number); severity 1-4 is appended from the length.
GHM_ROOT = ("10M02", "05M17", "05M04", "05M09", "01M30", "09M09", "11M04", "19M06", "23M03", "04M05")
SESSION_GHM = {"Z511": "28Z07Z", "Z491": "28Z04Z"}
#: Daily background rate of each adverse event (before any planted drug effect).
OUTCOME_RATE = 6e-6
FIELDS = ("pat", "entry", "los", "dp", "dr", "path", "cost", "origin")


def effects_model(gen: np.random.Generator) -> tuple[SimCatalogue, pd.DataFrame]:
    """The simulator's drug/outcome catalogue and its planted drug -> adverse-event steps (3 strong, 3 weak)."""
    sim = SimCatalogue(n_drugs=40, n_diagnoses=0, n_acts=0, n_outcomes=12)
    return sim, draw_effects(gen, sim, 3, 3)


def _stays(n: int, **v) -> dict[str, np.ndarray]:
    return {f: (np.broadcast_to(np.asarray(v[f]), (n,)).copy() if np.ndim(v[f]) == 0 else np.asarray(v[f]))
            for f in FIELDS}


def stays(gen: np.random.Generator, cat: Catalogue, pop: Population, start: int, stop: int,
          services: dict[str, np.ndarray], sim: SimCatalogue, effects: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every stay of the chunk (entry day, length, principal/related diagnosis, pathology, GHS-like cost in
    euros rounded to the cent)."""
    stop_p = np.where(np.isnan(pop.death), stop, pop.death + 1)
    lo = np.maximum(pop.onset, start)
    hi = np.minimum(np.minimum(pop.end, stop), stop_p[:, None])
    span = np.maximum(hi - lo, 0) / 365.25
    out = []
    for k, p in enumerate(PATHOLOGIES):
        n = gen.poisson(p.stays_per_year * span[:, k])
        pat = np.repeat(np.arange(pop.n), n)
        entry = np.floor(lo[pat, k] + gen.random(pat.size) * (hi[pat, k] - lo[pat, k]))
        index_stay = np.flatnonzero((pop.onset[:, k] >= start) & (hi[:, k] > lo[:, k]) &
                                    (gen.random(pop.n) < (0.7 if k in (2, 3, 4, 5) else 0.1)))
        pat = np.concatenate([pat, index_stay])
        entry = np.concatenate([entry, pop.onset[index_stay, k]])
        los = gen.poisson(max(p.stay_days - 1, 0), pat.size) + 1
        cost = p.stay_cost * np.sqrt(los / p.stay_days) * gen.lognormal(0.0, 0.2, pat.size)
        dp = np.array(p.icd, dtype=object)[pop.icd[pat, k]]
        out.append(_stays(pat.size, pat=pat, entry=entry, los=los, dp=dp, dr="", path=k, cost=cost, origin="pathology"))
        code, per_year, price = p.sessions
        if per_year > 0:
            rows = np.flatnonzero(hi[:, k] > lo[:, k])
            owner, day, _ = renewals(gen, lo[rows, k], hi[rows, k], np.full(rows.size, 365.25 / per_year), 0)
            pat = rows[owner]
            out.append(_stays(pat.size, pat=pat, entry=day, los=0, dp=code,
                              dr=np.array(p.icd, dtype=object)[pop.icd[pat, k]], path=k,
                              cost=price * gen.lognormal(0.0, 0.05, pat.size), origin="session"))
    age = (start - pop.birth) / 365.25
    years = np.maximum(stop_p - start, 0) / 365.25
    n = gen.poisson((0.03 + 0.002 * age) * years)
    pat = np.repeat(np.arange(pop.n), n)
    entry = np.floor(start + gen.random(pat.size) * (stop_p[pat] - start))
    out.append(_stays(pat.size, pat=pat, entry=entry, los=gen.poisson(3, pat.size) + 1,
                      dp=np.array(BACKGROUND_STAY_ICD, dtype=object)[gen.integers(0, len(BACKGROUND_STAY_ICD),
                                                                                  pat.size)],
                      dr="", path=-1, cost=3000.0 * gen.lognormal(0.0, 0.3, pat.size), origin="background"))
    out.append(_adverse(gen, cat, pop, start, stop_p, services, sim, effects))
    s = {f: np.concatenate([o[f] for o in out]) for f in FIELDS}
    s["entry"] = s["entry"].astype(np.int64)
    s["cost"] = np.round(s["cost"].astype(float), 2)  # euros and cents, as valued in T_MCOyyVALO
    s["los"] = np.minimum(s["los"].astype(np.int64), np.maximum(stop_p[s["pat"]] - 1 - s["entry"], 0)).astype(np.int64)
    keep = (s["entry"] >= start) & (s["entry"] < stop_p[s["pat"]])
    order = np.lexsort((s["entry"], s["pat"]))
    order = order[keep[order]]
    return {f: v[order] for f, v in s.items()}


def _adverse(gen: np.random.Generator, cat: Catalogue, pop: Population, start: int, stop_p: np.ndarray,
             services: dict[str, np.ndarray], sim: SimCatalogue, effects: pd.DataFrame) -> dict[str, np.ndarray]:
    """Outcome stays: background Poisson(OUTCOME_RATE a day) per outcome, plus the children of planted drug steps
    over the chunk's dispensations of the simulator's drugs."""
    pha = services["kind"] == PHARMACY
    pos = {c: i for i, c in enumerate(sim.codes)}
    sim_row = np.array([pos.get(a, -1) for a in cat.atc], dtype=np.int64)  # catalogue row -> simulator code
    code = sim_row[services["item"][pha]]
    known = code >= 0
    code = code[known]
    mu = np.full(len(sim), OUTCOME_RATE)
    c_pat, c_t, c_code = adverse_events(gen, services["pat"][pha][known], services["day"][pha][known].astype(float),
                                        code, effects, sim, mu, np.ones(pop.n), stop_p - 1)
    n = gen.poisson(OUTCOME_RATE * np.maximum(stop_p - start, 0)[:, None] * np.ones((1, sim.outcomes.size)))
    b_pat = np.repeat(np.repeat(np.arange(pop.n), sim.outcomes.size), n.ravel())
    b_code = np.repeat(np.tile(sim.outcomes, pop.n), n.ravel())
    b_t = start + gen.random(b_pat.size) * (stop_p[b_pat] - start)
    pat = np.concatenate([c_pat, b_pat])
    entry = np.floor(np.concatenate([c_t, b_t]))
    origin = np.concatenate([np.full(c_pat.size, "adverse_effect", object), np.full(b_pat.size, "adverse_background",
                                                                                    object)])
    return _stays(pat.size, pat=pat, entry=entry, los=gen.poisson(2, pat.size) + 1,
                  dp=sim.codes[np.concatenate([c_code, b_code])].astype(object), dr="", path=-1,
                  cost=3500.0 * gen.lognormal(0.0, 0.3, pat.size), origin=origin)


def ghm(s: dict[str, np.ndarray]) -> np.ndarray:
    """GHM-like group of each stay: pathology root (or 23M20 background) + severity 1-4 from the length, sessions
    28Z..Z."""
    root = np.where(s["path"] >= 0, np.array(GHM_ROOT, dtype=object)[np.maximum(s["path"], 0)], "23M20")
    sev = np.clip(1 + s["los"] // 5, 1, 4).astype(str)
    out = (root.astype(str).astype(object) + sev.astype(object))
    for code, group in SESSION_GHM.items():
        out[s["dp"] == code] = group
    return out


__all__ = ["GHM_ROOT", "OUTCOME_RATE", "effects_model", "ghm", "stays"]
