"""Beneficiaries of one chunk: identity (pseudonymous ids, birth, sex, residence), chronic pathology
trajectories (onset, remission), long-term illness (ALD) declarations and deaths, year by year."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pathways.synthetic.snds.model import (
    AGE_BANDS,
    AGE_PYRAMID,
    GOMPERTZ,
    MISUSE,
    PATHOLOGIES,
    SHARE_FEMALE,
    age_band,
    prevalence_matrix,
)

DAY0 = np.datetime64("1970-01-01", "D")
#: Departments of residence (metropolitan France, 2A/2B as 20): the codes written in BEN_RES_DPT.
DEPARTMENTS = np.array([f"{d:03d}" for d in range(1, 96) if d != 20] + ["02A", "02B"])
NEVER = np.inf


def year_start(year: int) -> int:
    """Days since 1970-01-01 of January 1st of ``year``.

    Examples
    --------
    >>> year_start(1970), year_start(2020)
    (0, 18262)
    """
    return int((np.datetime64(f"{year}-01-01", "D") - DAY0).astype(np.int64))


def pseudonym(index: np.ndarray, salt: int, multiplier: int = 7_919_000_003) -> np.ndarray:
    """17-digit pseudonymous ids: a bijection of the global index modulo 10**17 (distinct ids, no collision).

    Examples
    --------
    >>> ids = pseudonym(np.arange(3), salt=11)
    >>> [len(i) for i in ids], len(set(ids))
    ([17, 17, 17], 3)
    """
    index = np.asarray(index, dtype=np.int64)
    if index.size and int(index.max()) * multiplier + salt >= 2**63:  # beyond int64: exact Python integers
        value = (index.astype(object) * multiplier + salt) % 10**17
        return np.array([f"{int(v):017d}" for v in value], dtype=object)
    # int64 arithmetic and Arrow formatting: no Python formatting per patient
    value = (index * np.int64(multiplier) + np.int64(salt)) % np.int64(10**17)
    return pc.utf8_lpad(pa.array(value).cast(pa.string()), 17, "0").to_numpy(zero_copy_only=False)


def department_codes(dept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dictionary indices and labels of department indices: ``np.unique(DEPARTMENTS[dept],
    return_inverse=True)`` (sorted labels of the departments present) without sorting strings per row.

    Examples
    --------
    >>> labels, index = department_codes(np.array([95, 0, 95]))
    >>> labels.tolist(), index.tolist()
    (['001', '02B'], [1, 0, 1])
    """
    order = np.argsort(DEPARTMENTS, kind="stable")  # DEPARTMENTS in text order ("02A" sorts before "021")
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size)
    code = rank[np.asarray(dept, dtype=np.int64)]
    present = np.bincount(code, minlength=order.size) > 0
    return DEPARTMENTS[order][present], (np.cumsum(present) - 1)[code]


