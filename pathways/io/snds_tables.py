"""SNDS table specifications: join keys, quality columns, placeholder dates, event categories, date formats,
and the CIP13 -> ATC drug mapping the user supplies."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pathways.errors import PathwaysInputError

#: The nine keys joining DCIR detail tables to ER_PRS_F.
DCIR_KEYS = ("DCT_ORD_NUM", "FLX_DIS_DTD", "FLX_EMT_NUM", "FLX_EMT_ORD", "FLX_EMT_TYP", "FLX_TRT_DTD",
             "ORG_CLE_NUM", "PRS_ORD_NUM", "REM_TYP_AFF")
#: PMSI MCO keys between stays (B), patient link (C), associated diagnoses (D) and acts (A).
MCO_KEYS = ("ETA_NUM", "RSA_NUM")
#: Quality-check columns of T_MCOaaC: a stay is usable only when each present one equals '0'.
MCO_RET_COLUMNS = ("NIR_RET", "NAI_RET", "SEX_RET", "SEJ_RET", "FHO_RET", "PMS_RET", "DAT_RET", "COH_NAI_RET",
                   "COH_SEX_RET")
#: Dates the SNDS uses as placeholders (e.g. BEN_DCD_DTE = 1600-01-01 for a living beneficiary).
PLACEHOLDER_DATES = ("1600-01-01", "2999-12-31", "9999-12-31", "0001-01-01")
CATEGORIES = ("drug", "act", "stay", "main_diagnosis", "linked_diagnosis", "associated_diagnosis",
              "hospital_act", "death", "service")
#: every source read_snds knows; the default reads all but ``dcir_services`` (opt-in: it adds events and amounts
#: that results computed before it existed did not have)
ALL_SOURCES = ("dcir_drugs", "dcir_acts", "mco", "deaths", "dcir_services")
SOURCES = ("dcir_drugs", "dcir_acts", "mco", "deaths")
#: DCIR detail tables: an ER_PRS_F line with a row in one of them is a dispensation or an act, not a service
SERVICE_DETAILS = ("ER_PHA_F", "ER_CAM_F")
#: ER_PRS_F columns carried as EventLog extras: extra name -> (column, SQL type). Ids are pseudonymous: kept as
#: text, never logged; amounts in euros.
PROVIDER_COLUMNS = {"prescriber": ("PFS_PRE_NUM", "VARCHAR"), "provider": ("PFS_EXE_NUM", "VARCHAR"),
                    "institution": ("ETB_PRE_FIN", "VARCHAR"), "paid": ("PRS_PAI_MNT", "DOUBLE"),
                    "base": ("BSE_REM_MNT", "DOUBLE")}
#: Optional PMSI MCO valorisation table T_MCOaaVALO (one row per valued stay, joined on ETA_NUM + RSA_NUM): stay
#: event extra -> column (euros). ``MNT_TOT_AM``: total billed to the health insurance for the stay; ``MNT_BR``:
#: its reimbursement base. Several rows of one stay are summed; a stay without a row has missing amounts.
MCO_VALO_COLUMNS = {"paid": "MNT_TOT_AM", "base": "MNT_BR"}
SEX_CODES = {1: "M", 2: "F"}
ATC_LEVELS = {1: 1, 2: 3, 3: 4, 4: 5, 5: 7}
DT_FORMATS = ("%d%b%Y:%H:%M:%S", "%d%m%Y", "%Y%m%d", "%d/%m/%Y")


def days_since_epoch(date: str) -> float:
    """A date (even outside pandas' nanosecond range, e.g. 1600-01-01) as days since 1970-01-01.

    Examples
    --------
    >>> days_since_epoch("1600-01-01")
    -135140.0
    """
    return float((np.datetime64(date, "D") - np.datetime64("1970-01-01", "D")).astype(np.int64))


def load_cip_to_atc(mapping: pd.DataFrame | str | Path | None, cip: str, atc: str) -> pd.DataFrame | None:
    """CIP13 -> ATC mapping as a two-column text DataFrame (cip, atc), one row per CIP13."""
    if mapping is None:
        return None
    if not isinstance(mapping, pd.DataFrame):
        path = Path(mapping)
        if not path.exists():
            raise PathwaysInputError(f"cip_to_atc: file not found: {str(path)!r}")
        if path.suffix.lower() == ".parquet":
            mapping = pd.read_parquet(path)
        else:
            with open(path, encoding="utf-8", errors="replace") as fh:
                head = fh.readline()
            mapping = pd.read_csv(path, sep=";" if head.count(";") > head.count(",") else ",", dtype=str)
    missing = [c for c in (cip, atc) if c not in mapping.columns]
    if missing:
        raise PathwaysInputError(f"cip_to_atc: missing column(s) {missing}; available: {list(mapping.columns)[:20]}")
    out = pd.DataFrame({"cip": mapping[cip].astype("string").str.strip(),
                        "atc": mapping[atc].astype("string").str.strip().str.upper()})
    out = out.dropna()
    out = out[(out["cip"] != "") & (out["atc"] != "")]
    return out.drop_duplicates("cip", keep="first").reset_index(drop=True)


__all__ = [
    "ATC_LEVELS", "CATEGORIES", "DCIR_KEYS", "PROVIDER_COLUMNS", "DT_FORMATS", "MCO_KEYS", "MCO_VALO_COLUMNS", "MCO_RET_COLUMNS", "PLACEHOLDER_DATES",
    "SEX_CODES", "SOURCES", "ALL_SOURCES", "SERVICE_DETAILS", "days_since_epoch", "load_cip_to_atc",
]
