"""A small, messy OMOP CDM written by the tests, with the EventLog it must give (computed by hand)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

NA = None

TABLES: dict[str, pd.DataFrame] = {
    "person": pd.DataFrame({
        "person_id": [1, 2, 3, 4, 2],
        "gender_concept_id": [8507, 8532, 8551, 9999, 8532],
        "year_of_birth": [1950, 1960, 1970, 1980, 1961],
        "month_of_birth": [3, NA, 6, 1, 1],
        "day_of_birth": [15, NA, 1, 1, 1],
    }),
    "observation_period": pd.DataFrame({
        "observation_period_id": [1, 2, 3, 4, 5],
        "person_id": [1, 1, 2, 99, 4],
        "observation_period_start_date": ["2010-01-01", "2014-01-01", "2011-01-01", "2010-01-01", "2010-01-01"],
        "observation_period_end_date": ["2012-12-31", "2015-12-31", NA, "2011-01-01", "2010-06-01"],
    }),
    "drug_exposure": pd.DataFrame({
        "drug_exposure_id": [1, 2, 3, 4, 5, 6, 7],
        "person_id": [1, 1, 1, 2, 2, 77, 1],
        "drug_concept_id": [1125315, 1125315, 0, 1125315, 19019073, 1125315, 1125315],
        "drug_exposure_start_date": ["2010-02-01", "2013-06-01", "2010-05-01", "2011-03-01", "2011-04-01",
                                     "2011-01-01", "2010-02-01"],
        "drug_exposure_end_date": ["2010-03-02", "2013-06-30", "2010-05-30", NA, NA, "2011-01-30", "2010-03-02"],
        "days_supply": [30, 30, 30, 30, NA, 30, 30],
        "quantity": [1, 1, 1, 2, 1, 1, 1],
    }),
    "condition_occurrence": pd.DataFrame({
        "condition_occurrence_id": [1, 2, 3],
        "person_id": [1, 3, 4],
        "condition_concept_id": [201826, 201826, 201826],
        "condition_start_date": ["2011-05-05", "2012-01-01", "1600-01-01"],
        "condition_end_date": ["2011-05-01", NA, NA],
    }),
    "procedure_occurrence": pd.DataFrame(columns=["procedure_occurrence_id", "person_id", "procedure_concept_id",
                                                  "procedure_date"]),
    "measurement": pd.DataFrame({
        "measurement_id": [1], "person_id": [2], "measurement_concept_id": [3004249],
        "measurement_date": ["2011-06-01"], "value_as_number": [120.5],
    }),
    "death": pd.DataFrame({
        "person_id": [4, 4, 88], "death_date": ["2010-05-01", "2010-05-20", "2012-01-01"],
        "cause_concept_id": [201826, 201826, NA],
    }),
    "concept": pd.DataFrame({
        "concept_id": [1125315, 19019073, 201826, 1112807],
        "concept_name": ["acetaminophen", "acetaminophen / aspirin", "type 2 diabetes", "aspirin"],
        "domain_id": ["Drug", "Drug", "Condition", "Drug"],
        "vocabulary_id": ["RxNorm", "RxNorm", "SNOMED", "RxNorm"],
        "concept_class_id": ["Ingredient", "Clinical Drug", "Clinical Finding", "Ingredient"],
        "standard_concept": ["S", "S", "S", "S"],
        "concept_code": ["161", "12345", "44054006", "1191"],
    }),
    "concept_ancestor": pd.DataFrame({
        "ancestor_concept_id": [1125315, 1125315, 1112807, 1112807],
        "descendant_concept_id": [1125315, 19019073, 19019073, 1112807],
        "min_levels_of_separation": [0, 1, 1, 0], "max_levels_of_separation": [0, 1, 1, 0],
    }),
}


def day(date: str) -> float:
    """Days since 1970-01-01."""
    return float((pd.Timestamp(date) - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1))


#: Expected events (patient index, date, code, end date or None, value or None, category), sorted.
EXPECTED_EVENTS = [
    (0, "2010-02-01", "RxNorm:161", "2010-03-02", 1.0, "drug"),
    (0, "2011-05-05", "SNOMED:44054006", "2011-05-05", None, "condition"),
    (1, "2011-03-01", "RxNorm:161", "2011-03-30", 2.0, "drug"),
    (1, "2011-04-01", "RxNorm:12345", None, 1.0, "drug"),
    (1, "2011-06-01", "3004249", None, 120.5, "measurement"),
    (2, "2012-01-01", "SNOMED:44054006", None, None, "condition"),
    (3, "2010-05-01", "death", None, None, "death"),
]
EXPECTED_PATIENTS = pd.DataFrame({
    "patient_id": [1, 2, 3, 4],
    "birth": [day("1950-03-15"), day("1960-01-01"), day("1970-06-01"), day("1980-01-01")],
    "sex": ["M", "F", None, None],
    "death": [None, None, None, day("2010-05-01")],
    # person 2's open period ends at the last date of the database (person 1's period end)
    "start": [day("2010-01-01"), day("2011-01-01"), day("2012-01-01"), day("2010-01-01")],
    "end": [day("2015-12-31"), day("2015-12-31"), day("2012-01-01"), day("2010-06-01")],
    "n_observation_periods": [2, 1, 0, 1],
})
#: Decisions the reader must count (step -> count).
EXPECTED_COUNTS = {
    "person: duplicate person_id": 1,
    "person: month_of_birth missing": 1,
    "person: gender_concept_id not 8507/8532": 1,
    "drug_exposure: concept id 0 or NULL": 1,
    "condition_occurrence: start date out of date_range": 1,
    "condition_occurrence: end before start": 1,
    "events of persons absent from person": 1,
    "observation_period: person absent from person": 1,
    "observation_period: end missing or invalid": 1,
    "events outside every observation period": 1,
    "death: several rows per person": 1,
    "concept id absent from concept table": 1,
    "duplicate events": 1,
}


def write_csv_folder(folder: Path, skip: tuple[str, ...] = ()) -> Path:
    """Write every table as ``<name>.csv`` (empty strings for missing values)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in TABLES.items():
        if name not in skip:
            frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def write_parquet_folder(folder: Path) -> Path:
    """Write every table as ``<name>.parquet`` with typed dates."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in TABLES.items():
        out = frame.copy()
        for col in out.columns:
            if col.endswith("_date"):
                out[col] = pd.to_datetime(out[col], errors="coerce").astype("datetime64[ms]")
        out.to_parquet(folder / f"{name}.parquet", index=False)
    return folder
