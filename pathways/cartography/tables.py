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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pathways import disclosure
from pathways.cartography.costs import UNATTRIBUTED, Allocation
from pathways.cartography.identify import AGE_BANDS, PatientYears, age_band
from pathways.errors import PathwaysInputError

TOTAL = "total"
#: count column -> the columns blanked with it (every column from which the count could be recomputed); declared
#: once in :data:`pathways.disclosure.TABLES` ("cartography")
SUPPRESSION = {count: (count, *cols) for count, cols in disclosure.TABLES["cartography"].per_count.items()}
_DECOMPOSITION = ("cost_change", "volume_effect", "cost_per_patient_effect")


def cartography_table(py: PatientYears, allocation: Allocation, by: Sequence[str] = ("age_band", "sex", "department"),
                      bands: Sequence[int] = AGE_BANDS, min_cell_count: int | None = None) -> pd.DataFrame:
    """The yearly table over ``by`` (any of ``age_band``, ``sex``, ``department``; ``()`` = one row per year and
    group); cells without population are left out. See the module docstring for the columns."""
    return finish_table(table_sums(py, allocation, by, bands), min_cell_count)


def table_sums(py: PatientYears, allocation: Allocation, by: Sequence[str] = ("age_band", "sex", "department"),
               bands: Sequence[int] = AGE_BANDS) -> TableSums:
    """The additive part of the table: population per (year, stratum) and, per (year, group, stratum) with any
    patient or cost, prevalent and incident counts and cost cents. Sums of chunks of patients add up
    (:meth:`TableSums.add`)."""
    unknown = [b for b in by if b not in ("age_band", "sex", "department")]
    if unknown:
        raise PathwaysInputError(f"argument 'by': unknown column(s) {unknown}; use age_band, sex, department")
    by = [b for b in by if b != "department" or py.department is not None]
    keys = pd.DataFrame({"year": py.year})
    for b in by:
        keys[b] = {"age_band": lambda: age_band(py.age, bands), "sex": lambda: py.sex,
                   "department": lambda: py.department}[b]()
    population = keys.groupby(["year", *by], sort=False).size().rename("population").reset_index()
    flags = py.flags.tocsr()
    row = np.repeat(np.arange(py.n_rows), np.diff(flags.indptr))
    col = flags.indices.astype(np.int64)
    group_names = np.asarray(list(py.groups) + [UNATTRIBUTED, TOTAL], dtype=object)
    cents = np.asarray(allocation.cents[row, col]).ravel() if row.size else np.zeros(0)
    totals = allocation.unattributed + np.asarray(allocation.cents.sum(axis=1)).ravel()
    everyone = np.arange(py.n_rows)
    entries = pd.concat([
        keys.iloc[row].assign(group=group_names[col], prevalent=1, incident=_incident(py, row, col).astype(int),
                              cost=cents),
        keys.assign(group=UNATTRIBUTED, prevalent=1, incident=0, cost=allocation.unattributed[everyone]),
        keys.assign(group=TOTAL, prevalent=1, incident=0, cost=totals)], ignore_index=True)
    cells = entries.groupby(["year", "group", *by], sort=False)[["prevalent", "incident", "cost"]].sum()
    return TableSums(population, cells.reset_index(), list(by), list(group_names))


def _incident(py: PatientYears, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """True where the patient's row of the year before does not hold the group (or does not exist)."""
    n_groups = py.flags.shape[1]
    key = (py.patient[row].astype(np.int64) * 10_000 + py.year[row]) * n_groups + col
    held = np.sort(key)
    prev = key - n_groups
    if not held.size:
        return np.zeros(0, dtype=bool)
    pos = np.minimum(np.searchsorted(held, prev), held.size - 1)
    return held[pos] != prev


@dataclass
class TableSums:
    """Additive sums of a table (see :func:`table_sums`): ``population`` (year, strata, population), ``cells``
    (year, group, strata, prevalent, incident, cost in cents), the strata columns ``by`` and the ``groups``."""

    population: pd.DataFrame
    cells: pd.DataFrame
    by: list[str]
    groups: list[str]

    def add(self, other: TableSums) -> TableSums:
        """The sums of two disjoint sets of patients."""
        keys = ["year", *self.by]
        population = pd.concat([self.population, other.population]).groupby(keys, sort=False).sum().reset_index()
        cells = pd.concat([self.cells, other.cells]).groupby(["year", "group", *self.by], sort=False).sum()
        return TableSums(population, cells.reset_index(), self.by, self.groups)


def finish_table(sums: TableSums, min_cell_count: int | None = None) -> pd.DataFrame:
    """Rates, means, the year-on-year decomposition and suppression from the additive sums."""
    full = sums.population.merge(pd.DataFrame({"group": sums.groups}), how="cross")
    full = full.merge(sums.cells, on=["year", "group", *sums.by], how="left")
    full[["prevalent", "incident", "cost"]] = full[["prevalent", "incident", "cost"]].fillna(0)
    first = int(full["year"].min()) if len(full) else 0
    pseudo = full["group"].isin([UNATTRIBUTED, TOTAL])
    full["incident"] = full["incident"].astype(float).where((full["year"] != first) & ~pseudo)
    n, cost = full["prevalent"].to_numpy(float), full["cost"].to_numpy(float) / 100
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, cost / n, np.nan)
    prev = full[["year", "group", *sums.by, "prevalent", "cost"]].assign(year=full["year"] + 1)
    before = full[["year", "group", *sums.by]].merge(prev, on=["year", "group", *sums.by], how="left")
    n0 = before["prevalent"].fillna(0).to_numpy(float)
    c0 = before["cost"].fillna(0).to_numpy(float) / 100
    m0 = np.where(n0 > 0, c0 / np.maximum(n0, 1), np.where(n > 0, mean, 0.0))
    m1 = np.where(n > 0, mean, m0)
    later = (full["year"] != first).to_numpy()
    out = full[["year", "group", *sums.by]].copy()
    out["population"] = full["population"].astype(np.int64)
    out["prevalent"] = full["prevalent"].astype(np.int64)
    out["incident"] = full["incident"]
    out["prevalence_rate"] = n / full["population"].to_numpy(float)
    out["total_cost"] = cost
    out["mean_cost"] = mean
    out["cost_change"] = np.where(later, cost - c0, np.nan)
    out["volume_effect"] = np.where(later, (n - n0) * (m1 + m0) / 2, np.nan)
    out["cost_per_patient_effect"] = np.where(later, (m1 - m0) * (n + n0) / 2, np.nan)
    order = {g: i for i, g in enumerate(sums.groups)}
    out = out.assign(_g=out["group"].map(order)).sort_values(["year", "_g", *sums.by], kind="stable")
    out = out.drop(columns="_g").reset_index(drop=True)
    return suppress(out, min_cell_count)


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
        small_before = merged["_small"].eq(True).to_numpy(bool)  # no previous-year row: not small
        for col in _DECOMPOSITION:
            if col in out.columns:
                out[col] = out[col].astype(float).where(~small_before)
        out["suppressed"] |= small_before
    hidden = disclosure.suppress(out, k, "cartography")  # the per-count rule lives in pathways.disclosure
    for col in {c for cols in SUPPRESSION.values() for c in cols}:
        if col in out.columns:
            out[col] = hidden[col]
    out["suppressed"] |= hidden["suppressed"].to_numpy(bool)
    return out


__all__ = ["SUPPRESSION", "TOTAL", "TableSums", "cartography_table", "finish_table", "suppress", "table_sums"]
