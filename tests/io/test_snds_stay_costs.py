"""Stay costs from the PMSI valorisation table T_MCOaaVALO, on a hand-built extract: two kept stays, one valued
(over two rows, summed) and one not; a valuation row of no stay. Both engines give the same amounts and counts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pathways.io import read_snds

A, B = "AAAAAAAAAAAAAAAA1", "BBBBBBBBBBBBBBBB2"


def write_extract(folder: Path, valo: bool = True) -> Path:
    """Two stays of two patients (A: valued 1000.00 + 234.56 billed, base 1500.00; B: no valuation row)."""
    mco = folder / "PMSI" / "PMSI_MCO"
    mco.mkdir(parents=True)
    tables = {
        "T_MCOaaB": pd.DataFrame({"ETA_NUM": [100000001, 100000002], "RSA_NUM": [11, 12],
                                  "DGN_PAL": ["I10", "K35"], "GRG_GHM": ["05M09T", "06C09J"]}),
        "T_MCOaaC": pd.DataFrame({"ETA_NUM": [100000001, 100000002], "RSA_NUM": [11, 12], "NIR_ANO_17": [A, B],
                                  "EXE_SOI_DTD": ["2020-02-02", "2020-03-10"],
                                  "EXE_SOI_DTF": ["2020-02-06", "2020-03-11"]}),
    }
    if valo:  # keys as text (they are numbers in B and C): compared as text
        tables["T_MCOaaVALO"] = pd.DataFrame({"ETA_NUM": ["100000001", "100000001", "100000009"],
                                              "RSA_NUM": ["11", "11", "11"], "MNT_TOT_AM": [1000.0, 234.56, 99.0],
                                              "MNT_BR": [1200.0, 300.0, 99.0]})
    for name, frame in tables.items():
        frame.to_parquet(mco / f"{name}.parquet", index=False)
    ben = folder / "BENEFICIAIRE"
    ben.mkdir()
    pd.DataFrame({"BEN_NIR_PSA": [A, B], "BEN_RNG_GEM": [1, 1], "BEN_NAI_ANN": [1950, 1960], "BEN_NAI_MOI": [1, 1],
                  "BEN_SEX_COD": [1, 2], "BEN_DCD_DTE": ["1600-01-01"] * 2}).to_parquet(ben / "IR_BEN_R.parquet",
                                                                                         index=False)
    return folder


def _stays(log) -> pd.DataFrame:
    frame = pd.DataFrame({"patient_id": log.patient_ids().astype(str), "category": np.asarray(log.category).astype(str),
                          "paid": log.extras["paid"], "base": log.extras["base"]})
    return frame


def test_stay_amounts_come_from_the_valorisation_table(tmp_path):
    log, report = read_snds(write_extract(tmp_path), sources=("mco",), return_report=True, errors="warn")
    frame = _stays(log)
    stay = frame[frame["category"] == "stay"].set_index("patient_id")
    assert stay.loc[A, "paid"] == pytest.approx(1234.56) and stay.loc[A, "base"] == pytest.approx(1500.0)
    assert np.isnan(stay.loc[B, "paid"]) and np.isnan(stay.loc[B, "base"])
    # diagnoses never carry the stay's amount (it would be counted twice)
    assert frame.loc[frame["category"] != "stay", ["paid", "base"]].isna().all().all()
    counts = report.to_frame().set_index("step")["count"]
    assert counts["T_MCOaaB: kept stay without valorisation in T_MCOaaVALO (ETA_NUM, RSA_NUM)"] == 1
    assert counts["T_MCOaaVALO: several rows per stay (ETA_NUM, RSA_NUM)"] == 1


def test_without_a_valorisation_table_stays_have_no_amounts(tmp_path):
    log = read_snds(write_extract(tmp_path, valo=False), sources=("mco",), errors="warn")
    assert "paid" not in log.extras and log.n_events == 4  # two stays and their main diagnoses


@pytest.mark.spark
def test_spark_engine_reads_the_same_stay_amounts(tmp_path):
    from tests.io.spark_fixtures import assert_same_eventlog, assert_same_report, local_spark, quiet

    folder = write_extract(tmp_path)
    duck, duck_report = quiet(read_snds, folder, sources=("mco",), return_report=True)
    log, report = quiet(read_snds, folder, sources=("mco",), return_report=True, engine="spark", spark=local_spark())
    assert_same_eventlog(duck, log)
    assert_same_report(duck_report.to_frame(), report.to_frame())
    assert np.nansum(np.asarray(log.extras["paid"], dtype=float)) == pytest.approx(1234.56)
