"""read_omop's provider and amount extras (provider_id, cost table), against values computed by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

duckdb = pytest.importorskip("duckdb", reason="duckdb is the optional 'omop' extra")
pytestmark = pytest.mark.filterwarnings("ignore::pathways.errors.PathwaysDataWarning")

from pathways.io import read_omop  # noqa: E402


def _tables(with_cost: bool = True) -> dict[str, pd.DataFrame]:
    tables = {
        "person": pd.DataFrame({"person_id": [1, 2], "gender_concept_id": [8507, 8532],
                                "year_of_birth": [1950, 1960]}),
        "drug_exposure": pd.DataFrame({
            "drug_exposure_id": [10, 11], "person_id": [1, 2], "drug_concept_id": [1125315, 1125315],
            "drug_exposure_start_date": ["2010-02-01", "2011-03-01"], "provider_id": [501, None]}),
        "procedure_occurrence": pd.DataFrame({
            "procedure_occurrence_id": [10], "person_id": [1], "procedure_concept_id": [4000001],
            "procedure_date": ["2010-02-01"], "provider_id": [777]}),
    }
    if with_cost:  # two cost rows for drug 10 (a charge and its correction), one for procedure 10
        tables["cost"] = pd.DataFrame({"cost_id": [1, 2, 3], "cost_event_id": [10, 10, 10],
                                       "cost_domain_id": ["Drug", "Drug", "Procedure"],
                                       "paid_by_payer": [8.0, -2.0, 30.0], "amount_allowed": [10.0, -2.5, 40.0]})
    return tables


def _rows(log) -> set[tuple]:
    ev, _ = log.to_pandas()
    text = lambda v: None if pd.isna(v) else v  # noqa: E731
    return {(r.patient_id, r.code, text(r.prescriber), text(r.provider),
             None if np.isnan(r.paid) else r.paid, None if np.isnan(r.base) else r.base)
            for r in ev.itertuples(index=False) if str(r.category) != "death"}


def test_provider_id_and_summed_costs_become_extras():
    log = read_omop(duckdb.connect(), tables=_tables(), concept_codes=False)
    assert sorted(log.extras) == ["base", "paid", "prescriber", "provider"]
    assert _rows(log) == {(1, "1125315", "501", None, 6.0, 7.5), (2, "1125315", None, None, None, None),
                          (1, "4000001", None, "777", 30.0, 40.0)}


def test_without_cost_table_amounts_are_missing_and_without_provider_there_are_no_extras():
    log = read_omop(duckdb.connect(), tables=_tables(with_cost=False), concept_codes=False)
    assert np.isnan(log.extras["paid"]).all() and "501" in set(log.extras["prescriber"])
    plain = {k: v.drop(columns="provider_id") if "provider_id" in v else v for k, v in _tables(False).items()}
    assert read_omop(duckdb.connect(), tables=plain, concept_codes=False).extras == {}
