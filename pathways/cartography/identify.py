"""Pathology identification per patient-year, vectorised over events: every criterion of a rule set becomes
(patient-year, criterion) counts through one sparse code x criterion incidence per source kind, thresholds turn
them into flags, and exclusions are applied group by group in priority order. No per-patient Python loop.

What the EventLog must carry (see ``docs/cartography.md``): dated events (``origin`` set, or times in days since
1970-01-01); categories ``drug`` (ATC codes), ``act`` / ``hospital_act`` (CCAM), ``main_diagnosis`` /
``linked_diagnosis`` / ``associated_diagnosis`` (ICD-10, as :func:`pathways.io.read_snds` emits them; a plain
``diagnosis`` counts as main) and ``ald`` (ICD-10 of the long-term illness, ``time`` = start, ``end`` = end or NaN
when open). Codes may carry a namespace (``ATC:``, ``CIM10:``, ``CCAM:``): it is ignored when matching prefixes.
Patients need ``birth`` and ``sex`` for the tables, and an observation window ``start`` / ``end`` covering the
years they are insured (the default, first to last event, drops the years without events).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pathways.cartography.rules import Criterion, RuleSet, load_rules
from pathways.data.eventlog import EventLog
from pathways.errors import PathwaysInputError

_EPOCH = np.datetime64("1970-01-01", "D")


@dataclass
class PatientYears:
    """The population of each year and its pathology flags.

    Attributes
    ----------
    patient : patient index (row of ``log.patients``) of each patient-year row, sorted by (patient, year).
    year : calendar year of each row.
    flags : CSR boolean matrix (rows x groups), after exclusions.
    groups : group ids (the rule set's order).
    age : age reached during the year, ``year - birth year`` (-1 when birth is unknown).
    sex : ``"M"``, ``"F"`` or ``""`` per row.
    department : department per row, or None when the patients table has no ``department`` column.
    died : True where the patient died during the row's year.
    """

    patient: np.ndarray
    year: np.ndarray
    flags: sp.csr_matrix
    groups: list[str]
    age: np.ndarray
    sex: np.ndarray
    department: np.ndarray | None
    died: np.ndarray

    @property
    def n_rows(self) -> int:
        return int(self.patient.size)

    def frame(self) -> pd.DataFrame:
        """One row per patient-year: patient, year, age, sex, (department), died and one boolean column per group."""
        out = pd.DataFrame({"patient": self.patient, "year": self.year, "age": self.age, "sex": self.sex,
                            "died": self.died})
        if self.department is not None:
            out["department"] = self.department
        dense = self.flags.toarray()
        for j, g in enumerate(self.groups):
            out[g] = dense[:, j]
        return out


#: lower bounds of the default age bands (the last band is open)
AGE_BANDS = (0, 15, 25, 35, 45, 55, 65, 75, 85)


def age_band(age: np.ndarray, bands: Sequence[int] = AGE_BANDS) -> np.ndarray:
    """Age band labels (``"45-54"``, ``"85+"``; ``"unknown"`` for a negative age).

    Examples
    --------
    >>> age_band(np.array([3, 15, 90, -1]), (0, 15, 65)).tolist()
    ['0-14', '15-64', '65+', 'unknown']
    """
    bands = [int(b) for b in bands]
    labels = band_labels(bands)
    idx = np.searchsorted(np.asarray(bands), np.asarray(age), side="right") - 1
    idx = np.where(np.asarray(age) < 0, len(bands), np.maximum(idx, 0))
    return np.asarray(labels, dtype=object)[idx]


def band_labels(bands: Sequence[int] = AGE_BANDS) -> list[str]:
    """Labels of the age bands starting at ``bands``, then ``"unknown"``.

    Examples
    --------
    >>> band_labels((0, 15, 65))
    ['0-14', '15-64', '65+', 'unknown']
    """
    bands = [int(b) for b in bands]
    return [f"{lo}-{hi - 1}" for lo, hi in pairwise(bands)] + [f"{bands[-1]}+", "unknown"]


def day_years(days: np.ndarray) -> np.ndarray:
    """Calendar year of each time in days since 1970-01-01 (NaN -> -1).

    Examples
    --------
    >>> day_years(np.array([0.0, 365.0, 18262.5, np.nan])).tolist()
    [1970, 1971, 2020, -1]
    """
    days = np.asarray(days, dtype=float)
    ok = np.isfinite(days)
    out = np.full(days.shape, -1, dtype=np.int32)
    dates = _EPOCH + np.floor(days[ok]).astype(np.int64).astype("timedelta64[D]")
    out[ok] = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    return out


def year_start(years: np.ndarray | int) -> np.ndarray:
    """Days since 1970-01-01 of 1 January of each year.

    Examples
    --------
    >>> year_start(np.array([1970, 2020])).tolist()
    [0.0, 18262.0]
    """
    y = np.asarray(years, dtype=np.int64)
    return (y - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64).astype(float)


def epoch_days(log: EventLog, values: np.ndarray) -> np.ndarray:
    """Times of ``log`` (in its unit and origin) as days since 1970-01-01."""
    if log.time_unit != "days":
        raise PathwaysInputError(f"cartography: event times must be in days (dates); the log's unit is "
                                 f"{log.time_unit!r}")
    shift = 0.0 if log.origin is None else (log.origin - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
    return np.asarray(values, dtype=float) + shift


def identify(log: EventLog, rules: RuleSet | str = "cartography", years: Sequence[int] | None = None,
             negative: str | None = "paid") -> PatientYears:
    """Flag every patient-year of ``years`` (default: every year with events) with the groups of ``rules``.

    Parameters
    ----------
    log : the EventLog (see the module docstring for what it must carry).
    rules : a :class:`~pathways.cartography.rules.RuleSet` or what :func:`load_rules` accepts.
    years : calendar years of the tables.
    negative : extras column whose negative values mark regularisation rows (with a negative ``value``): they
        count -1 dispensation or act, so that a cancelled dispensation nets out.

    Returns
    -------
    PatientYears : the population of each year (observation window overlapping it, alive on 1 January) with its
    flags.
    """
    rules = load_rules(rules)
    time = epoch_days(log, log.time)
    event_year = day_years(time)
    if years is None:
        known = event_year[event_year >= 0]
        if not known.size:
            raise PathwaysInputError("cartography: the log has no dated event; pass years=[...]")
        years = range(int(known.min()), int(known.max()) + 1)
    years = np.asarray(sorted({int(y) for y in years}), dtype=np.int32)
    if years.size == 0 or np.any(np.diff(years) != 1):
        raise PathwaysInputError("argument 'years': must be consecutive calendar years")
    n_years = int(years.size)
    key_space = log.n_patients * n_years
    sign = _event_sign(log, negative)
    pairs = [_criterion_hits(log, time, event_year, sign, rules, kind, years) for kind in ("ald", "hospital",
                                                                                          "drugs", "acts")]
    keys = np.concatenate([p[0] for p in pairs])
    crit = np.concatenate([p[1] for p in pairs])
    group_of = np.array([g for g, _ in rules.criteria], dtype=np.int64)
    raw = sp.csr_matrix((np.ones(keys.size, dtype=bool), (keys, group_of[crit])),
                        shape=(key_space, len(rules.groups)), dtype=bool)
    rows = _population(log, years)
    flags = _apply_priorities(raw[rows], rules)
    patient, year_index = np.divmod(rows, n_years)
    year = years[year_index]
    return PatientYears(patient=patient, year=year, flags=flags, groups=rules.ids, **_covariates(log, patient, year))


def _event_sign(log: EventLog, negative: str | None) -> np.ndarray:
    """+1 per event, -1 for regularisation rows (negative ``value`` or negative amount in ``extras[negative]``)."""
    neg = np.nan_to_num(log.value, nan=0.0) < 0
    if negative is not None and negative in log.extras:
        neg |= np.nan_to_num(np.asarray(log.extras[negative], dtype=float), nan=0.0) < 0
    return np.where(neg, -1, 1).astype(np.int64)


def _code_incidence(log: EventLog, criteria: list[Criterion]) -> sp.csr_matrix:
    """Boolean (vocabulary codes x criteria): the code matches a criterion's prefixes and none of its exclusions."""
    stripped = pd.Series(np.asarray(log.vocab.codes, dtype=object)).astype(str).str.upper()
    stripped = stripped.str.replace(r"^[A-Z0-9]+:", "", regex=True).str.replace(".", "", regex=False)
    cols = []
    for c in criteria:
        hit = stripped.str.startswith(c.codes).to_numpy(bool, copy=True)
        if c.exclude:
            hit &= ~stripped.str.startswith(c.exclude).to_numpy(bool)
        cols.append(sp.csc_matrix(hit[:, None]))
    return sp.hstack(cols, format="csr") if cols else sp.csr_matrix((len(stripped), 0), dtype=bool)


def _criterion_hits(log: EventLog, time: np.ndarray, event_year: np.ndarray, sign: np.ndarray, rules: RuleSet,
                    kind: str, years: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(patient-year key, criterion index) of every criterion of ``kind`` that holds."""
    index = [i for i, (_, c) in enumerate(rules.criteria) if c.kind == kind]
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    if not index:
        return empty
    criteria = [rules.criteria[i][1] for i in index]
    categories = sorted({cat for c in criteria for cat in c.categories})
    cat_codes = np.asarray(log.category.codes)
    wanted = [i for i, name in enumerate(log.category.categories) if str(name) in categories]
    events = np.flatnonzero(np.isin(cat_codes, wanted))
    if not events.size:
        return empty
    hits = _code_incidence(log, criteria)[log.code[events]].tocoo()
    ev, local = events[hits.row], hits.col.astype(np.int64)
    # an event counts only for the criteria that read its category (e.g. associated diagnoses)
    cat_ok = np.zeros((len(log.category.categories), len(criteria)), dtype=bool)
    for j, c in enumerate(criteria):
        cat_ok[[i for i, n in enumerate(log.category.categories) if str(n) in c.categories], j] = True
    keep = cat_ok[cat_codes[ev], local]
    ev, local = ev[keep], local[keep]
    first, last = _event_year_span(log, time, event_year, ev, kind, criteria, local)
    first, last = np.maximum(first, years[0]), np.minimum(last, years[-1])
    ok = last >= first
    ev, local, first, last = ev[ok], local[ok], first[ok], last[ok]
    n_span = (last - first + 1).astype(np.int64)
    rep = np.repeat(np.arange(ev.size), n_span)
    offset = np.arange(rep.size) - np.repeat(np.cumsum(n_span) - n_span, n_span)
    year_index = (first[rep] - years[0] + offset).astype(np.int64)
    key = log.patient[ev[rep]] * years.size + year_index
    pair = local[rep] * (log.n_patients * years.size) + key
    uniq, inverse = np.unique(pair, return_inverse=True)
    weight = sign[ev[rep]] if kind in ("drugs", "acts") else np.ones(rep.size, dtype=np.int64)
    count = np.bincount(inverse, weights=weight, minlength=uniq.size)
    crit_local, key_u = np.divmod(uniq, log.n_patients * years.size)
    need = np.array([c.min_count for c in criteria])[crit_local]
    held = count >= need
    return key_u[held], np.asarray(index, dtype=np.int64)[crit_local[held]]


def _event_year_span(log: EventLog, time: np.ndarray, event_year: np.ndarray, ev: np.ndarray, kind: str,
                     criteria: list[Criterion], local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last table year each matched event counts for: its year, plus the look-back years after it;
    ALD periods count for every year they overlap (open periods: every later year)."""
    first = event_year[ev].astype(np.int64)
    if kind == "ald":
        end = epoch_days(log, log.end[ev])
        last = np.where(np.isnan(end), np.iinfo(np.int32).max, day_years(end)).astype(np.int64)
        return first, np.maximum(last, first)
    lookback = np.array([c.lookback_years for c in criteria], dtype=np.int64)[local]
    return first, first + lookback - 1


def _population(log: EventLog, years: np.ndarray) -> np.ndarray:
    """Keys (patient * n_years + year index) of the patient-years in the population: observation window
    overlapping the year and no death before 1 January."""
    p = log.patients
    start, stop = epoch_days(log, p["start"].to_numpy(float)), epoch_days(log, p["end"].to_numpy(float))
    death = epoch_days(log, p["death"].to_numpy(float))
    ys, ye = year_start(years), year_start(years + 1)
    alive = np.isnan(death)[:, None] | (death[:, None] >= ys[None, :])
    inside = (start[:, None] < ye[None, :]) & (stop[:, None] >= ys[None, :]) & alive
    return np.flatnonzero(inside.ravel())


def _apply_priorities(flags: sp.csr_matrix, rules: RuleSet) -> sp.csr_matrix:
    """Drop group g where a group of its ``excluded_by`` holds, in priority order (exclusions see final flags).

    Works on the sorted row lists of each group, never on dense columns."""
    if not any(g.excluded_by for g in rules.groups):
        return flags.tocsr()
    cols = flags.tocsc()
    cols.sort_indices()
    index = {g.id: i for i, g in enumerate(rules.groups)}
    final: dict[int, np.ndarray] = {}
    for j in rules.order:
        rows = cols.indices[cols.indptr[j]:cols.indptr[j + 1]]
        for other in rules.groups[j].excluded_by:
            rows = rows[~np.isin(rows, final[index[other]], assume_unique=True)]
        final[j] = rows
    rows = np.concatenate([final[j] for j in range(len(rules.groups))])
    groups = np.repeat(np.arange(len(rules.groups)), [final[j].size for j in range(len(rules.groups))])
    return sp.csr_matrix((np.ones(rows.size, bool), (rows, groups)), shape=flags.shape, dtype=bool)


def _covariates(log: EventLog, patient: np.ndarray, year: np.ndarray) -> dict[str, np.ndarray | None]:
    p = log.patients
    birth_year = day_years(epoch_days(log, p["birth"].to_numpy(float)))[patient]
    age = np.where(birth_year >= 0, year - birth_year, -1).astype(np.int32)
    sex = p["sex"].astype(object).where(p["sex"].notna(), "").astype(str).to_numpy()[patient]
    dept = p["department"].astype(str).to_numpy()[patient] if "department" in p.columns else None
    death = day_years(epoch_days(log, p["death"].to_numpy(float)))[patient]
    return {"age": age, "sex": sex, "department": dept, "died": death == year}


__all__ = ["AGE_BANDS", "PatientYears", "age_band", "band_labels", "day_years", "epoch_days", "identify", "year_start"]
