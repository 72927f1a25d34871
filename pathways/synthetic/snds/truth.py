"""The planted truth of a synthetic SNDS: per chunk (patients, pathologies by year with the evidence revealing
them, reimbursed costs by patient, year and care category, the events ``read_snds`` must give, the abusing
patients) and global (pathology rules, drug -> adverse-event steps, fraudulent providers). :class:`SndsTruth` reads
the per-chunk parts lazily (bounded memory at any size)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pathways.synthetic.snds.care import ACT, FRAUD, GP, PHARMACY, SPECIALIST
from pathways.synthetic.snds.catalogue import Catalogue
from pathways.synthetic.snds.model import COST_CATEGORIES, PATHOLOGIES, SERVICES
from pathways.synthetic.snds.population import DEPARTMENTS, Population, year_start
from pathways.synthetic.snds.providers import (
    Providers,
    hospital_id,
    pharmacy_id,
    prescriber_id,
)

PER_CHUNK = ("patients", "pathologies", "costs", "events", "abusers")
#: The event columns every reader gives (without provider and amount extras).
EVENT_COLUMNS = ["patient_id", "time", "end", "value", "code", "category"]


def _year(days: np.ndarray) -> np.ndarray:
    """Calendar year of each day (days since 1970), through a lookup table over the days' span when it is short.

    Examples
    --------
    >>> _year(np.array([0, 364, 365, 18_262])).tolist()
    [1970, 1970, 1971, 2020]
    """
    days = np.asarray(days, dtype=np.int64)
    if days.size == 0 or int(days.max()) - int(days.min()) > 4 * days.size + 100_000:
        return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    lo = int(days.min())
    year_of = np.arange(lo, int(days.max()) + 1).astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64)
    return year_of[days - lo] + 1970


def patients_frame(pop: Population, prov: Providers, cause: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": pop.pid, "index": pop.index, "birth": pop.birth,
                         "sex": np.where(pop.sex == 2, "F", "M"), "department": DEPARTMENTS[pop.dept],
                         "death": pop.death, "death_cause": cause, "shopper": pop.shopper.astype(str),
                         "gp": _labels(prov.gp(pop.index), lambda u: prescriber_id(u, prov.n_gp)),
                         "pharmacy": _labels(prov.pharmacy(pop.index), pharmacy_id)})


def own_tracers(cat: Catalogue) -> np.ndarray:
    """Per catalogue drug row: True when its ATC code is the tracer of exactly one pathology (a dispensation of it
    reveals that pathology), False for shared tracers (e.g. a statin of several cardiovascular groups) and others.

    Examples
    --------
    >>> from pathways.synthetic.snds.catalogue import catalogue
    >>> cat = catalogue()
    >>> own = own_tracers(cat)
    >>> bool(own[cat.atc == "C09AA05"].all()), bool(own[cat.atc == "C10AA05"].any())  # ramipril; atorvastatin
    (True, False)
    """
    listed = pd.Series([a for p in PATHOLOGIES for a in set(p.drugs)]).value_counts()
    return np.isin(cat.atc.astype(str), listed.index[listed.to_numpy() == 1].to_numpy(str))


def pathologies_frame(pop: Population, years: tuple[int, ...], services: dict[str, np.ndarray],
                      stays: dict[str, np.ndarray], kept: np.ndarray, own: np.ndarray | None = None) -> pd.DataFrame:
    """One row per (patient, year, pathology) active in the year: onset/remission/death flags and the evidence in
    the tables that year (an open ALD, a kept stay with the pathology's diagnosis as principal or related
    diagnosis, a tracer-drug dispensation).

    ``own`` (per catalogue drug row, :func:`own_tracers`) adds ``own_drug`` (a dispensation that year of a tracer
    no other pathology lists) and ``identifiable`` (``ald | hospital | own_drug``): whether the tables reveal the
    pathology-year without a shared tracer. A row with ``drug`` but not ``identifiable`` shows only through
    tracers several pathologies share, which no rule can attribute; rule-based prevalence estimates the
    identifiable one.
    """
    n_k = len(PATHOLOGIES)
    width = max(len(p.icd) for p in PATHOLOGIES)  # (pathology, code index) -> ICD-10 code, "" past a list's end
    icd_table = np.array([list(p.icd) + [""] * (width - len(p.icd)) for p in PATHOLOGIES], dtype=str)
    frames = []
    evidence = {}
    drug_path = np.where(services["kind"] == PHARMACY, services["path"], -1)
    sources = [("drug", services["pat"], services["day"], drug_path),
               ("hospital", stays["pat"][kept], stays["entry"][kept], stays["path"][kept])]
    if own is not None:
        is_own = (drug_path >= 0) & own[np.where(drug_path >= 0, services["item"], 0)]
        sources.append(("own_drug", services["pat"], services["day"], np.where(is_own, drug_path, -1)))
    for name, pat, day, path in sources:
        ok = path >= 0
        evidence[name] = np.unique((pat[ok] * n_k + path[ok]) * 10000 + _year(day[ok]))
    for y in years:
        y0, y1 = year_start(y), year_start(y + 1)
        # active in the year; an onset drawn after the death (end clipped to it) is no pathology-year
        pat, k = np.nonzero((pop.onset < y1) & (pop.end > y0) & (pop.onset < pop.end))
        died = ~np.isnan(pop.death[pat]) & (pop.death[pat] >= y0) & (pop.death[pat] < y1)
        key = (pat * n_k + k) * 10000 + y
        ald = (pop.ald_start[pat, k] < y1) & (np.nan_to_num(pop.ald_end[pat, k], nan=-np.inf) > y0)
        frame = pd.DataFrame({
            "patient_id": pop.pid[pat], "year": y, "pathology": np.array([p.key for p in PATHOLOGIES])[k],
            "icd10": icd_table[k, pop.icd[pat, k]],
            "onset": pop.onset[pat, k], "incident": pop.onset[pat, k] >= y0,
            "remission": pop.remission[pat, k] & (pop.end[pat, k] < y1), "died": died, "ald": ald,
            "hospital": np.isin(key, evidence["hospital"]), "drug": np.isin(key, evidence["drug"])})
        if own is not None:
            frame["own_drug"] = np.isin(key, evidence["own_drug"])
            frame["identifiable"] = frame["ald"] | frame["hospital"] | frame["own_drug"]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def costs_frame(pop: Population, services: dict[str, np.ndarray], reimbursed: np.ndarray,
                stays: dict[str, np.ndarray], kept: np.ndarray) -> pd.DataFrame:
    """Reimbursed amounts by (patient, year, care category), net of regularisations, without information lines;
    hospital = GHS-like cost of the kept stays (by discharge year).

    Outpatient amounts are whole cents: they are summed exactly as integer cents, per dense (patient, year,
    category) key (linear time; the same cents as a compensated float sum rounded to 2 decimals). Stay costs
    are not cents: their few rows per key keep pandas' compensated sum.
    """
    cat_of_kind = np.array([COST_CATEGORIES.index(c) for c in ("pharmacy", "gp", "specialist", "acts")])
    hosp = COST_CATEGORIES.index("hospital")
    s_pat, s_year = services["pat"], _year(services["day"])
    h_pat, h_year = stays["pat"][kept], _year(stays["entry"][kept] + stays["los"][kept])
    years = np.concatenate([s_year, h_year])
    if years.size == 0:
        return pd.DataFrame({"patient_id": np.array([], str), "year": np.array([], np.int64),
                             "category": np.array([], str), "reimbursed": np.array([], float)})
    y0, n_cat = int(years.min()), len(COST_CATEGORIES)
    n_year = int(years.max()) - y0 + 1

    def key(pat: np.ndarray, year: np.ndarray, cat: np.ndarray) -> np.ndarray:  # lexicographic (p, year, c)
        return (pat.astype(np.int64) * n_year + (year - y0)) * n_cat + cat

    size = pop.n * n_year * n_cat
    s_key = key(s_pat, s_year, cat_of_kind[services["kind"]])
    cents = np.bincount(s_key, weights=np.rint(reimbursed * 100.0), minlength=size)  # exact: integers < 2**53
    total = cents / 100.0
    h = pd.DataFrame({"k": key(h_pat, h_year, np.full(h_pat.size, hosp)), "cost": stays["cost"][kept]})
    h_sum = h.groupby("k", sort=False)["cost"].sum()
    total[h_sum.index.to_numpy()] = h_sum.to_numpy().round(2)
    present = np.bincount(s_key, minlength=size) > 0
    present[h_sum.index.to_numpy()] = True
    k = np.flatnonzero(present)
    c = k % n_cat
    return pd.DataFrame({"patient_id": pop.pid[k // (n_cat * n_year)],
                         "year": (k // n_cat) % n_year + y0,
                         "category": np.array(COST_CATEGORIES)[c], "reimbursed": total[k]})


def _labels(values: np.ndarray, label: Any) -> np.ndarray:
    """``label`` of each integer id, formatted once per distinct value; negative ids -> None."""
    uniq, inv = np.unique(values, return_inverse=True)
    names = np.asarray(label(np.maximum(uniq, 0)), dtype=object)
    names[uniq < 0] = None
    return names[inv]


def events_frame(cat: Catalogue, pop: Population, prov: Providers, services: dict[str, np.ndarray],
                 amounts: dict[str, np.ndarray], stays: dict[str, np.ndarray], detail: dict[str, np.ndarray],
                 cause: np.ndarray) -> pd.DataFrame:
    """The events read_snds must give (its categories and codes, times in days since 1970, identical events once),
    every source included: the ``service`` events are those of the opt-in ``dcir_services`` source (a reader of
    the default sources drops them: ``events[events["category"] != "service"]``).

    DCIR events also carry their ``prescriber`` (PFS_PRE_NUM), ``provider`` (PFS_EXE_NUM), ``institution``
    (ETB_PRE_FIN), ``paid`` (PRS_PAI_MNT) and ``base`` (BSE_REM_MNT) of the service (EUR, net of its
    regularisation) and ``regularised`` (cancelled and billed again in a later flux); stay events carry their
    valorisation (T_MCOyyVALO ``MNT_TOT_AM`` as ``paid``, ``MNT_BR`` as ``base``: the GHS-like cost); other
    events have them missing. Rows identical in every column (a re-billed dispensation and its original) appear once;
    two services that differ only by provider or amount stay two rows (a reader that drops those columns
    merges them: ``drop_duplicates(EVENT_COLUMNS)`` gives its view).
    """
    parts = []
    s = services
    for kind, category in ((PHARMACY, "drug"), (ACT, "act")):
        m = s["kind"] == kind
        code = ("CIP13:" + cat.cip[s["item"][m]].astype(str).astype(object) if kind == PHARMACY
                else "CCAM:" + cat.ccam_codes[s["item"][m]])
        exe = s["executor"][m]
        parts.append(pd.DataFrame({
            "p": s["pat"][m], "time": s["day"][m].astype(float), "end": np.nan,
            "value": s["qty"][m].astype(float) if kind == PHARMACY else np.nan, "code": code, "category": category,
            "prescriber": _labels(s["prescriber"][m], lambda u: prescriber_id(u, prov.n_gp)),
            "provider": _labels(exe, pharmacy_id if kind == PHARMACY else lambda u: prescriber_id(u, prov.n_gp)),
            "institution": _labels(s["etb"][m], lambda u: hospital_id(u).astype(str)), "paid": amounts["paid"][m],
            "base": amounts["base"][m], "regularised": amounts["regularised"][m]}))
    parts.append(_service_events(prov, services, amounts))
    kept = ~detail["error"]
    k = np.flatnonzero(kept)
    entry = stays["entry"].astype(float)
    parts.append(pd.DataFrame({"p": stays["pat"][k], "time": entry[k], "end": entry[k] + stays["los"][k],
                               "value": np.nan, "code": "MCO:stay", "category": "stay", "paid": stays["cost"][k],
                               "base": stays["cost"][k]}))
    parts.append(pd.DataFrame({"p": stays["pat"][k], "time": entry[k], "end": np.nan, "value": np.nan,
                               "code": "CIM10:" + stays["dp"][k], "category": "main_diagnosis"}))
    r = k[stays["dr"][k] != ""]
    parts.append(pd.DataFrame({"p": stays["pat"][r], "time": entry[r], "end": np.nan, "value": np.nan,
                               "code": "CIM10:" + stays["dr"][r], "category": "linked_diagnosis"}))
    d = detail["d_row"][kept[detail["d_row"]]]
    parts.append(pd.DataFrame({"p": stays["pat"][d], "time": entry[d], "end": np.nan, "value": np.nan,
                               "code": "CIM10:" + detail["d_code"][kept[detail["d_row"]]],
                               "category": "associated_diagnosis"}))
    am = kept[detail["a_row"]]
    a = detail["a_row"][am]
    parts.append(pd.DataFrame({"p": stays["pat"][a], "time": entry[a] + detail["a_delay"][am], "end": np.nan,
                               "value": np.nan, "code": "CCAM:" + detail["a_code"][am], "category": "hospital_act"}))
    dead = np.flatnonzero(~np.isnan(pop.death))
    parts.append(pd.DataFrame({"p": dead, "time": pop.death[dead], "end": np.nan, "value": np.nan,
                               "code": np.where(pd.isna(cause[dead]), "DEATH", "CIM10:" + cause[dead].astype(str)),
                               "category": "death"}))
    ev = pd.concat(parts, ignore_index=True)
    ev.insert(0, "patient_id", pop.pid[ev.pop("p").to_numpy()])
    same = [c for c in ev.columns if c != "regularised"]
    ev["regularised"] = ev["regularised"].eq(True)  # missing (parts without regularisations) -> False
    ev["regularised"] = ev.groupby(same, dropna=False)["regularised"].transform("any")
    ev = ev.drop_duplicates(same)
    return ev.sort_values(["patient_id", "time", "category", "code"], kind="stable").reset_index(drop=True)


def _service_events(prov: Providers, s: dict[str, np.ndarray], amounts: dict[str, np.ndarray]) -> pd.DataFrame:
    """The ER_PRS_F lines without detail as ``read_snds(sources=(..., "dcir_services"))`` gives them: GP and
    specialist consultations (``PRS:1111`` / ``PRS:1112``) and the dispensing fee of each dispensation
    (``PRS:3336``: fee price x boxes paid, its rounded reimbursement as base), category ``service``."""
    fee_nat, fee_price, fee_rate = SERVICES["dispensing_fee"]
    visit = np.isin(s["kind"], (GP, SPECIALIST))
    fee = s["kind"] == PHARMACY
    rows = np.concatenate([np.flatnonzero(visit), np.flatnonzero(fee)])
    is_fee = np.repeat([False, True], [int(visit.sum()), int(fee.sum())])
    nat = np.where(s["kind"][rows] == GP, SERVICES["gp"][0], SERVICES["specialist"][0])
    qty = s["qty"][rows].astype(float)
    fee_paid = fee_price * qty
    exe = s["executor"][rows]
    provider = np.where(is_fee, _labels(exe, pharmacy_id), _labels(exe, lambda u: prescriber_id(u, prov.n_gp)))
    return pd.DataFrame({
        "p": s["pat"][rows], "time": s["day"][rows].astype(float), "end": np.nan, "value": qty,
        "code": "PRS:" + np.where(is_fee, fee_nat, nat).astype(str).astype(object), "category": "service",
        "prescriber": _labels(s["prescriber"][rows], lambda u: prescriber_id(u, prov.n_gp)), "provider": provider,
        "institution": _labels(s["etb"][rows], lambda u: hospital_id(u).astype(str)),
        "paid": np.where(is_fee, fee_paid, amounts["paid"][rows]),
        "base": np.where(is_fee, np.round(fee_paid * fee_rate, 2), amounts["base"][rows]), "regularised": False})


def abusers_frame(pop: Population, prov: Providers, s: dict[str, np.ndarray]) -> pd.DataFrame:
    """Shopping patients with their class and how many prescribers / pharmacies served them."""
    m = s["fraud"] == FRAUD.index("shopping")
    if not m.any():
        return pd.DataFrame({"patient_id": pd.Series([], dtype=str), "pattern": pd.Series([], dtype=str),
                             "dispensations": pd.Series([], dtype=np.int64),
                             "prescribers": pd.Series([], dtype=np.int64), "pharmacies": pd.Series([], dtype=np.int64)})
    f = pd.DataFrame({"p": s["pat"][m], "pre": s["prescriber"][m], "pha": s["executor"][m]})
    g = f.groupby("p").agg(dispensations=("pre", "size"), prescribers=("pre", "nunique"),
                           pharmacies=("pha", "nunique")).reset_index()
    return pd.DataFrame({"patient_id": pop.pid[g["p"].to_numpy()],
                         "pattern": "shopping:" + pop.shopper[g["p"].to_numpy()].astype(str),
                         **{c: g[c].to_numpy() for c in ("dispensations", "prescribers", "pharmacies")}})


def rules_frame() -> pd.DataFrame:
    """How each planted pathology shows in the tables: ALD number, ICD-10 codes, tracer drugs, acts, rates."""
    return pd.DataFrame([{"pathology": p.key, "label": p.label, "ald_number": p.ald[0], "ald_probability": p.ald[1],
                          "icd10": " ".join(p.icd), "tracer_atc": " ".join(p.drugs), "ccam": " ".join(p.acts),
                          "stays_per_year": p.stays_per_year, "sessions_per_year": p.sessions[1],
                          "session_icd10": p.sessions[0], "death_hazard_ratio": p.death_hr,
                          "yearly_remission": p.remission} for p in PATHOLOGIES])


@dataclass
class SndsTruth:
    """What :func:`~pathways.synthetic.snds.write_snds` planted; big tables are read from ``folder/truth``.

    Attributes: ``folder``, ``meta`` (parameters, chunks, row counts), ``rules`` (pathology -> ALD, ICD-10,
    tracer drugs), ``effects`` (drug ATC -> adverse-event ICD-10 steps: lag window and relative incidence),
    ``fraud_providers`` (over-prescribing prescribers and fraudulent pharmacies with their pattern).
    Methods ``patients()``, ``pathologies()``, ``costs()``, ``events()``, ``abusers()`` read the per-chunk parts.
    """

    folder: Path
    meta: dict[str, Any]
    rules: pd.DataFrame
    effects: pd.DataFrame
    fraud_providers: pd.DataFrame

    @classmethod
    def load(cls, folder: str | Path) -> SndsTruth:
        """The truth written beside the tables of ``folder``."""
        root = Path(folder) / "truth"
        meta = json.loads((root / "meta.json").read_text())
        return cls(Path(folder), meta, pd.read_parquet(root / "rules.parquet"), pd.read_parquet(root / "effects.parquet"),
                   pd.read_parquet(root / "fraud_providers.parquet"))

    def _read(self, name: str) -> pd.DataFrame:
        parts = sorted((self.folder / "truth" / name).glob("part-*.parquet"))
        return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)

    def patients(self) -> pd.DataFrame:
        return self._read("patients")

    def pathologies(self) -> pd.DataFrame:
        return self._read("pathologies")

    def costs(self) -> pd.DataFrame:
        return self._read("costs")

    def events(self) -> pd.DataFrame:
        return self._read("events")

    def abusers(self) -> pd.DataFrame:
        return self._read("abusers")


__all__ = ["EVENT_COLUMNS", "PER_CHUNK", "SndsTruth", "abusers_frame", "costs_frame", "events_frame", "own_tracers",
           "pathologies_frame", "patients_frame", "rules_frame"]
