"""A small SNDS extract written by the tests (real column names, valid and broken join keys), with the EventLog
it must give, computed by hand."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

A, B, C, D = ("AAAAAAAAAAAAAAAA1", "BBBBBBBBBBBBBBBB2", "CCCCCCCCCCCCCCCC3", "DDDDDDDDDDDDDDDD4")
KEYS = {"FLX_DIS_DTD": "2020-02-01", "FLX_EMT_NUM": 1, "FLX_EMT_ORD": 1, "FLX_EMT_TYP": 1,
        "FLX_TRT_DTD": "2020-02-01", "ORG_CLE_NUM": "01C731221", "PRS_ORD_NUM": 1, "REM_TYP_AFF": 1}


def _dcir(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    for key, value in KEYS.items():
        frame[key] = value
    return frame


def tables() -> dict[str, pd.DataFrame]:
    """The raw tables, by SNDS name."""
    return {
        "ER_PRS_F": _dcir([
            (A, 1, "2020-01-10", 0, 1),
            (A, 1, "2020-01-10", 71, 2),   # information line
            (B, 1, "2020-03-05", 0, 3),
            (C, 1, "2020-04-01", 0, 4),    # patient absent from IR_BEN_R
            (B, 1, "1600-01-01", 0, 5),    # placeholder date
            (A, 1, "2021-06-01", 0, 6),    # after A's death
        ], ["BEN_NIR_PSA", "BEN_RNG_GEM", "EXE_SOI_DTD", "DPN_QLF", "DCT_ORD_NUM"]),
        "ER_PHA_F": _dcir([
            (1, 3400930000001, 2), (1, 3400930000001, 2),  # duplicate claim line
            (2, 3400930000001, 1), (3, 3400930000002, 1), (3, 3400930000001, -1), (4, 3400930000001, 1),
            (5, 3400930000001, 1), (6, 3400930000001, 1), (99, 3400930000001, 1),  # 99: no ER_PRS_F line
        ], ["DCT_ORD_NUM", "PHA_PRS_C13", "PHA_ACT_QSN"]),
        "ER_CAM_F": _dcir([(3, "AHQB026"), (99, "AHQB024")], ["DCT_ORD_NUM", "CAM_PRS_IDE"]),
        "T_MCOaaB": pd.DataFrame({
            "ETA_NUM": [100000001, 100000001, 100000002, 100000003, 100000004],
            "RSA_NUM": [1000000001, 1000000002, 1000000001, 1000000009, 1000000004],
            "DGN_PAL": ["C670", "I10", "K35", "J18", "A41"],
            "DGN_REL": ["", "E11", None, "", ""],
            "GRG_GHM": ["05M09T", "90Z00Z", "06C09J", "04M05T", "18M07T"],
        }),
        "T_MCOaaC": pd.DataFrame({
            "ETA_NUM": [100000001, 100000001, 100000002, 100000002, 100000004],
            "RSA_NUM": [1000000001, 1000000002, 1000000001, 1000000001, 1000000004],
            "NIR_ANO_17": [A, B, B, B, B],
            "EXE_SOI_DTD": ["02Feb2020:00:00:00", "01Feb2020:00:00:00", "10Mar2020:00:00:00",
                            "10Mar2020:00:00:00", "01May2020:00:00:00"],
            "EXE_SOI_DTF": ["06Feb2020:00:00:00", "02Feb2020:00:00:00", "09Mar2020:00:00:00",
                            "09Mar2020:00:00:00", "03May2020:00:00:00"],
            "ENT_DAT": ["02022020", "01022020", "10032020", "10032020", "1052020"],
            "SOR_DAT": ["06022020", "02022020", "09032020", "09032020", "3052020"],
            "NIR_RET": ["0", "0", "0", "0", "1"], "SEJ_RET": ["0"] * 5,
        }),
        "T_MCOaaD": pd.DataFrame({"ETA_NUM": ["100000001", "100000003"], "RSA_NUM": ["1000000001", "1000000009"],
                                  "ASS_DGN": ["E119", "Z000"]}),
        "T_MCOaaA": pd.DataFrame({"ETA_NUM": ["100000001", "100000001"], "RSA_NUM": ["1000000001", "1000000001"],
                                  "CDC_ACT": ["JDFA001", "ZZQK002"], "ENT_DAT_DEL": [2, 10]}),
        "IR_BEN_R": pd.DataFrame({
            "BEN_NIR_PSA": [A, A, B, D], "BEN_RNG_GEM": [1, 2, 1, 1], "BEN_NAI_ANN": [1950, 1951, 1960, 1970],
            "BEN_NAI_MOI": [3, 4, None, 12], "BEN_SEX_COD": [1, 2, 7, 2],
            "BEN_DCD_DTE": ["2021-01-01", "1600-01-01", "1600-01-01", "1600-01-01"],
            "BEN_IDT_ANO": ["IDAAAAAAAAAAAAAAA", "IDA2AAAAAAAAAAAAA", "IDBBBBBBBBBBBBBBB", "IDDDDDDDDDDDDDDDD"],
        }),
        "KI_CCI_R": pd.DataFrame({"BEN_IDT_ANO": ["IDAAAAAAAAAAAAAAA", "UNKNOWNIDTTTTTTTT"],
                                  "BEN_DCD_DTE": ["2021-01-01", "2020-01-01"], "DCD_CIM_COD": ["C679", "I219"]}),
    }


CIP_TO_ATC = pd.DataFrame({"PHA_CIP_C13": ["3400930000001", "3400930000099"],
                           "PHA_ATC_C07": ["N02BE01", "A01AA01"]})


def day(date: str) -> float:
    return float((pd.Timestamp(date) - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1))


#: (patient id, date, code, end date, value, category)
EXPECTED_EVENTS = [
    (A, "2020-01-10", "ATC:N02BE01", None, 2.0, "drug"),
    (A, "2020-02-02", "MCO:stay", "2020-02-06", None, "stay"),
    (A, "2020-02-02", "CIM10:C670", None, None, "main_diagnosis"),
    (A, "2020-02-02", "CIM10:E119", None, None, "associated_diagnosis"),
    (A, "2020-02-02", "CCAM:ZZQK002", None, None, "hospital_act"),
    (A, "2020-02-04", "CCAM:JDFA001", None, None, "hospital_act"),
    (A, "2021-01-01", "CIM10:C679", None, None, "death"),
    (B, "2020-03-05", "CIP13:3400930000002", None, 1.0, "drug"),
    (B, "2020-03-05", "CCAM:AHQB026", None, None, "act"),
    (B, "2020-03-10", "MCO:stay", "2020-03-10", None, "stay"),
    (B, "2020-03-10", "CIM10:K35", None, None, "main_diagnosis"),
    (C, "2020-04-01", "ATC:N02BE01", None, 1.0, "drug"),
]
EXPECTED_PATIENTS = pd.DataFrame({
    "patient_id": [A, B, C, D],
    "birth": [day("1950-03-01"), day("1960-01-01"), np.nan, day("1970-12-01")],
    "sex": ["M", None, None, "F"],
    "death": [day("2021-01-01"), np.nan, np.nan, np.nan],
    "death_cause": ["C679", None, None, None],
})
EXPECTED_COUNTS = {
    "ER_PHA_F: no matching ER_PRS_F line on the 9 DCIR keys": 1,
    "ER_PHA_F: information line (DPN_QLF = 71)": 1,
    "ER_PHA_F: EXE_SOI_DTD missing, invalid or out of date_range": 1,
    "ER_PHA_F: PHA_ACT_QSN <= 0": 1,
    "ER_PHA_F: CIP13 absent from cip_to_atc": 1,
    "ER_CAM_F: no matching ER_PRS_F line on the 9 DCIR keys": 1,
    "T_MCOaaC: several patient-link rows per stay (ETA_NUM, RSA_NUM)": 1,
    "T_MCOaaB: no patient link in T_MCOaaC (ETA_NUM, RSA_NUM)": 1,
    "T_MCOaaB: error GHM (GRG_GHM 90*)": 1,
    "T_MCOaaB: quality check *_RET not '0' in T_MCOaaC": 1,
    "T_MCOaaB: discharge before entry": 1,
    "T_MCOaaD: no kept stay on (ETA_NUM, RSA_NUM)": 1,
    "T_MCOaaA: ENT_DAT_DEL negative or beyond discharge": 1,
    "IR_BEN_R: several rows per BEN_NIR_PSA": 1,
    "IR_BEN_R: BEN_SEX_COD outside {1, 2, 0, 9}": 1,
    "KI_CCI_R: BEN_IDT_ANO absent from IR_BEN_R": 1,
    "events of patients absent from IR_BEN_R": 1,
    "duplicate events": 1,
    "events after death": 1,
}
_FOLDERS = {"ER_PRS_F": "DCIR", "ER_PHA_F": "DCIR", "ER_CAM_F": "DCIR", "IR_BEN_R": "BENEFICIAIRE",
            "KI_CCI_R": "Causes_de_deces"}


def write(folder: Path, kind: str = "csv", rename_mco: str | None = None) -> Path:
    """Write the tables in SNDS-like sub-folders as CSV or parquet (``rename_mco`` replaces 'aa' by a year)."""
    for name, frame in tables().items():
        sub = folder / _FOLDERS.get(name, "PMSI/PMSI_MCO")
        sub.mkdir(parents=True, exist_ok=True)
        file = name.replace("aa", rename_mco) if rename_mco else name
        if kind == "csv":
            frame.to_csv(sub / f"{file}.csv", index=False)
        else:
            frame.to_parquet(sub / f"{file}.parquet", index=False)
    return folder
