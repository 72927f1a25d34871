"""One call for the whole cartography: identification, costs, allocation, tables, dynamics
(:func:`build_cartography`, the ``cartography._target_`` of ``experiment=cartography``)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pathways.cartography.costs import (
    Allocation,
    add_equations,
    allocate,
    design_terms,
    normal_equations,
    patient_year_costs,
    solve_allocation,
)
from pathways.cartography.dynamics import (
    survival_counts,
    survival_table,
    transition_counts,
    transition_factors,
    transition_rates,
)
from pathways.cartography.identify import AGE_BANDS, PatientYears, identify
from pathways.cartography.rules import RuleSet, load_rules
from pathways.cartography.tables import TableSums, finish_table, table_sums
from pathways.data.eventlog import EventLog
from pathways.errors import PathwaysInputError


@dataclass
class Cartography:
    """The outputs of :func:`build_cartography`: ``cells`` (year x group x strata), ``groups`` (year x group),
    ``coefficients`` of the allocation, ``transitions`` (per year and pooled), ``survival`` (time to death) and
    ``factors`` (transitions as a factors table). For a single EventLog, ``patient_years``, ``costs`` (per
    patient-year and care category, cents) and ``allocation`` keep the row-level results (None for chunks)."""

    rules: RuleSet
    cells: pd.DataFrame
    groups: pd.DataFrame
    coefficients: pd.DataFrame
    transitions: pd.DataFrame
    survival: pd.DataFrame
    factors: pd.DataFrame
    metrics: dict[str, Any] = field(default_factory=dict)
    patient_years: PatientYears | None = None
    costs: pd.DataFrame | None = None
    allocation: Allocation | None = None

    def tables(self) -> dict[str, pd.DataFrame]:
        """The aggregate tables (no row per patient), as written by the pipeline."""
        return {"cells": self.cells, "groups": self.groups, "coefficients": self.coefficients,
                "transitions": self.transitions, "survival": self.survival, "factors": self.factors}


def build_cartography(log: EventLog | Iterable[EventLog], rules: RuleSet | str | Path | Mapping[str, Any] = "cartography",
                      years: Sequence[int] | None = None, amounts: Sequence[str] = ("paid", "base"),
                      amount: str = "paid", by: Sequence[str] = ("age_band", "sex", "department"),
                      bands: Sequence[int] = AGE_BANDS, min_cell_count: int | None = None,
                      state_order: Sequence[str] | None = None,
                      coefficients: Mapping[str, float] | None = None) -> Cartography:
    """Identify the groups of ``rules`` per patient-year, cost and allocate ``amount`` (an entry of ``amounts``),
    and build the tables and dynamics.

    ``log``: one EventLog, or chunks of patients (an iterable of EventLogs with disjoint patients that can be
    iterated twice, e.g. a list, or an object re-reading parquet parts): the regression is fitted on the sums of
    every chunk, then each chunk is allocated and tabulated, so memory is bounded by a chunk. Chunks need
    ``years``. Small counts are suppressed in ``cells`` and ``groups`` (``min_cell_count``); transitions and
    survival keep their counts (:func:`~pathways.cartography.tables.suppress` them before publishing).
    """
    rules = load_rules(rules)
    single = isinstance(log, EventLog)
    if not single and years is None:
        raise PathwaysInputError("build_cartography: chunks of patients need years=[...] (the same for every chunk)")

    def parts() -> Iterable[tuple[PatientYears, pd.DataFrame]]:
        for part in ([log] if single else log):
            py = identify(part, rules, years=years, negative=amount if amount in part.extras else None)
            yield py, patient_year_costs(part, py, amounts=amounts)

    total_column = f"{amount}_total"
    fit = None
    cached = next(iter(parts())) if single else None
    if coefficients is None:
        equations: dict = {}
        for py, costs in ([cached] if single else parts()):
            equations = add_equations(equations, normal_equations(py, costs, total_column, bands))
        fit = solve_allocation(equations, design_terms(rules.ids, bands))
    acc = _Accumulator()
    for py, costs in ([cached] if single else parts()):
        alloc = allocate(py, costs, amount=total_column, bands=bands, coefficients=coefficients, fit=fit)
        acc.add(py, costs[total_column], alloc, by, bands, state_order)
    pooled = transition_rates(acc.transitions)
    yearly = transition_rates(acc.transitions_by_year)
    trans = pd.concat([pooled.assign(year="all"), yearly.assign(year=yearly["year"].astype(str))],
                      ignore_index=True)
    metrics = {"n_patient_years": acc.rows, "n_patients": acc.patients, "n_groups": len(rules.groups),
               "total_spending": acc.spent / 100, "allocated_spending": acc.allocated / 100,
               "share_with_group": acc.with_group / max(acc.rows, 1)}
    out = Cartography(rules, finish_table(acc.cells, min_cell_count), finish_table(acc.groups, min_cell_count),
                      alloc.coefficients, trans, survival_table(acc.survival), transition_factors(pooled), metrics)
    if single:
        py, costs = cached
        out.patient_years, out.costs, out.allocation = py, costs.assign(patient=py.patient, year=py.year), alloc
    return out


class _Accumulator:
    """Additive sums of the chunks: table sums, transition and survival counts, totals."""

    def __init__(self) -> None:
        self.cells: TableSums | None = None
        self.groups: TableSums | None = None
        self.transitions = pd.DataFrame()
        self.transitions_by_year = pd.DataFrame()
        self.survival = pd.DataFrame()
        self.rows = self.patients = self.spent = self.allocated = self.with_group = 0

    def add(self, py: PatientYears, spent: pd.Series, alloc: Allocation, by: Sequence[str], bands: Sequence[int],
            state_order: Sequence[str] | None) -> None:
        cells, groups = table_sums(py, alloc, by, bands), table_sums(py, alloc, (), bands)
        self.cells = cells if self.cells is None else self.cells.add(cells)
        self.groups = groups if self.groups is None else self.groups.add(groups)
        self.transitions = pd.concat([self.transitions, transition_counts(py, state_order)], ignore_index=True)
        self.transitions_by_year = pd.concat([self.transitions_by_year, transition_counts(py, state_order, True)],
                                             ignore_index=True)
        self.survival = pd.concat([self.survival, survival_counts(py)], ignore_index=True)
        self.rows += py.n_rows
        self.patients += int(np.unique(py.patient).size)
        self.spent += int(spent.sum())
        self.allocated += int(alloc.cents.sum()) + int(alloc.unattributed.sum())
        self.with_group += int((py.flags.getnnz(axis=1) > 0).sum())


__all__ = ["Cartography", "build_cartography"]
