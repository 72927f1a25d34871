"""Baseline covariates of a cohort study: sparse, high-dimensional, from the EventLog before each index date.

For every look-back window, each patient gets an indicator per code seen in ``[index - window, index)`` and per
ancestor of that code in the ATC (levels 1-4) and ICD-10 (category, chapter) hierarchies; then event counts, age,
age groups, sex, the Charlson comorbidity index (Quan et al. 2005 ICD-10 coding) and any user-chosen column.
Codes are rolled up once on the vocabulary (a code -> feature 0/1 matrix); patients are rolled up with one sparse
product, so the cost is one pass over the events in the windows.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pathways.cohort import match_codes
from pathways.data import EventLog, Vocabulary
from pathways.data.hierarchy import rollup_codes
from pathways.errors import PathwaysInputError

#: Charlson conditions: (name, weight, ICD-10 prefixes), after Quan et al. (2005), Med Care 43:1130.
CHARLSON: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("myocardial_infarction", 1, ("I21", "I22", "I252")),
    ("heart_failure", 1, ("I099", "I110", "I130", "I132", "I255", "I420", "I425", "I426", "I427", "I428", "I429",
                          "I43", "I50", "P290")),
    ("peripheral_vascular", 1, ("I70", "I71", "I731", "I738", "I739", "I771", "I790", "I792", "K551", "K558",
                                "K559", "Z958", "Z959")),
    ("cerebrovascular", 1, ("G45", "G46", "H340", "I60", "I61", "I62", "I63", "I64", "I65", "I66", "I67", "I68",
                            "I69")),
    ("dementia", 1, ("F00", "F01", "F02", "F03", "F051", "G30", "G311")),
    ("chronic_pulmonary", 1, ("I278", "I279", "J40", "J41", "J42", "J43", "J44", "J45", "J46", "J47", "J60", "J61",
                              "J62", "J63", "J64", "J65", "J66", "J67", "J684", "J701", "J703")),
    ("rheumatic", 1, ("M05", "M06", "M315", "M32", "M33", "M34", "M351", "M353", "M360")),
    ("peptic_ulcer", 1, ("K25", "K26", "K27", "K28")),
    ("mild_liver", 1, ("B18", "K700", "K701", "K702", "K703", "K709", "K713", "K714", "K715", "K717", "K73", "K74",
                       "K760", "K762", "K763", "K764", "K768", "K769", "Z944")),
    ("diabetes", 1, ("E100", "E101", "E106", "E108", "E109", "E110", "E111", "E116", "E118", "E119", "E120",
                     "E121", "E126", "E128", "E129", "E130", "E131", "E136", "E138", "E139", "E140", "E141", "E146",
                     "E148", "E149")),
    ("diabetes_complicated", 2, ("E102", "E103", "E104", "E105", "E107", "E112", "E113", "E114", "E115", "E117",
                                 "E122", "E123", "E124", "E125", "E127", "E132", "E133", "E134", "E135", "E137",
                                 "E142", "E143", "E144", "E145", "E147")),
    ("hemiplegia", 2, ("G041", "G114", "G801", "G802", "G81", "G82", "G830", "G831", "G832", "G833", "G834",
                       "G839")),
    ("renal", 2, ("I120", "I131", "N032", "N033", "N034", "N035", "N036", "N037", "N052", "N053", "N054", "N055",
                  "N056", "N057", "N18", "N19", "N250", "Z490", "Z491", "Z492", "Z940", "Z992")),
    ("cancer", 2, tuple(f"C{i:02d}" for i in [*range(27), *range(30, 35), *range(37, 42), 43,
                                               *range(45, 59), *range(60, 77), 81, 82, 83, 84, 85, 88,
                                               *range(90, 98)])),
    ("severe_liver", 3, ("I850", "I859", "I864", "I982", "K704", "K711", "K721", "K729", "K765", "K766", "K767")),
    ("metastatic", 6, ("C77", "C78", "C79", "C80")),
    ("hiv", 6, ("B20", "B21", "B22", "B24")),
)


@dataclass(frozen=True)
class Covariates:
    """Covariate matrix (scipy CSR, one row per study patient, float64) and one name per column."""

    matrix: sp.csr_matrix
    names: np.ndarray

    def __post_init__(self) -> None:
        if self.matrix.shape[1] != len(self.names):
            raise PathwaysInputError(f"names: {len(self.names)} names for {self.matrix.shape[1]} columns")

    def column(self, name: str) -> np.ndarray:
        """One covariate as a dense vector."""
        hit = np.flatnonzero(self.names == name)
        if hit.size == 0:
            raise PathwaysInputError(f"covariate {name!r} is not in the matrix")
        return self.matrix[:, hit[0]].toarray().ravel()


def code_features(vocab: Vocabulary, rollup: bool = True) -> tuple[sp.csr_matrix, np.ndarray]:
    """0/1 matrix code -> feature (the code itself and, with ``rollup``, its ATC and ICD-10 ancestors) and names.

    Examples
    --------
    >>> m, names = code_features(Vocabulary(["A10BA02", "E119"]))
    >>> names.tolist()
    ['atc1:A', 'atc2:A10', 'atc3:A10B', 'atc4:A10BA', 'code:A10BA02', 'code:E119', 'icd10:E11', 'icd10_chapter:IV']
    """
    codes = vocab.codes.astype(str).astype(object)
    pairs = [(np.arange(codes.size), "code:" + codes)]
    if rollup:
        levels = [("atc", k, f"atc{k}") for k in (1, 2, 3, 4)] + [("icd10", "category", "icd10"),
                                                                   ("icd10", "chapter", "icd10_chapter")]
        for system, level, tag in levels:
            up = rollup_codes(codes, system, level)
            moved = np.flatnonzero(up != codes)  # codes outside the system (or already at that level) stay as codes
            pairs.append((moved, f"{tag}:" + up[moved].astype(str).astype(object)))
    rows = np.concatenate([p[0] for p in pairs])
    labels = np.concatenate([np.asarray(p[1], dtype=object) for p in pairs])
    names, col = np.unique(labels.astype(str), return_inverse=True)
    matrix = sp.csr_matrix((np.ones(rows.size), (rows, col)), shape=(codes.size, names.size))
    matrix.data[:] = 1.0  # a code reaching one feature twice still counts once
    return matrix, names.astype(object)


def _window_counts(log: EventLog, patient: np.ndarray, index_time: np.ndarray, window: float,
                   keep_code: np.ndarray) -> sp.csr_matrix:
    """Patients x codes event counts in ``[index - window, index)`` (codes outside ``keep_code`` dropped)."""
    row_of = np.full(log.n_patients, -1, dtype=np.int64)
    row_of[patient] = np.arange(patient.size)
    row = row_of[log.patient]
    ok = row >= 0
    ref = np.full(log.n_patients, np.nan)
    ref[patient] = index_time
    t = log.time
    ok &= (t < ref[log.patient]) & (t >= ref[log.patient] - window) & keep_code[log.code]
    sel = np.flatnonzero(ok)
    return sp.csr_matrix((np.ones(sel.size), (row[sel], log.code[sel])), shape=(patient.size, log.n_codes))


def charlson_index(code_presence: sp.csr_matrix, vocab: Vocabulary) -> np.ndarray:
    """Charlson comorbidity index from a patients x codes presence matrix (each condition counted once)."""
    conditions = np.stack([match_codes(vocab, prefixes) for _, _, prefixes in CHARLSON], axis=1).astype(float)
    weights = np.array([w for _, w, _ in CHARLSON], dtype=float)
    present = (code_presence @ sp.csr_matrix(conditions)) > 0
    return np.asarray(present.astype(float) @ weights).ravel()


def _demographics(log: EventLog, patient: np.ndarray, index_time: np.ndarray,
                  age_group_years: float) -> tuple[list[np.ndarray], list[str]]:
    pts = log.patients
    cols, names = [], []
    if "birth" in pts and pts["birth"].notna().any():
        days_per_year = 365.25 if log.time_unit == "days" else 1.0
        age = (index_time - pts["birth"].to_numpy(float)[patient]) / days_per_year
        age = np.nan_to_num(age, nan=np.nanmean(age) if np.isfinite(age).any() else 0.0)
        cols.append(age)
        names.append("age")
        group = np.floor(age / age_group_years).astype(np.int64)
        for g in np.unique(group):
            cols.append((group == g).astype(float))
            names.append(f"age_group:{g * age_group_years:g}-{(g + 1) * age_group_years:g}")
    if "sex" in pts:
        cols.append((pts["sex"].astype(object).to_numpy()[patient] == "F").astype(float))
        names.append("sex:F")
    return cols, names


def baseline_covariates(log: EventLog, patient: np.ndarray, index_time: np.ndarray, *,
                        windows: Sequence[float] = (365.0, 30.0), exclude_codes: Iterable[str] | None = None,
                        rollup: bool = True, age_group_years: float = 5.0, charlson: bool = True,
                        extra: pd.DataFrame | None = None, min_patients: int = 1) -> Covariates:
    """Sparse baseline covariates of study patients.

    Parameters
    ----------
    log : the population's events.
    patient, index_time : study patients (population indices) and their index times.
    windows : look-back windows in days; each gives its own block of code indicators (``w365:code:E11``).
    exclude_codes : code sets left out (the target and comparator drugs: they define treatment, not confounding).
    rollup : add ATC and ICD-10 ancestors of every code.
    age_group_years : width of the age-group indicators.
    charlson : add the Charlson comorbidity index (longest window).
    extra : user-chosen covariates: numeric columns indexed by population patient index.
    min_patients : drop code indicators present in fewer patients (1 = drop all-zero columns).
    """
    patient = np.asarray(patient, dtype=np.int64)
    index_time = np.asarray(index_time, dtype=np.float64)
    if patient.shape != index_time.shape:
        raise PathwaysInputError("patient, index_time: expected one index time per study patient")
    keep_code = np.ones(log.n_codes, dtype=bool)
    if exclude_codes is not None:
        keep_code &= ~match_codes(log.vocab, list(exclude_codes))
    features, feature_names = code_features(log.vocab, rollup)
    blocks, names = [], []
    longest = None
    for window in sorted(windows, reverse=True):
        counts = _window_counts(log, patient, index_time, float(window), keep_code)
        if longest is None:
            longest = counts
        presence = (counts > 0).astype(np.float64) @ features
        presence.data[:] = 1.0
        presence = sp.csc_matrix(presence)
        used = np.flatnonzero(np.diff(presence.indptr) >= min_patients)
        blocks.append(presence[:, used])
        names.extend(f"w{window:g}:{n}" for n in feature_names[used])
        n_events = np.asarray(counts.sum(axis=1)).ravel()
        n_codes = np.diff(counts.indptr).astype(float)
        blocks.append(sp.csc_matrix(np.c_[np.log1p(n_events), np.log1p(n_codes)]))
        names.extend([f"w{window:g}:log1p_events", f"w{window:g}:log1p_distinct_codes"])
    dense_cols, dense_names = _demographics(log, patient, index_time, age_group_years)
    if charlson and longest is not None:
        dense_cols.append(charlson_index((longest > 0).astype(np.float64), log.vocab))
        dense_names.append("charlson_index")
    if extra is not None:
        values = extra.reindex(patient).to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise PathwaysInputError(f"extra: {int((~np.isfinite(values)).sum())} missing or non-finite values "
                                     f"for study patients")
        dense_cols.extend(values.T)
        dense_names.extend(f"extra:{c}" for c in extra.columns)
    if dense_cols:
        blocks.append(sp.csc_matrix(np.column_stack(dense_cols)))
        names.extend(dense_names)
    matrix = sp.hstack(blocks, format="csr", dtype=np.float64) if blocks else sp.csr_matrix((patient.size, 0))
    return Covariates(matrix, np.asarray(names, dtype=object))


__all__ = ["CHARLSON", "Covariates", "baseline_covariates", "charlson_index", "code_features"]
