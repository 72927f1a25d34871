"""Costs per patient-year by care category, and the allocation of each patient's spending to their groups.

Amounts are event-level extras columns (default ``paid``: the reimbursed amount, SNDS ``PRS_PAI_MNT``, and
``base``: the reimbursement base, ``BSE_REM_MNT``); hospital stays carry their cost on the ``stay`` event.
Regularisation rows (negative amounts) are summed with the rows they correct, so they net out. All sums are done
in integer cents, so totals are exact. An event's amounts belong to the year of its ``time``, except the events of
:data:`DISCHARGE_CATEGORIES` (hospital stays) that have an ``end``: they belong to the year of their end (discharge).

Allocation (documented in ``docs/cartography.md``): for each year, the yearly paid amount of every patient is
regressed (least squares) on the group indicators, an intercept, age bands and sex. Each patient's spending is then
split between their groups in proportion to the positive group coefficients, and the ``unattributed`` part (in
proportion to the positive intercept + age + sex prediction); patients whose components are all zero give
everything to ``unattributed``. Shares are rounded to the cent by largest remainders, so the allocated amounts of a
patient add up to their spending exactly, and group totals (with ``unattributed``) to total spending.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pathways.cartography.identify import (
    AGE_BANDS,
    PatientYears,
    age_band,
    band_labels,
    day_years,
    epoch_days,
)
from pathways.data.eventlog import EventLog
from pathways.errors import PathwaysInputError

#: care category -> EventLog categories whose amounts it sums (anything else goes to ``other``)
CARE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "hospital": ("stay", "hospital_act"),
    "drugs": ("drug",),
    "consultations_acts": ("act", "consultation", "visit"),
}
#: ``service`` events (ER_PRS_F lines without detail, ``read_snds(sources=(..., "dcir_services"))``, codes
#: ``PRS:<PRS_NAT_REF>``) -> care category by code prefix (the longest matching prefix wins; no match: ``other``).
#: PRS_NAT_REF 1xxx are medical fees (consultations C 1111, CS 1112, visits, technical acts); 3336 is the pharmacy
#: dispensing fee, counted with the drugs it is billed with. Pass ``service_families`` with the families of your
#: IR_NAT_V nomenclature for finer categories (nursing, biology, transport, ...).
SERVICE_FAMILIES: dict[str, str] = {"PRS:1": "consultations_acts", "PRS:3336": "drugs"}
#: EventLog categories whose amounts are booked in the year of the event's ``end`` when it has one: a PMSI stay
#: belongs to the year of its discharge (the annual PMSI file holds the stays ended that year; the CNAM
#: cartography books a stay there), so a stay spanning New Year costs in its discharge year, not its admission's.
DISCHARGE_CATEGORIES: tuple[str, ...] = ("stay",)
UNATTRIBUTED = "unattributed"


@dataclass
class Allocation:
    """Allocated spending in cents: ``cents`` (rows x groups CSR, int64), ``unattributed`` (per row), the per-year
    regression ``coefficients`` (year, term, coefficient) and the ``amount`` column allocated."""

    cents: sp.csr_matrix
    unattributed: np.ndarray
    coefficients: pd.DataFrame
    amount: str


def patient_year_costs(log: EventLog, py: PatientYears, amounts: Sequence[str] = ("paid", "base"),
                       care_categories: Mapping[str, Sequence[str]] | None = None,
                       service_families: Mapping[str, str] | None = None,
                       discharge_categories: Sequence[str] = DISCHARGE_CATEGORIES) -> pd.DataFrame:
    """Spending per patient-year row of ``py``: ``<amount>_<care category>`` and ``<amount>_total`` in cents.

    An event belongs to the year of its ``time``; an event of ``discharge_categories`` (default: ``stay``) with an
    ``end`` belongs to the year of its end (a stay: its discharge). Events outside the rows of ``py`` (other
    years, outside the population) are ignored; missing amounts count 0.
    Events of category ``service`` go to a care category by their code (``service_families``, default
    :data:`SERVICE_FAMILIES`), whatever ``care_categories`` says of ``service``.

    Raises
    ------
    PathwaysInputError : an amount column absent from ``log.extras``; a service family naming an unknown care
        category.
    """
    cats = dict(CARE_CATEGORIES if care_categories is None else care_categories)
    families = dict(SERVICE_FAMILIES if service_families is None else service_families)
    unknown = sorted(set(families.values()) - set(cats) - {"other"})
    if unknown:
        raise PathwaysInputError(f"cartography costs: service_families maps to unknown care categories {unknown}; "
                                 f"choose among {sorted(cats) + ['other']}")
    missing = [a for a in amounts if a not in log.extras]
    if missing:
        raise PathwaysInputError(f"cartography costs: amount column(s) {missing} not in the log's extras "
                                 f"(available: {sorted(log.extras)}); pass amounts=[...] or add them")
    discharged = set(discharge_categories)
    by_end = np.isin(np.asarray(log.category.codes),
                     [i for i, c in enumerate(log.category.categories) if str(c) in discharged])
    row = event_rows(log, py, by_end=by_end)
    has = row >= 0
    names = list(cats) + ["other"]
    care = np.full(len(log.category.categories), len(cats), dtype=np.int64)
    for k, (_, members) in enumerate(cats.items()):
        care[[i for i, c in enumerate(log.category.categories) if str(c) in set(members)]] = k
    event_care = care[np.asarray(log.category.codes)[has]] if len(log.category.categories) else \
        np.full(int(has.sum()), len(cats), dtype=np.int64)
    service = [i for i, c in enumerate(log.category.categories) if str(c) == "service"]
    if service:
        names_ = list(cats) + ["other"]
        code_care = np.full(len(log.vocab.codes), len(cats), dtype=np.int64)
        vocab = np.asarray(log.vocab.codes).astype(str)
        for prefix in sorted(families, key=len):  # longer prefixes override shorter ones
            code_care[np.char.startswith(vocab, prefix)] = names_.index(families[prefix])
        is_service = np.asarray(log.category.codes)[has] == service[0]
        event_care[is_service] = code_care[np.asarray(log.code)[has][is_service]]
    out = {}
    for a in amounts:
        cents = to_cents(np.asarray(log.extras[a], dtype=float)[has])
        flat = row[has] * len(names) + event_care
        sums = np.bincount(flat, weights=cents, minlength=py.n_rows * len(names))
        table = np.rint(sums).astype(np.int64).reshape(py.n_rows, len(names))
        for k, name in enumerate(names):
            out[f"{a}_{name}"] = table[:, k]
        out[f"{a}_total"] = table.sum(axis=1)
    return pd.DataFrame(out)


def to_cents(amounts: np.ndarray) -> np.ndarray:
    """Amounts (euros, NaN = 0) as integer cents.

    Examples
    --------
    >>> to_cents(np.array([12.35, -0.1, np.nan])).tolist()
    [1235, -10, 0]
    """
    return np.rint(np.nan_to_num(np.asarray(amounts, dtype=float), nan=0.0) * 100).astype(np.int64)


def event_rows(log: EventLog, py: PatientYears, by_end: np.ndarray | None = None) -> np.ndarray:
    """Row of ``py`` each event falls in (its patient and the calendar year of its ``time``, or of its ``end``
    where ``by_end`` is True and the end is known), or -1."""
    years = np.unique(py.year)
    if not years.size:
        return np.full(log.n_events, -1, dtype=np.int64)
    y0, n_years = int(years[0]), int(years[-1]) - int(years[0]) + 1
    row_key = py.patient.astype(np.int64) * n_years + (py.year - y0)
    when = log.time if by_end is None else np.where(by_end & ~np.isnan(log.end), log.end, log.time)
    ev_year = day_years(epoch_days(log, when)).astype(np.int64)
    inside = (ev_year >= y0) & (ev_year < y0 + n_years)
    ev_key = log.patient.astype(np.int64) * n_years + (ev_year - y0)
    pos = np.minimum(np.searchsorted(row_key, ev_key), max(row_key.size - 1, 0))
    found = inside & (row_key[pos] == ev_key)
    return np.where(found, pos, -1)


def allocate(py: PatientYears, costs: pd.DataFrame, amount: str = "paid_total", bands: Sequence[int] = AGE_BANDS,
             coefficients: Mapping[str, float] | None = None, fit: pd.DataFrame | None = None) -> Allocation:
    """Split each patient-year's ``costs[amount]`` (cents) between its groups and ``unattributed`` (see module).

    ``coefficients``: fixed attributable costs in euros per patient-year (group id -> cost, ``unattributed`` -> the
    base of every row) instead of the regression, e.g. published ones; groups left out get 0. ``fit``: the
    regression already solved (:func:`solve_allocation`, e.g. over every chunk of a population); by default it is
    fitted on ``py`` itself.
    """
    if amount not in costs.columns:
        raise PathwaysInputError(f"allocate: no column {amount!r} in the costs (have {list(costs.columns)})")
    terms = design_terms(py.groups, bands)
    if coefficients is not None:
        unknown = sorted(set(coefficients) - set(py.groups) - {UNATTRIBUTED})
        if unknown:
            raise PathwaysInputError(f"allocate: coefficients for unknown group(s) {unknown}")
        fixed = {f"group:{g}": float(v) for g, v in coefficients.items() if g != UNATTRIBUTED}
        fixed["intercept"] = float(coefficients.get(UNATTRIBUTED, 0.0))
        fit = pd.DataFrame([{"year": int(y), "term": t, "coefficient": fixed.get(t, 0.0)}
                            for y in np.unique(py.year) for t in terms])
    elif fit is None:
        fit = solve_allocation(normal_equations(py, costs, amount, bands), terms)
    y = costs[amount].to_numpy(np.int64)
    n_groups = len(py.groups)
    flags = py.flags.tocsr()
    nz_row = np.repeat(np.arange(py.n_rows), np.diff(flags.indptr))
    nz_col = flags.indices.astype(np.int64)
    per_entry = np.zeros(nz_col.size)  # positive group coefficient of each (row, group) flag
    base_comp = np.zeros(py.n_rows)
    cov = _covariate_design(py, bands)
    for year in np.unique(py.year):
        beta = 100.0 * _beta(fit, int(year), terms)
        rows = np.flatnonzero(py.year == year)
        base_comp[rows] = np.maximum(cov[rows] @ beta[n_groups:], 0.0)
        in_year = py.year[nz_row] == year
        per_entry[in_year] = np.maximum(beta[:n_groups][nz_col[in_year]], 0.0)
    entry_row = np.concatenate([nz_row, np.arange(py.n_rows)])
    entry_col = np.concatenate([nz_col, np.full(py.n_rows, n_groups)])
    comp = np.concatenate([per_entry, base_comp])
    total = np.bincount(entry_row, weights=comp, minlength=py.n_rows)
    none = total <= 0  # nothing to share by: all to unattributed
    comp = np.where(none[entry_row], (entry_col == n_groups).astype(float), comp)
    total = np.where(none, 1.0, total)
    cents = largest_remainder(y, entry_row, comp / total[entry_row])
    grp = entry_col < n_groups
    matrix = sp.csr_matrix((cents[grp], (entry_row[grp], entry_col[grp])), shape=(py.n_rows, n_groups),
                           dtype=np.int64)
    unattributed = np.bincount(entry_row[~grp], weights=cents[~grp], minlength=py.n_rows)
    return Allocation(matrix, np.rint(unattributed).astype(np.int64), fit, amount)


def design_terms(groups: Sequence[str], bands: Sequence[int] = AGE_BANDS) -> list[str]:
    """Terms of the allocation regression: the groups, an intercept, the age bands but the first, sex M."""
    return [f"group:{g}" for g in groups] + ["intercept"] + [f"age:{b}" for b in band_labels(bands)[1:]] + ["sex:M"]


def normal_equations(py: PatientYears, costs: pd.DataFrame, amount: str = "paid_total",
                     bands: Sequence[int] = AGE_BANDS) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per year, ``(X'X, X'y)`` of the allocation regression (y in cents): sums over rows, so the equations of
    chunks of patients add up to those of the whole population."""
    y = costs[amount].to_numpy(np.int64).astype(float)
    x = sp.hstack([py.flags.astype(float), sp.csr_matrix(_covariate_design(py, bands))], format="csr")
    out = {}
    for year in np.unique(py.year):
        rows = np.flatnonzero(py.year == year)
        xs = x[rows]
        out[int(year)] = ((xs.T @ xs).toarray(), np.asarray(xs.T @ y[rows]).ravel())
    return out


