"""read_omop(engine="spark") against the DuckDB engine: the same EventLog (events, order, extras, patients,
vocabulary) and the same read report (steps, decisions, counts, order) on the messy OMOP fixtures of the DuckDB
tests, and the same errors."""
from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("duckdb", reason="duckdb is the optional 'omop' extra")

from omop_fixture import TABLES, write_csv_folder, write_parquet_folder  # noqa: E402

from pathways.errors import PathwaysInputError  # noqa: E402
from pathways.io import read_omop  # noqa: E402
from tests.io.spark_fixtures import assert_same_eventlog, assert_same_report, local_spark, quiet  # noqa: E402
from tests.io.test_snds_providers_omop import _tables as provider_tables  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.filterwarnings("ignore::pathways.errors.PathwaysDataWarning")]


@pytest.fixture(scope="module")
def spark():
    return local_spark()


@pytest.fixture(scope="module")
def csv_folder(tmp_path_factory):
    return write_csv_folder(tmp_path_factory.mktemp("omop_spark") / "csv")


def _same(spark, source, **kwargs) -> tuple:
    duck, duck_report = quiet(read_omop, source, return_report=True, **kwargs)
    log, report = quiet(read_omop, source, return_report=True, engine="spark", spark=spark, **kwargs)
    assert_same_eventlog(duck, log)
    assert_same_report(duck_report.to_frame(), report.to_frame())
    return log, report


@pytest.mark.parametrize("options", [
    {}, {"drug_ingredients": True, "outside_observation": "keep", "keep_unmapped": True},
    {"death_events": False, "duplicates": "keep", "concept_codes": False, "date_range": None},
    {"domains": ["procedure", "condition"]},
], ids=["default", "ingredients_keep_outside_unmapped", "ids_no_death_keep_dups_no_range", "domains"])
def test_spark_equals_duckdb_on_the_messy_csv_cdm(spark, csv_folder, options):
    log, report = _same(spark, csv_folder, **options)
    assert log.n_events > 0 and report.count("person: duplicate person_id") == 1


def test_spark_equals_duckdb_on_parquet_and_dataframes(spark, tmp_path):
    _same(spark, write_parquet_folder(tmp_path / "parquet"), drug_ingredients=True)
    _same(spark, None, tables=TABLES)


def test_spark_equals_duckdb_with_text_dates_upper_case_names_and_a_malformed_optional_table(spark, tmp_path):
    folder = tmp_path / "messy"
    folder.mkdir()
    for name, frame in TABLES.items():
        out = frame.rename(columns=str.upper)
        if name == "drug_exposure":  # text dates with a time, an unparseable one, a placeholder
            out["DRUG_EXPOSURE_START_DATE"] = out["DRUG_EXPOSURE_START_DATE"].astype(str) + " 00:00:00"
            out.loc[0, "DRUG_EXPOSURE_END_DATE"] = "not a date"
        if name == "observation_period":  # malformed optional table: its columns lost
            out = out.set_axis([f"column{i}" for i in range(out.shape[1])], axis=1)
        out.to_csv(folder / f"{name.upper()}.csv", index=False)
    log, report = _same(spark, folder)
    assert report.count("observation_period: optional table malformed (missing column(s) "
                        "['person_id', 'observation_period_start_date', 'observation_period_end_date'])") > 0


def test_spark_equals_duckdb_on_provider_ids_and_costs(spark):
    log, _ = _same(spark, None, tables=provider_tables(), concept_codes=False)
    assert sorted(log.extras) == ["base", "paid", "prescriber", "provider"]
    plain = {k: v.drop(columns="provider_id") if "provider_id" in v else v
             for k, v in provider_tables(False).items()}
    log, _ = _same(spark, None, tables=plain, concept_codes=False)
    assert log.extras == {}


def test_spark_equals_duckdb_on_the_era_fallback(spark, tmp_path):
    folder = write_csv_folder(tmp_path / "eras", skip=("drug_exposure", "concept", "death"))
    pd.DataFrame({"drug_era_id": [1], "person_id": [1], "drug_concept_id": [1125315],
                  "drug_era_start_date": ["2010-02-01"], "drug_era_end_date": ["2010-04-01"]}).to_csv(
        folder / "drug_era.csv", index=False)
    log, report = _same(spark, folder)
    assert report.count("concept table absent") == 0 and "1125315" in log.vocab


def test_errors_raise_stops_at_the_same_decision_as_duckdb(spark):
    clean = pd.DataFrame({"person_id": [1, 2, 3, 4], "gender_concept_id": [8507, 8532, 8532, 8507],
                          "year_of_birth": [1950, 1960, 1970, 1980], "month_of_birth": [3, 1, 6, 1],
                          "day_of_birth": [15, 1, 1, 1]})
    tables = dict(TABLES, person=clean)  # persons without problems: the first counted decision is in the events
    messages = []
    for engine in ("duckdb", "spark"):
        with pytest.raises(PathwaysInputError) as caught:
            quiet(read_omop, None, tables=tables, errors="raise", engine=engine, spark=spark)
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and "drug_exposure" in messages[0]


def test_spark_engine_errors(spark, csv_folder, tmp_path):
    with pytest.raises(PathwaysInputError, match="duplicate person_id"):
        read_omop(csv_folder, errors="raise", engine="spark", spark=spark)
    database = tmp_path / "cdm.duckdb"
    database.touch()
    with pytest.raises(PathwaysInputError, match="DuckDB database.*engine='duckdb'"):
        read_omop(database, engine="spark", spark=spark)
    import duckdb

    with pytest.raises(PathwaysInputError, match="DuckDB connection"):
        read_omop(duckdb.connect(), tables=TABLES, engine="spark", spark=spark)
    with pytest.raises(PathwaysInputError, match="schema"):
        read_omop(csv_folder, schema="cdm", engine="spark", spark=spark)
    with pytest.raises(PathwaysInputError, match="engine"):
        read_omop(csv_folder, engine="polars")
    with pytest.raises(PathwaysInputError, match="visit_occurrence"):
        read_omop(csv_folder, domains=["visit"], engine="spark", spark=spark)
    broken = dict(TABLES, drug_exposure=TABLES["drug_exposure"].drop(columns="drug_concept_id"))
    with pytest.raises(PathwaysInputError, match="drug_concept_id"):
        quiet(read_omop, None, tables=broken, engine="spark", spark=spark)
    no_ancestor = write_csv_folder(tmp_path / "no_ancestor", skip=("concept_ancestor",))
    with pytest.raises(PathwaysInputError, match="concept_ancestor"):
        quiet(read_omop, no_ancestor, drug_ingredients=True, engine="spark", spark=spark)