@dataclass
class Population:
    """Patients of a chunk (local index 0..n-1) and their pathology trajectories.

    ``onset``/``end`` are (patient, pathology) day arrays: the active interval of each pathology (``inf`` when
    never / never ending); ``icd`` the patient's ICD-10 code of each pathology (site of the cancer, ...);
    ``ald_start``/``ald_end`` the ALD declaration (``nan`` when none; ``ald_end`` inf when open).
    """

    index: np.ndarray
    pid: np.ndarray
    idt: np.ndarray
    birth: np.ndarray
    sex: np.ndarray
    dept: np.ndarray
    death: np.ndarray
    onset: np.ndarray
    end: np.ndarray
    remission: np.ndarray
    icd: np.ndarray
    ald_start: np.ndarray
    ald_end: np.ndarray
    shopper: np.ndarray

    @property
    def n(self) -> int:
        return int(self.index.size)

    def active(self, day: np.ndarray, patient: np.ndarray, k: int) -> np.ndarray:
        """Whether pathology ``k`` is active at ``day`` for ``patient`` (vectorised)."""
        return (self.onset[patient, k] <= day) & (day < self.end[patient, k])

    def ald_active(self, day: np.ndarray, patient: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Whether the ALD of pathology ``k`` covers ``day`` (False where ``k < 0``)."""
        kk = np.maximum(k, 0)
        start, stop = self.ald_start[patient, kk], self.ald_end[patient, kk]
        return (k >= 0) & (start <= day) & (day < stop)


def draw_population(gen: np.random.Generator, index: np.ndarray, years: tuple[int, ...], salt: int) -> Population:
    """Patients alive on January 1st of the first year, followed to the end of the last one."""
    n, k_path = index.size, len(PATHOLOGIES)
    start, stop = year_start(years[0]), year_start(years[-1] + 1)
    band = gen.choice(AGE_BANDS.size, n, p=AGE_PYRAMID / AGE_PYRAMID.sum())
    age0 = band * 10 + gen.random(n) * np.where(band == AGE_BANDS.size - 1, 15, 10)
    birth = np.floor(start - age0 * 365.25)
    sex = np.where(gen.random(n) < SHARE_FEMALE, 2, 1).astype(np.int32)
    dept = gen.integers(0, DEPARTMENTS.size, n)
    prev = prevalence_matrix()
    onset = np.full((n, k_path), NEVER)
    end = np.full((n, k_path), NEVER)
    remission = np.zeros((n, k_path), bool)
    # prevalent at the start: onset 0-8 years earlier
    ages = np.floor(age0).astype(np.int64)
    prevalent = gen.random((n, k_path)) < prev[:, age_band(ages)].T
    onset[prevalent] = start - np.floor(gen.random(int(prevalent.sum())) * 8 * 365)
    death = np.full(n, np.nan)
    hr = np.array([p.death_hr for p in PATHOLOGIES])
    incidence = np.array([p.incidence for p in PATHOLOGIES])
    remit = np.array([p.remission for p in PATHOLOGIES])
    for y in years:
        y0, y1 = year_start(y), year_start(y + 1)
        alive = np.isnan(death)
        age = np.floor((y0 - birth) / 365.25).astype(np.int64)
        p_onset = incidence[None, :] * prev[:, age_band(age)].T
        new = alive[:, None] & (onset == NEVER) & (gen.random((n, k_path)) < p_onset)
        onset[new] = y0 + np.floor(gen.random(int(new.sum())) * (y1 - y0))
        act = (onset < y1) & (end == NEVER)
        leave = act & (gen.random((n, k_path)) < remit[None, :])
        from_ = np.where(np.isfinite(onset), np.maximum(onset, y0), y0)
        when = from_ + np.floor(gen.random((n, k_path)) * np.maximum(y1 - from_, 0))
        end[leave] = np.minimum(when[leave] + 1, y1 - 1)
        remission |= leave
        active = (onset < y1) & (end > y0)
        q = np.exp(GOMPERTZ[0] + GOMPERTZ[1] * age) * np.prod(np.where(active, hr[None, :], 1.0), axis=1)
        dies = alive & (gen.random(n) < np.minimum(q, 0.9))
        death[dies] = y0 + np.floor(gen.random(int(dies.sum())) * (y1 - y0))
    dead = ~np.isnan(death)
    end[dead] = np.minimum(end[dead], death[dead][:, None])
    remission &= ~(dead[:, None] & (end >= death[:, None]))
    onset[onset >= stop] = NEVER
    icd = np.stack([gen.integers(0, len(p.icd), n) for p in PATHOLOGIES], axis=1)
    ald_num = np.array([p.ald[0] for p in PATHOLOGIES])
    p_ald = np.array([p.ald[1] for p in PATHOLOGIES])
    declared = (onset < stop) & (ald_num[None, :] > 0) & (gen.random((n, k_path)) < p_ald[None, :])
    ald_start = np.where(declared, onset + np.floor(gen.random((n, k_path)) * 60), np.nan)
    # an ALD outlives a remission by 1-3 years (surveillance), then ends; open ones carry the sentinel end date
    ald_end = np.where(declared & remission, end + np.floor(365 + gen.random((n, k_path)) * 730), np.inf)
    ald_end = np.where(declared, ald_end, np.nan)
    ald_start[declared & (ald_start >= stop)] = np.nan
    ald_end[np.isnan(ald_start)] = np.nan
    classes = np.array(sorted(MISUSE), dtype=object)
    shopper = np.where(gen.random(n) < 0.002, classes[gen.integers(0, classes.size, n)], "").astype(object)
    return Population(index=index, pid=pseudonym(index, salt), idt=pseudonym(index, salt + 7, 3_000_000_019),
                      birth=birth, sex=sex, dept=dept, death=death, onset=onset, end=end, remission=remission,
                      icd=icd, ald_start=ald_start, ald_end=ald_end, shopper=shopper)


__all__ = ["DEPARTMENTS", "NEVER", "Population", "department_codes", "draw_population", "pseudonym", "year_start"]
