"""One call for the whole cartography: identification, costs, allocation, tables, dynamics
(:func:`build_cartography`, the ``cartography._target_`` of ``experiment=cartography``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from pathways.cartography.costs import Allocation, allocate, patient_year_costs
from pathways.cartography.dynamics import time_to_death, transition_factors, transitions
from pathways.cartography.identify import AGE_BANDS, PatientYears, identify
from pathways.cartography.rules import RuleSet, load_rules
from pathways.cartography.tables import cartography_table
from pathways.data.eventlog import EventLog


@dataclass
class Cartography:
    """The outputs of :func:`build_cartography`: ``cells`` (year x group x strata), ``groups`` (year x group),
    ``costs`` (per patient-year and care category, cents, with ``patient`` and ``year``), ``coefficients`` of the
    allocation, ``transitions`` (per year and pooled), ``survival`` (time to death) and ``factors`` (transitions
    as a factors table); ``patient_years`` and ``allocation`` keep the row-level results."""

    rules: RuleSet
    patient_years: PatientYears
    allocation: Allocation
    cells: pd.DataFrame
    groups: pd.DataFrame
    costs: pd.DataFrame
    coefficients: pd.DataFrame
    transitions: pd.DataFrame
    survival: pd.DataFrame
    factors: pd.DataFrame
    metrics: dict[str, Any] = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The aggregate tables (no row per patient), as written by the pipeline."""
        return {"cells": self.cells, "groups": self.groups, "coefficients": self.coefficients,
                "transitions": self.transitions, "survival": self.survival, "factors": self.factors}


def build_cartography(log: EventLog, rules: RuleSet | str | Path | Mapping[str, Any] = "cartography",
                      years: Sequence[int] | None = None, amounts: Sequence[str] = ("paid", "base"),
                      amount: str = "paid", by: Sequence[str] = ("age_band", "sex", "department"),
                      bands: Sequence[int] = AGE_BANDS, min_cell_count: int | None = None,
                      state_order: Sequence[str] | None = None,
                      coefficients: Mapping[str, float] | None = None) -> Cartography:
    """Identify the groups of ``rules`` per patient-year, cost and allocate ``amount`` (an entry of ``amounts``),
    and build the tables and dynamics. Small counts are suppressed in ``cells`` and ``groups`` (``min_cell_count``);
    transitions and survival keep their counts (suppress them with :func:`~pathways.cartography.tables.suppress`
    before publishing)."""
    rules = load_rules(rules)
    py = identify(log, rules, years=years, negative=amount if amount in log.extras else None)
    costs = patient_year_costs(log, py, amounts=amounts)
    alloc = allocate(py, costs, amount=f"{amount}_total", bands=bands, coefficients=coefficients)
    cells = cartography_table(py, alloc, by=by, bands=bands, min_cell_count=min_cell_count)
    groups = cartography_table(py, alloc, by=(), bands=bands, min_cell_count=min_cell_count)
    pooled = transitions(py, state_order)
    yearly = transitions(py, state_order, by_year=True)
    trans = pd.concat([pooled.assign(year="all"), yearly.assign(year=yearly["year"].astype(str))],
                      ignore_index=True)
    costs = costs.assign(patient=py.patient, year=py.year)
    total = int(costs[f"{amount}_total"].sum())
    metrics = {"n_patient_years": py.n_rows, "n_patients": int(len(set(py.patient.tolist()))),
               "n_groups": len(rules.groups), "total_spending": total / 100,
               "allocated_spending": (int(alloc.cents.sum()) + int(alloc.unattributed.sum())) / 100,
               "share_with_group": float((py.flags.getnnz(axis=1) > 0).mean()) if py.n_rows else 0.0}
    return Cartography(rules, py, alloc, cells, groups, costs, alloc.coefficients, trans, time_to_death(py),
                       transition_factors(pooled), metrics)


__all__ = ["Cartography", "build_cartography"]
