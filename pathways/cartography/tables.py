"""Yearly tables: per year x group x age band x sex (x department when present): population, prevalent and
incident patients, prevalence rate, total and mean allocated cost, and the year-on-year change of the cost split
into a volume effect and a cost-per-patient effect; small counts suppressed.

Definitions (``docs/cartography.md``): *prevalent* = patient-years flagged with the group; *incident* = flagged in
the year and not in the year before (undefined, NaN, in the first year); *prevalence rate* = prevalent / population
of the cell; *total cost* = spending allocated to the group (euros); *mean cost* = total / prevalent. With C = N m
(patients x mean cost), the change C1 - C0 = (N1 - N0)(m1 + m0)/2 [volume] + (m1 - m0)(N1 + N0)/2 [cost per
patient], exactly (a cell empty in one of the years has its change all in volume). Two pseudo-groups complete each
cell: ``unattributed`` (the spending not allocated to a group) and ``total`` (all spending; population).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from pathways.cartography.costs import UNATTRIBUTED, Allocation
from pathways.cartography.identify import AGE_BANDS, PatientYears, age_band
from pathways.errors import PathwaysInputError

TOTAL = "total"
#: count column -> the columns blanked with it (every column from which the count could be recomputed)
SUPPRESSION = {
    "population": ("population", "prevalence_rate"),
    "prevalent": ("prevalent", "incident", "prevalence_rate", "mean_cost", "cost_change", "volume_effect",
                  "cost_per_patient_effect"),
    "incident": ("incident",),
}
_DECOMPOSITION = ("cost_change", "volume_effect", "cost_per_patient_effect")


def cartography_table(py: PatientYears, allocation: Allocation, by: Sequence[str] = ("age_band", "sex", "department"),
                      bands: Sequence[int] = AGE_BANDS, min_cell_count: int | None = None) -> pd.DataFrame:
    """The yearly table over ``by`` (any of ``age_band``, ``sex``, ``department``; ``()`` = one row per year and
    group); cells without population are left out. See the module docstring for the columns."""
    unknown = [b for b in by if b not in ("age_band", "sex", "department")]
    if unknown:
        raise PathwaysInputError(f"argument 'by': unknown column(s) {unknown}; use age_band, sex, department")
    by = [b for b in by if b != "department" or py.department is not None]
    years = np.unique(py.year)
    year_idx = np.searchsorted(years, py.year)
    levels, codes = [], []
    for b in by:
        values = {"age_band": lambda: age_band(py.age, bands), "sex": lambda: py.sex,
                  "department": lambda: py.department}[b]()
        lv, cd = np.unique(np.asarray(values, dtype=str), return_inverse=True)
        levels.append(lv)
        codes.append(cd.astype(np.int64))
    n_groups = len(py.groups)
    group_names = list(py.groups) + [UNATTRIBUTED, TOTAL]
    cell_shape = (years.size, len(group_names), *[lv.size for lv in levels])
    stratum = np.zeros(py.n_rows, dtype=np.int64)
    for lv, cd in zip(levels, codes):
        stratum = stratum * lv.size + cd
    n_strata = int(np.prod([lv.size for lv in levels], dtype=np.int64))
    grid = _counts(py, allocation, year_idx, stratum, n_strata, len(group_names), years.size)
    population = np.bincount(year_idx * n_strata + stratum, minlength=years.size * n_strata).reshape(
        years.size, 1, n_strata)
    frame = _assemble(grid, population, years, group_names, by, levels, cell_shape)
    return suppress(frame, min_cell_count)


def _counts(py: PatientYears, allocation: Allocation, year_idx: np.ndarray, stratum: np.ndarray, n_strata: int,
            n_cols: int, n_years: int) -> dict[str, np.ndarray]:
    """Dense (years, groups, strata) arrays of prevalent, incident (NaN in the first year) and cost cents."""
    flags = py.flags.tocsr()
    n_groups = flags.shape[1]
    row = np.repeat(np.arange(py.n_rows), np.diff(flags.indptr))
    col = flags.indices.astype(np.int64)
    cents = np.asarray(allocation.cents[row, col]).ravel() if row.size else np.zeros(0)
    # incident: the same patient's previous-year row does not hold the group
    key = (py.patient[row].astype(np.int64) * n_years + year_idx[row]) * n_groups + col
    held = np.sort(key)
    prev = key - n_groups
    pos = np.minimum(np.searchsorted(held, prev), max(held.size - 1, 0))
    incident = ~((held.size > 0) & (held[pos] == prev)) if held.size else np.zeros(0, bool)
    size = n_years * n_cols * n_strata
    cell = (year_idx[row] * n_cols + col) * n_strata + stratum[row]
    all_rows = np.arange(py.n_rows)
    unattr = (year_idx * n_cols + n_groups) * n_strata + stratum
    total = (year_idx * n_cols + n_groups + 1) * n_strata + stratum
    totals = allocation.unattributed + np.asarray(allocation.cents.sum(axis=1)).ravel()
    prevalent = (np.bincount(cell, minlength=size) + np.bincount(unattr, minlength=size)
                 + np.bincount(total, minlength=size))
    inc = np.bincount(cell[incident], minlength=size).astype(float)
    cost = (np.bincount(cell, weights=cents, minlength=size)
            + np.bincount(unattr, weights=allocation.unattributed[all_rows], minlength=size)
            + np.bincount(total, weights=totals, minlength=size))
    shape = (n_years, n_cols, n_strata)
    inc = inc.reshape(shape)
    inc[0] = np.nan
    inc[:, n_groups:] = np.nan  # incidence is a group's notion
    return {"prevalent": prevalent.reshape(shape), "incident": inc, "cost": np.rint(cost).reshape(shape)}


def _assemble(grid: dict[str, np.ndarray], population: np.ndarray, years: np.ndarray, group_names: list[str],
              by: Sequence[str], levels: list[np.ndarray], cell_shape: tuple[int, ...]) -> pd.DataFrame:
    n = grid["prevalent"].astype(float)
    cost = grid["cost"] / 100.0
    pop = np.broadcast_to(population, n.shape).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, cost / n, np.nan)
        rate = np.where(pop > 0, n / pop, np.nan)
    change, volume, per_patient = _decompose(n, mean, cost)
    index = pd.MultiIndex.from_product([years, group_names, *levels], names=["year", "group", *by])
    frame = pd.DataFrame({
        "population": pop.ravel(), "prevalent": n.ravel(), "incident": grid["incident"].ravel(),
        "prevalence_rate": rate.ravel(), "total_cost": cost.ravel(), "mean_cost": mean.ravel(),
        "cost_change": change.ravel(), "volume_effect": volume.ravel(), "cost_per_patient_effect": per_patient.ravel(),
    }, index=index).reset_index()
    frame = frame[frame["population"] > 0].reset_index(drop=True)
    for col in ("population", "prevalent"):
        frame[col] = frame[col].astype(np.int64)
    return frame


def _decompose(n: np.ndarray, mean: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year-on-year change of the cost (axis 0 = years) and its volume / cost-per-patient split (NaN in year 1)."""
    change = np.full(n.shape, np.nan)
    volume = np.full(n.shape, np.nan)
    per_patient = np.full(n.shape, np.nan)
    if n.shape[0] < 2:
        return change, volume, per_patient
    n0, n1, c0, c1 = n[:-1], n[1:], cost[:-1], cost[1:]
    m0 = np.where(n0 > 0, mean[:-1], np.where(n1 > 0, mean[1:], 0.0))
    m1 = np.where(n1 > 0, mean[1:], m0)
    change[1:] = c1 - c0
    volume[1:] = (n1 - n0) * (m1 + m0) / 2
    per_patient[1:] = (m1 - m0) * (n1 + n0) / 2
    return change, volume, per_patient


