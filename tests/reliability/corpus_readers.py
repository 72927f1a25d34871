"""Tiny messy inputs for the bad-input corpus of EventLog and the claims readers (issue 12), written in tmp_path.

Identifiers are long distinctive strings so that a test can assert that no message, warning or report ever
carries one.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

#: patient ids (SNDS BEN_NIR_PSA style) that must never appear in a message
A, B = "SECRETPATIENTAAA1", "SECRETPATIENTBBB2"
IDS = (A, B)
KEYS = {"FLX_DIS_DTD": "2020-02-01", "FLX_EMT_NUM": "1", "FLX_EMT_ORD": "1", "FLX_EMT_TYP": "1",
        "FLX_TRT_DTD": "2020-02-01", "ORG_CLE_NUM": "01C731221", "PRS_ORD_NUM": "1", "REM_TYP_AFF": "1"}
PRS_COLUMNS = ["BEN_NIR_PSA", "EXE_SOI_DTD", "DPN_QLF", "DCT_ORD_NUM", "PFS_EXE_NUM", "PRS_PAI_MNT", "BSE_REM_MNT"]
PHA_COLUMNS = ["DCT_ORD_NUM", "PHA_PRS_C13", "PHA_ACT_QSN"]


def day(date: str) -> float:
    """Days since 1970-01-01."""
    return float((pd.Timestamp(date) - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1))


def snds_tables(prs: list[tuple] | None = None, pha: list[tuple] | None = None,
                ben: list[tuple] | None = None) -> dict[str, pd.DataFrame]:
    """ER_PRS_F, ER_PHA_F (joined on the nine keys) and IR_BEN_R as text frames; defaults: one dispensation each."""
    prs = prs if prs is not None else [(A, "2020-01-10", "0", "1", "PHA1", "10.0", "15.0"),
                                       (B, "2020-03-05", "0", "2", "PHA2", "7.5", "11.0")]
    pha = pha if pha is not None else [("1", "3400930000001", "2"), ("2", "3400930000002", "1")]
    ben = ben if ben is not None else [(A, "1", "1950", "1", "1", "1600-01-01"), (B, "1", "1960", "6", "2", "1600-01-01")]
    frames = {
        "ER_PRS_F": pd.DataFrame(prs, columns=PRS_COLUMNS).assign(**KEYS),
        "ER_PHA_F": pd.DataFrame(pha, columns=PHA_COLUMNS).assign(**KEYS),
        "IR_BEN_R": pd.DataFrame(ben, columns=["BEN_NIR_PSA", "BEN_RNG_GEM", "BEN_NAI_ANN", "BEN_NAI_MOI",
                                               "BEN_SEX_COD", "BEN_DCD_DTE"]),
    }
    return frames


def write_snds(folder: Path, tables: dict[str, pd.DataFrame] | None = None, encoding: str = "utf-8",
               sep: str = ",") -> Path:
    """Write the tables as CSV under DCIR/ and BENEFICIAIRE/."""
    for name, frame in (tables or snds_tables()).items():
        sub = folder / ("BENEFICIAIRE" if name == "IR_BEN_R" else "DCIR")
        sub.mkdir(parents=True, exist_ok=True)
        frame.to_csv(sub / f"{name}.csv", index=False, encoding=encoding, sep=sep)
    return folder


def omop_tables() -> dict[str, pd.DataFrame]:
    """A minimal OMOP CDM: two persons, two conditions, one drug, one death, observation periods, concepts."""
    return {
        "person": pd.DataFrame({"person_id": [1, 2], "year_of_birth": [1950, 1980], "month_of_birth": [1, 6],
                                "day_of_birth": [1, 15], "gender_concept_id": [8507, 8532]}),
        "condition_occurrence": pd.DataFrame({"condition_occurrence_id": [10, 11], "person_id": [1, 2],
                                              "condition_concept_id": [201826, 320128],
                                              "condition_start_date": ["2020-01-10", "2020-02-01"],
                                              "condition_end_date": ["2020-01-10", "2020-02-01"]}),
        "drug_exposure": pd.DataFrame({"drug_exposure_id": [20], "person_id": [1], "drug_concept_id": [1125315],
                                       "drug_exposure_start_date": ["2020-01-12"],
                                       "drug_exposure_end_date": ["2020-01-20"]}),
        "death": pd.DataFrame({"person_id": [2], "death_date": ["2021-01-01"], "death_datetime": [None],
                               "death_type_concept_id": [32817], "cause_concept_id": [None],
                               "cause_source_value": [None], "cause_source_concept_id": [None]}),
        "observation_period": pd.DataFrame({"person_id": [1, 2], "observation_period_start_date": ["2019-01-01"] * 2,
                                            "observation_period_end_date": ["2021-12-31"] * 2}),
        "concept": pd.DataFrame({"concept_id": [201826, 320128, 1125315], "vocabulary_id": ["SNOMED", "SNOMED", "RxNorm"],
                                 "concept_code": ["44054006", "38341003", "161"]}),
    }


#: events (person, day, code) the minimal OMOP CDM gives with its death event
OMOP_EVENTS = {("1", day("2020-01-10"), "SNOMED:44054006"), ("1", day("2020-01-12"), "RxNorm:161"),
               ("2", day("2020-02-01"), "SNOMED:38341003"), ("2", day("2021-01-01"), "death")}


def write_omop_csv(folder: Path, tables: dict[str, pd.DataFrame] | None = None, upper: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (tables or omop_tables()).items():
        out = frame.rename(columns=str.upper) if upper else frame
        out.to_csv(folder / f"{name}.csv", index=False)
    return folder


def write_omop_duckdb(path: Path, tables: dict[str, pd.DataFrame] | None = None,
                      malformed: tuple[str, ...] = ()) -> Path:
    """A DuckDB file; each table in ``malformed`` is empty-but-malformed: its CSV header loaded as a data row
    (columns column0..columnN, one row), as a careless ``read_csv(header=false)`` import leaves it."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        for name, frame in (tables or omop_tables()).items():
            if name in malformed:
                header = pd.DataFrame([list(frame.columns)], columns=[f"column{i}" for i in range(frame.shape[1])])
                con.register("frame", header)
            else:
                con.register("frame", frame)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM frame')
            con.unregister("frame")
    finally:
        con.close()
    return path


def events_of(log) -> set[tuple]:
    """(patient id as text, time, code) of every event."""
    return set(zip(log.patient_ids().astype(str), log.time.tolist(), log.code_strings().astype(str)))


def assert_no_id(text: str, ids=IDS) -> None:
    leaked = [i for i in ids if i in text]
    assert not leaked, f"identifier leaked into: {text}"
