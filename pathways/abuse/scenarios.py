"""Abuse and fraud scenarios planted over :func:`pathways.synthetic.simulate_cohort`, with their truth.

The synthetic-SNDS generator of issue 14 had not landed when this was written, so the scenarios are planted here
over the Hawkes cohort simulator. The background cohort (diagnoses, drugs, acts, stays, deaths) is given a
provider layer: every patient has a region, a general practitioner and a usual pharmacy of that region; every
dispensation names a prescriber and a pharmacy and is covered by a consultation of its prescriber at most
``cover_days`` earlier (a small share of consultations is missing, as in real claims); dispensations inside hospital
stays are removed except a small share (leave days). Watched classes (opioids, benzodiazepines, methylphenidate,
buprenorphine) get legitimate users (regular refills from one prescriber, one pharmacy). Then, each at
``prevalence`` of its entity type:

========================  ==========  ====================================================================
scenario                  entity      behaviour
========================  ==========  ====================================================================
shopping_<class>          patient     overlapping dispensations of the class every ~9 days from 3-8
                                      prescribers, filled at 3-6 pharmacies
over_prescribing          prescriber  a GP who starts half of the patients it sees on one watched class
no_prescription           pharmacy    dispensations billed for its customers with no consultation of the
                                      named prescriber (or no prescriber)
inflated_quantities       pharmacy    half of its dispensations billed with 1-2 extra boxes
impossible_dates          pharmacy    dispensations billed during its customers' hospital stays and after death
========================  ==========  ====================================================================

Extras of the returned EventLog: ``prescriber`` and ``provider`` (integer ids, -1 when absent: doctors are
``0..n_prescribers-1``, pharmacies ``n_prescribers..``), ``institution`` (hospital of a stay), ``paid`` and
``base`` (euros). Patients carry ``region``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pathways.data.dates import EPOCH
from pathways.data.eventlog import EventLog
from pathways.data.vocabulary import Vocabulary
from pathways.errors import PathwaysInputError
from pathways.synthetic.cohort import simulate_cohort
from pathways.utils import SeedLike, ragged_arange, rng

#: the code planted for each watched class, its price per box and its share of legitimate users
PLANTED_DRUGS = {"opioids": ("N02AA05", 12.0, 0.08), "benzodiazepines": ("N05BA01", 3.0, 0.10),
                 "methylphenidate": ("N06BA04", 40.0, 0.01), "buprenorphine": ("N07BC01", 25.0, 0.005)}
CONSULTATION = "CONSULTATION"
#: background codes of the watched classes (tramadol, oxycodone, alprazolam, diazepam, zolpidem), redrawn
WATCHED_BACKGROUND = ("N02AX02", "N02AA05", "N05BA12", "N05BA01", "N05CF02")
SPECIALTIES = ("general practice", "psychiatry", "other")
PATIENT_SCENARIOS = tuple(f"shopping_{c}" for c in PLANTED_DRUGS)
PRESCRIBER_SCENARIOS = ("over_prescribing",)
PHARMACY_SCENARIOS = ("no_prescription", "inflated_quantities", "impossible_dates")
SCENARIOS = {**{s: "patient" for s in PATIENT_SCENARIOS}, **{s: "prescriber" for s in PRESCRIBER_SCENARIOS},
             **{s: "pharmacy" for s in PHARMACY_SCENARIOS}}


@dataclass
class AbuseTruth:
    """What was planted: per scenario the entity type and the planted ids; the providers with their attributes."""

    positives: dict[str, np.ndarray]
    providers: pd.DataFrame
    scenario_entity: dict[str, str] = field(default_factory=lambda: dict(SCENARIOS))

    def labels(self, scenario: str, ids: np.ndarray) -> np.ndarray:
        """1 where an id was planted with ``scenario``, else 0."""
        return np.isin(ids, self.positives[scenario]).astype(np.int64)

    def planted(self, entity: str) -> np.ndarray:
        """Every id planted with any scenario of an entity type."""
        parts = [v for s, v in self.positives.items() if self.scenario_entity[s] == entity]
        return np.unique(np.concatenate(parts)) if parts else np.array([])


class _Events:
    """Columns of events being assembled (codes as strings until the vocabulary is known)."""

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, patient, time, code, category, *, end=None, value=None, prescriber=None, provider=None,
            institution=None, base=None) -> None:
        n = np.asarray(time).size
        full = lambda v, fill, dt: np.full(n, fill, dt) if v is None else np.broadcast_to(v, (n,)).astype(dt)
        base_ = full(base, np.nan, np.float64)
        self.parts.append({
            "patient": full(patient, -1, np.int64), "time": np.asarray(time, np.float64),
            "code": full(code, "", object), "category": full(category, "", object),
            "end": full(end, np.nan, np.float64), "value": full(value, np.nan, np.float64),
            "prescriber": full(prescriber, -1, np.int64), "provider": full(provider, -1, np.int64),
            "institution": full(institution, -1, np.int64), "base": base_, "paid": np.round(base_ * 0.65, 2),
        })

    def frame(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}


def simulate_abuse(
    n_patients: int = 5000,
    *,
    prevalence: float = 0.01,
    seed: SeedLike = 0,
    n_regions: int = 12,
    patients_per_prescriber: int = 25,
    patients_per_pharmacy: int = 50,
    rate_scale: float = 0.3,
    cover_days: float = 90.0,
    missing_consultation: float = 0.01,
    stay_leave_share: float = 0.02,
) -> tuple[EventLog, AbuseTruth]:
    """Simulate a cohort with providers, amounts and every abuse/fraud scenario planted at ``prevalence``.

    Parameters
    ----------
    n_patients : cohort size; prescribers and pharmacies scale with it (``patients_per_*``).
    prevalence : share of patients (per shopping class), prescribers and pharmacies (per scenario) planted.
    rate_scale : event rate of the background cohort (see :func:`~pathways.synthetic.simulate_cohort`).
    cover_days : a dispensation is covered by a consultation of its prescriber at most this many days before.
    missing_consultation, stay_leave_share : legitimate noise: consultations absent from the claims, and
        background dispensations kept inside a hospital stay.

    Examples
    --------
    >>> log, truth = simulate_abuse(2000, prevalence=0.02, seed=0)
    >>> sorted(log.extras) == ["base", "institution", "paid", "prescriber", "provider"]
    True
    >>> truth.positives["shopping_opioids"].size, truth.scenario_entity["impossible_dates"]
    (40, 'pharmacy')
    """
    if not 0 < prevalence < 0.2:
        raise PathwaysInputError(f"prevalence: expected a share in (0, 0.2), got {prevalence!r}")
    g = rng(seed)
    background, _ = simulate_cohort(n_patients, seed=g, rate_scale=rate_scale, anomaly_fraction=0.0)
    world = _World(background, g, n_regions, patients_per_prescriber, patients_per_pharmacy)
    events = _Events()
    world.background_events(events, cover_days, missing_consultation, stay_leave_share)
    world.legitimate_users(events)
    positives: dict[str, np.ndarray] = {}
    world.shopping(events, prevalence, positives)
    world.over_prescribing(events, prevalence, positives)
    world.pharmacy_fraud(events, prevalence, positives)
    log = world.assemble(events)
    providers = world.providers()
    ids = {"patient": log.patients["patient_id"].to_numpy()}
    positives = {s: (ids["patient"][v] if SCENARIOS[s] == "patient" else v) for s, v in positives.items()}
    return log, AbuseTruth(positives, providers)


class _World:
    """Regions, providers and patients' usual providers; each method plants one layer of events."""

    def __init__(self, log: EventLog, g: np.random.Generator, n_regions: int, per_prescriber: int,
                 per_pharmacy: int):
        self.log, self.g = log, g
        n = log.n_patients
        self.n_doc = max(20, n // per_prescriber)
        self.n_pha = max(10, n // per_pharmacy)
        self.region = g.integers(n_regions, size=n)
        self.doc_region = g.integers(n_regions, size=self.n_doc)
        self.doc_specialty = g.choice(len(SPECIALTIES), size=self.n_doc, p=[0.75, 0.1, 0.15])
        self.pha_region = g.integers(n_regions, size=self.n_pha)
        self.gp = self._pick(self.region, self.doc_region, self.doc_specialty == 0)
        self.pharmacy = self._pick(self.region, self.pha_region, np.ones(self.n_pha, bool))
        self.start = log.patients["start"].to_numpy(float)
        self.end = log.patients["end"].to_numpy(float).copy()
        self.death = log.patients["death"].to_numpy(float)
        stay = log.category == "stay"
        self.stays = (log.patient[stay], log.time[stay], log.end[stay])

    def _pick(self, region: np.ndarray, entity_region: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        """One random eligible entity of each unit's region (any eligible one where the region has none)."""
        ranked = np.lexsort((self.g.random(entity_region.size), ~eligible, entity_region))
        counts = np.bincount(entity_region[eligible], minlength=region.max() + 1)
        first = np.searchsorted(entity_region[ranked], np.arange(counts.size))
        k = (self.g.random(region.size) * np.maximum(counts[region], 1)).astype(np.int64)
        lost = counts[region] == 0
        out = ranked[np.minimum(first[region] + k, ranked.size - 1)]
        out[lost] = self.g.choice(np.flatnonzero(eligible), size=int(lost.sum()))
        return out

    def _region_pharmacy(self, patient: np.ndarray) -> np.ndarray:
        return self.n_doc + self._pick(self.region[patient], self.pha_region, np.ones(self.n_pha, bool))

    def _price(self, codes: np.ndarray) -> np.ndarray:
        """A fixed price per box per code (watched classes at their list price, others 2-30 euros)."""
        uniq, inv = np.unique(codes.astype(str), return_inverse=True)
        g = np.random.default_rng(12345)  # prices do not depend on the cohort's seed
        price = g.uniform(2.0, 30.0, uniq.size)
        for code, p, _ in PLANTED_DRUGS.values():
            price[uniq == code] = p
        return price[inv]

    def _inside_stay(self, patient: np.ndarray, time: np.ndarray) -> np.ndarray:
        """Events strictly inside a hospital stay of their patient (entry and discharge days excluded)."""
        sp, st, se = self.stays
        order = np.lexsort((st, sp))
        sp, st, se = sp[order], st[order], se[order]
        key_s = sp * 1e6 + (st - self.start.min())
        key_e = patient * 1e6 + (time - self.start.min())
        pos = np.searchsorted(key_s, key_e, side="right") - 1
        ok = pos >= 0
        pos = np.maximum(pos, 0)
        return ok & (sp[pos] == patient) & (time > st[pos] + 1) & (time < se[pos] - 1)

    # -- layers -------------------------------------------------------------------------------------------------
    def background_events(self, ev: _Events, cover_days: float, missing: float, leave_share: float) -> None:
        log, g = self.log, self.g
        codes = log.code_strings()
        drug = np.asarray(log.category == "drug")
        inside = self._inside_stay(log.patient, log.time) & drug
        keep = ~inside | (g.random(log.n_events) < leave_share)
        # watched classes are redrawn as prescription refill episodes (legitimate_users): Hawkes clusters of
        # 1-6 boxes are no model of a controlled-drug prescription
        keep &= ~np.isin(codes, WATCHED_BACKGROUND)
        stay = np.asarray(log.category == "stay")
        n = log.n_events
        hospital = np.where(stay, g.integers(max(2, self.n_pha // 10), size=n), -1)
        prescriber = np.where(g.random(n) < 0.9, self.gp[log.patient],
                              self._pick(self.region[log.patient], self.doc_region, np.ones(self.n_doc, bool)))
        pharmacy = np.where(g.random(n) < 0.9, self.n_doc + self.pharmacy[log.patient],
                            self._region_pharmacy(log.patient))
        boxes = np.nan_to_num(log.value, nan=1.0)
        base = np.where(drug, boxes * self._price(codes), np.nan)
        provider = np.where(drug, pharmacy, np.where(stay, -1, self.gp[log.patient]))
        k = keep
        ev.add(log.patient[k], log.time[k], codes[k], np.asarray(log.category.astype(str))[k], end=log.end[k],
               value=np.where(drug, boxes, log.value)[k], prescriber=np.where(drug, prescriber, -1)[k],
               provider=provider[k], institution=hospital[k], base=base[k])
        self._consultations(ev, log.patient[k & drug], log.time[k & drug], prescriber[k & drug], cover_days,
                            missing)
        #: (patient, doctor) pairs of the background: the patients each doctor sees
        self.seen = np.unique(np.stack([log.patient[k & drug], prescriber[k & drug]], axis=1), axis=0)

    def _consultations(self, ev: _Events, patient, time, prescriber, cover_days: float, missing: float) -> None:
        """One consultation per (patient, prescriber, block of ``cover_days - 10`` days) of dispensations."""
        block = np.floor((time - self.start[patient]) / (cover_days - 10.0)).astype(np.int64)
        frame = pd.DataFrame({"p": patient, "d": prescriber, "b": block, "t": time})
        first = frame.groupby(["p", "d", "b"], sort=False)["t"].min().reset_index()
        first = first[self.g.random(len(first)) >= missing]
        t = np.maximum(first["t"].to_numpy() - self.g.integers(0, 4, len(first)), self.start[first["p"]])
        ev.add(first["p"].to_numpy(), t, CONSULTATION, "consultation", provider=first["d"].to_numpy(), base=25.0)

    def _dispense(self, ev: _Events, patient, time, klass: str, prescriber, pharmacy, boxes,
                  consult: bool = True) -> None:
        code, price, _ = PLANTED_DRUGS[klass]
        alive = time <= self.end[patient]
        patient, time, prescriber, pharmacy, boxes = (a[alive] for a in (patient, time, prescriber, pharmacy, boxes))
        ev.add(patient, time, code, "drug", value=boxes, prescriber=prescriber, provider=pharmacy,
               base=boxes * price)
        if consult:
            t = np.maximum(time - self.g.integers(0, 4, time.size), self.start[patient])
            ev.add(patient, t, CONSULTATION, "consultation", provider=prescriber, base=25.0)

    def _episodes(self, patient: np.ndarray, n_disp: np.ndarray, gap: float, jitter: tuple[float, float]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Refill times of one episode per patient: start uniform in the window, gaps ``gap * U(jitter)``."""
        span = self.end[patient] - self.start[patient]
        t0 = self.start[patient] + self.g.random(patient.size) * np.maximum(span - n_disp * gap, 0.0)
        reps = np.repeat(np.arange(patient.size), n_disp)
        step = gap * self.g.uniform(*jitter, reps.size)
        step[ragged_arange(n_disp) == 0] = 0.0
        cum = np.cumsum(step)
        cum -= np.repeat(cum[np.cumsum(n_disp) - n_disp], n_disp)  # restart at each episode's first refill
        return patient[reps], t0[reps] + cum, reps

    def legitimate_users(self, ev: _Events) -> None:
        g = self.g
        n = self.log.n_patients
        for klass, (_, _, share) in PLANTED_DRUGS.items():
            users = np.flatnonzero(g.random(n) < share)
            patient, time, _ = self._episodes(users, g.integers(1, 25, users.size), 28.0, (0.8, 1.5))
            doc = self.gp[patient]
            if klass == "methylphenidate":  # started by a psychiatrist of the region
                psy = self._pick(self.region[users], self.doc_region, self.doc_specialty == 1)
                doc = np.where(g.random(patient.size) < 0.8, psy[np.searchsorted(users, patient)], doc)
            other = self._pick(self.region[patient], self.doc_region, self.doc_specialty == 0)
            doc = np.where(g.random(patient.size) < 0.1, other, doc)  # replacement doctor
            pha = np.where(g.random(patient.size) < 0.9, self.n_doc + self.pharmacy[patient],
                           self._region_pharmacy(patient))
            self._dispense(ev, patient, time, klass, doc, pha, 1.0 + (g.random(patient.size) < 0.1))

    def shopping(self, ev: _Events, prevalence: float, positives: dict[str, np.ndarray]) -> None:
        g = self.g
        n = self.log.n_patients
        k = max(1, round(prevalence * n))
        followed = np.flatnonzero(self.end - self.start >= 300.0)
        chosen = g.permutation(followed)[: k * len(PLANTED_DRUGS)].reshape(len(PLANTED_DRUGS), k)
        for row, klass in zip(chosen, PLANTED_DRUGS):
            positives[f"shopping_{klass}"] = np.sort(row)
            patient, time, reps = self._episodes(row, g.integers(15, 30, row.size), 9.0, (0.6, 1.4))
            n_docs, n_phas = g.integers(3, 9, row.size), g.integers(3, 7, row.size)
            doc_sets = g.integers(self.n_doc, size=(row.size, 8))
            pha_sets = np.stack([self._region_pharmacy(row) for _ in range(6)], axis=1)
            doc = doc_sets[reps, (g.random(reps.size) * n_docs[reps]).astype(np.int64)]
            pha = pha_sets[reps, (g.random(reps.size) * n_phas[reps]).astype(np.int64)]
            self._dispense(ev, patient, time, klass, doc, pha, 1.0 + (g.random(reps.size) < 0.3))

    def over_prescribing(self, ev: _Events, prevalence: float, positives: dict[str, np.ndarray]) -> None:
        g = self.g
        gps = np.flatnonzero(self.doc_specialty == 0)
        chosen = np.sort(g.choice(gps, size=max(1, round(prevalence * self.n_doc)), replace=False))
        positives["over_prescribing"] = chosen
        klass_of = g.choice(list(PLANTED_DRUGS), size=chosen.size, p=[0.4, 0.4, 0.1, 0.1])
        for klass in PLANTED_DRUGS:
            # half of the patients the doctor sees (its own and those it sees as a replacement) get the class
            pairs = self.seen[np.isin(self.seen[:, 1], chosen[klass_of == klass])]
            pairs = pairs[g.random(len(pairs)) < 0.5]
            patient, time, reps = self._episodes(pairs[:, 0], g.integers(2, 13, len(pairs)), 28.0, (0.95, 1.3))
            pha = self.n_doc + self.pharmacy[patient]
            self._dispense(ev, patient, time, klass, pairs[reps, 1], pha, 1.0 + (g.random(patient.size) < 0.5))

    def pharmacy_fraud(self, ev: _Events, prevalence: float, positives: dict[str, np.ndarray]) -> None:
        g = self.g
        k = max(1, round(prevalence * self.n_pha))
        chosen = g.permutation(self.n_pha)[: 3 * k].reshape(3, k)
        for name, row in zip(PHARMACY_SCENARIOS, chosen):
            positives[name] = np.sort(row + self.n_doc)
        customers = lambda row: np.flatnonzero(np.isin(self.pharmacy, row))
        # no prescription: phantom dispensations for 60 % of the customers, prescriber without consultation
        cust = customers(chosen[0])
        cust = cust[g.random(cust.size) < 0.6]
        patient, time, _ = self._episodes(cust, g.integers(3, 11, cust.size), 40.0, (0.5, 1.5))
        # half name no prescriber, half one borrowed prescriber id per pharmacy (never seen by the patient)
        borrowed = g.integers(self.n_doc, size=self.n_pha)[self.pharmacy[patient]]
        doc = np.where(g.random(patient.size) < 0.5, borrowed, -1)
        klass = g.choice(list(PLANTED_DRUGS)[:2], size=patient.size)
        for name in np.unique(klass):
            m = klass == name
            self._dispense(ev, patient[m], time[m], name, doc[m], self.n_doc + self.pharmacy[patient[m]],
                           np.ones(int(m.sum())), consult=False)
        self._inflate = set((chosen[1] + self.n_doc).tolist())
        self._impossible(ev, customers(chosen[2]))

    def _impossible(self, ev: _Events, cust: np.ndarray) -> None:
        """Dispensations billed inside the customers' stays and in the 60 days after their death."""
        g = self.g
        sp, st, se = self.stays
        m = np.isin(sp, cust) & (se - st >= 4.0) & (g.random(sp.size) < 0.7)
        t_stay = st[m] + 2.0 + g.random(int(m.sum())) * (se[m] - st[m] - 4.0)
        dead = cust[np.isfinite(self.death[cust])]
        t_dead = self.death[dead] + 1.0 + g.random(dead.size) * 59.0
        patient = np.concatenate([sp[m], dead])
        time = np.concatenate([t_stay, t_dead])
        self.end[dead] = np.maximum(self.end[dead], t_dead)  # billed after the window closes
        klass = g.choice(list(PLANTED_DRUGS)[:2], size=patient.size)
        for name in np.unique(klass):
            k = klass == name
            self._dispense(ev, patient[k], time[k], name, self.gp[patient[k]],
                           self.n_doc + self.pharmacy[patient[k]], np.ones(int(k.sum())), consult=False)

    # -- output -------------------------------------------------------------------------------------------------
    def assemble(self, ev: _Events) -> EventLog:
        cols = ev.frame()
        inflate = np.isin(cols["provider"], list(self._inflate)) & (cols["category"] == "drug")
        inflate &= self.g.random(inflate.size) < 0.5
        extra = self.g.integers(1, 3, inflate.size)
        per_box = cols["base"] / np.maximum(cols["value"], 1.0)
        cols["value"] = np.where(inflate, cols["value"] + extra, cols["value"])
        cols["base"] = np.where(inflate, cols["value"] * per_box, cols["base"])
        cols["paid"] = np.round(cols["base"] * 0.65, 2)
        codes = np.asarray(cols["code"], dtype=str)
        vocab_codes = np.unique(codes)
        patients = self.log.patients.copy()
        patients["end"] = self.end
        patients["region"] = self.region
        extras = {k: cols[k] for k in ("prescriber", "provider", "institution", "paid", "base")}
        return EventLog.from_arrays(cols["patient"], cols["time"], np.searchsorted(vocab_codes, codes),
                                    Vocabulary(vocab_codes.tolist()), patients, end=cols["end"],
                                    value=cols["value"], category=cols["category"], origin=EPOCH, extras=extras)

    def providers(self) -> pd.DataFrame:
        """One row per provider: ``provider`` id, ``kind`` (prescriber / pharmacy), ``specialty``, ``region``."""
        return pd.DataFrame({
            "provider": np.arange(self.n_doc + self.n_pha),
            "kind": np.repeat(["prescriber", "pharmacy"], [self.n_doc, self.n_pha]),
            "specialty": np.concatenate([np.asarray(SPECIALTIES, dtype=object)[self.doc_specialty],
                                         np.full(self.n_pha, "pharmacy", dtype=object)]),
            "region": np.concatenate([self.doc_region, self.pha_region]),
        })


__all__ = ["CONSULTATION", "PLANTED_DRUGS", "SCENARIOS", "AbuseTruth", "simulate_abuse"]
