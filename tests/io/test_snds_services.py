"""read_snds' opt-in ``dcir_services`` source: ER_PRS_F lines without an ER_PHA_F / ER_CAM_F detail row as events
``PRS:<PRS_NAT_REF>``, hand-checked on a small fixture (regularisation netted, information line, line with a
detail, empty code), amounts summing to the table's, and the Spark engine equal to the DuckDB engine."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pathways.errors import PathwaysInputError
from pathways.io import read_snds
from tests.io.spark_fixtures import assert_same_eventlog, assert_same_report, local_spark, quiet

P1, P2 = "PATIENT0000000001", "PATIENT0000000002"
ALL = ("dcir_drugs", "dcir_services")


def write_services(folder: Path) -> Path:
    """Seven ER_PRS_F lines: a GP consultation (25.00 paid, 17.50 base) cancelled (-1) and billed again; a drug
    with its ER_PHA_F row (not a service); a specialist consultation repeated as an information line (DPN_QLF 71);
    a dispensing fee (1.02, 0.71); a line without PRS_NAT_REF. No ER_CAM_F."""
    n = 7
    keys = {"FLX_DIS_DTD": "2020-02-01", "FLX_TRT_DTD": "2020-02-01", "FLX_EMT_TYP": 1, "FLX_EMT_NUM": 1,
            "FLX_EMT_ORD": 1, "ORG_CLE_NUM": "01C731221", "PRS_ORD_NUM": 1, "REM_TYP_AFF": 1}
    prs = pd.DataFrame({
        "BEN_NIR_PSA": [P1, P1, P1, P1, P2, P2, P2], "DCT_ORD_NUM": np.arange(1, n + 1),
        "EXE_SOI_DTD": ["2020-01-10"] * 4 + ["2020-01-20"] * 3,
        "PRS_NAT_REF": ["1111", "1111", "1111", "3317", "1112", "3336", None],
        "PRS_ACT_QTE": [1, -1, 1, 1, 1, 1, 1], "DPN_QLF": [0, 0, 0, 0, 71, 0, 0],
        "PFS_PRE_NUM": [None, None, None, "DOC1", None, "DOC2", None],
        "PFS_EXE_NUM": ["DOC1", "DOC1", "DOC1", "PHA1", "DOC2", "PHA1", "DOC1"],
        "PRS_PAI_MNT": [25.0, -25.0, 25.0, 6.0, 50.0, 1.02, 10.0],
        "BSE_REM_MNT": [17.5, -17.5, 17.5, 3.9, 35.0, 0.71, 7.0]}).assign(**keys)
    pha = pd.DataFrame({"DCT_ORD_NUM": [4], "PHA_PRS_C13": ["3400930000001"], "PHA_ACT_QSN": [1]}).assign(**keys)
    ben = pd.DataFrame({"BEN_NIR_PSA": [P1, P2], "BEN_RNG_GEM": [1, 1], "BEN_NAI_ANN": [1950, 1960],
                        "BEN_SEX_COD": [2, 1], "BEN_DCD_DTE": ["1600-01-01"] * 2})
    (folder / "DCIR").mkdir(parents=True, exist_ok=True)
    prs.to_csv(folder / "DCIR" / "ER_PRS_F.csv", index=False)
    pha.to_csv(folder / "DCIR" / "ER_PHA_F.csv", index=False)
    ben.to_csv(folder / "IR_BEN_R.csv", index=False)
    return folder


def test_services_are_the_lines_without_detail_with_netted_amounts(tmp_path):
    folder = write_services(tmp_path)
    log, report = quiet(read_snds, folder, sources=ALL, return_report=True)
    frame = pd.DataFrame({"code": log.code_strings(), "paid": log.extras["paid"], "base": log.extras["base"],
                          "cat": np.asarray(log.category), "patient": log.patient})
    services = frame[frame["cat"] == "service"].sort_values("code").reset_index(drop=True)
    # the consultation: cancelled and billed again, one event with the net 25.00 / 17.50; the fee; nothing else
    assert services["code"].tolist() == ["PRS:1111", "PRS:3336"]
    np.testing.assert_allclose(services["paid"], [25.0, 1.02])
    np.testing.assert_allclose(services["base"], [17.5, 0.71])
    assert (frame["cat"] == "drug").sum() == 1  # the 3317 line is the dispensation, never a service too
    # every non-information line's amount is in the log, once
    np.testing.assert_allclose(np.nansum(log.extras["paid"]), 25.0 - 25.0 + 25.0 + 6.0 + 1.02)
    counts = report.to_frame().set_index("step")["count"]
    assert counts["ER_PRS_F: line with a detail row (read by dcir_drugs / dcir_acts)"] == 1
    assert counts["ER_PRS_F: information line (DPN_QLF = 71)"] == 1
    assert counts["ER_PRS_F: PRS_NAT_REF empty"] == 1
    assert counts["ER_PRS_F: PRS_ACT_QTE <= 0 (regularisation)"] == 1
    assert "ER_CAM_F absent: no ER_PRS_F line is taken as its detail" in counts.index
    # opt-in: the default sources read no service
    import inspect

    default = inspect.signature(read_snds).parameters["sources"].default
    assert "dcir_services" not in default and {"dcir_drugs", "dcir_acts", "mco", "deaths"} <= set(default)
    # without amounts, cancellations are dropped by the quantity rule (or kept with drop_nonpositive_quantity=False)
    no_amounts = quiet(read_snds, folder, sources=("dcir_services",), tables={
        "ER_PRS_F": pd.read_csv(folder / "DCIR" / "ER_PRS_F.csv").drop(
            columns=["PRS_PAI_MNT", "BSE_REM_MNT", "PFS_PRE_NUM", "PFS_EXE_NUM"])})
    assert sorted(no_amounts.code_strings()) == ["PRS:1111", "PRS:3336"]  # the rebilled line merged as a duplicate
    kept = quiet(read_snds, folder, sources=("dcir_services",), drop_nonpositive_quantity=False)
    assert sorted(kept.value.tolist()) == [-1.0, 1.0, 1.0]


def test_unknown_source_is_refused():
    with pytest.raises(PathwaysInputError, match="dcir_services"):
        read_snds(".", sources=("dcir_service",))


@pytest.mark.spark
def test_spark_engine_reads_services_as_duckdb(tmp_path):
    folder = write_services(tmp_path)
    spark = local_spark()
    floats = {"ER_PRS_F": pd.read_csv(folder / "DCIR" / "ER_PRS_F.csv")}  # PRS_NAT_REF read as float (a NaN)
    assert floats["ER_PRS_F"]["PRS_NAT_REF"].dtype == float
    for options in ({"sources": ALL}, {"sources": ("dcir_services",), "drop_nonpositive_quantity": False},
                    {"sources": ("dcir_services",), "exclude_information_lines": False},
                    {"sources": ("dcir_services",), "tables": floats}):
        duck, duck_report = quiet(read_snds, folder, return_report=True, **options)
        log, report = quiet(read_snds, folder, return_report=True, engine="spark", spark=spark, **options)
        assert_same_eventlog(duck, log)
        assert_same_report(duck_report.to_frame(), report.to_frame())