def suppress(frame: pd.DataFrame, min_cell_count: int | None) -> pd.DataFrame:
    """Blank counts in ``1 .. min_cell_count - 1`` and every column from which they could be recomputed
    (:data:`SUPPRESSION`); the year-on-year columns also when the previous year's count of the cell was small.
    Adds a boolean ``suppressed`` column. Zero counts stay (an empty cell discloses nobody).

    Examples
    --------
    >>> t = pd.DataFrame({"year": [2020], "group": ["g"], "population": [50], "prevalent": [3], "incident": [1],
    ...                   "prevalence_rate": [0.06], "total_cost": [90.0], "mean_cost": [30.0]})
    >>> suppress(t, 5)[["population", "prevalent", "prevalence_rate", "total_cost", "mean_cost"]].iloc[0].tolist()
    [50.0, nan, nan, 90.0, nan]
    """
    out = frame.copy()
    out["suppressed"] = False
    if min_cell_count is None or out.empty:
        return out
    k = int(min_cell_count)
    if k < 1:
        raise PathwaysInputError(f"argument 'min_cell_count': must be >= 1 or None, got {min_cell_count!r}")
    small = {c: ((out[c] > 0) & (out[c] < k)).to_numpy() for c in SUPPRESSION if c in out.columns}
    keys = [c for c in out.columns if c in ("group", "age_band", "sex", "department")]
    if "prevalent" in small and "year" in out.columns and pd.api.types.is_numeric_dtype(out["year"]):
        prev = out[keys + ["year"]].assign(year=out["year"] + 1, _small=small["prevalent"])
        merged = out[keys + ["year"]].merge(prev, on=keys + ["year"], how="left")
        small_before = merged["_small"].fillna(False).to_numpy(bool)
        for col in _DECOMPOSITION:
            if col in out.columns:
                out[col] = out[col].astype(float).where(~small_before)
        out["suppressed"] |= small_before
    for count, columns in SUPPRESSION.items():
        if count not in small:
            continue
        for col in columns:
            if col in out.columns:
                out[col] = out[col].astype(float).where(~small[count])
        out["suppressed"] |= small[count]
    return out


__all__ = ["SUPPRESSION", "TOTAL", "cartography_table", "suppress"]