def add_equations(total: dict[int, tuple[np.ndarray, np.ndarray]], part: dict[int, tuple[np.ndarray, np.ndarray]]
                  ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Sum two sets of per-year normal equations."""
    out = dict(total)
    for year, (xtx, xty) in part.items():
        if year in out:
            out[year] = (out[year][0] + xtx, out[year][1] + xty)
        else:
            out[year] = (xtx, xty)
    return out


def solve_allocation(equations: Mapping[int, tuple[np.ndarray, np.ndarray]], terms: Sequence[str]) -> pd.DataFrame:
    """Least-squares coefficients (euros) per year and term; terms without any observation, or aliased with earlier
    ones (intercept first, then groups, age bands, sex), get 0."""
    records = []
    first = [terms.index("intercept")] + [i for i, t in enumerate(terms) if t != "intercept"]
    for year, (xtx, xty) in sorted(equations.items()):
        used = _independent_columns(xtx, first)
        beta = np.zeros(len(terms))
        if used.any():
            beta[used] = np.linalg.solve(xtx[np.ix_(used, used)], xty[used])
        records += [{"year": int(year), "term": t, "coefficient": float(b) / 100} for t, b in zip(terms, beta)]
    return pd.DataFrame(records, columns=["year", "term", "coefficient"])


def largest_remainder(total: np.ndarray, row: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Integer split of ``total[r]`` between the entries of row ``r`` by ``share`` (summing to 1 per row): floors,
    then one more cent to the entries with the largest fractional parts, until the row adds up exactly.

    Examples
    --------
    >>> largest_remainder(np.array([100]), np.array([0, 0, 0]), np.array([1/3, 1/3, 1/3])).tolist()
    [34, 33, 33]
    """
    raw = total[row].astype(float) * share
    floor = np.floor(raw)
    missing = total - np.rint(np.bincount(row, weights=floor, minlength=total.size)).astype(np.int64)
    order = np.lexsort((-(raw - floor), row))
    starts = np.searchsorted(row[order], row[order], side="left")
    rank = np.arange(order.size) - starts
    extra = np.zeros(row.size, dtype=np.int64)
    extra[order] = (rank < missing[row[order]]).astype(np.int64)
    return floor.astype(np.int64) + extra


def _independent_columns(xtx: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """Columns kept, in ``order``, while they add to the rank: an absent reference age band or a group held by
    everyone with the same covariates drops a column instead of splitting an effect between aliases."""
    kept: list[int] = []
    for j in order:
        if xtx[j, j] <= 0:
            continue
        trial = kept + [j]
        if np.linalg.matrix_rank(xtx[np.ix_(trial, trial)]) == len(trial):
            kept = trial
    mask = np.zeros(xtx.shape[0], dtype=bool)
    mask[kept] = True
    return mask


def _covariate_design(py: PatientYears, bands: Sequence[int]) -> np.ndarray:
    """Dense [intercept, age band indicators but the first, sex M] per row (fixed columns whatever the data)."""
    labels = band_labels(bands)
    idx = np.searchsorted(np.asarray(labels, dtype=object), age_band(py.age, bands), sorter=np.argsort(labels))
    idx = np.argsort(labels)[idx]
    cov = np.zeros((py.n_rows, len(labels) + 1))
    cov[:, 0] = 1.0
    hit = idx > 0
    cov[np.flatnonzero(hit), idx[hit]] = 1.0
    cov[:, -1] = py.sex == "M"
    return cov


def _beta(fit: pd.DataFrame, year: int, terms: Sequence[str]) -> np.ndarray:
    """The coefficients (euros) of ``year`` in the order of ``terms`` (0 for a term or year absent from ``fit``)."""
    rows = fit[fit["year"] == year].set_index("term")["coefficient"]
    return rows.reindex(list(terms)).fillna(0.0).to_numpy(float)


__all__ = [
    "CARE_CATEGORIES",
    "DISCHARGE_CATEGORIES",
    "SERVICE_FAMILIES",
    "UNATTRIBUTED",
    "Allocation",
    "add_equations",
    "allocate",
    "design_terms",
    "event_rows",
    "largest_remainder",
    "normal_equations",
    "patient_year_costs",
    "solve_allocation",
    "to_cents",
]
