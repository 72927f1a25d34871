"""Shared Spark fixtures (a plain module, not a conftest): one local session per test run, small and quiet."""
from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHARED_SNDS = Path(__file__).resolve().parents[3] / "shared" / "data" / "snds"


@lru_cache(maxsize=None)
def local_spark():
    """A local[1] session with one shuffle partition: the test data are tiny, every extra task costs time.

    One session for the whole test run (cached here, and Spark allows one per JVM): the modules' ``spark``
    fixtures all return it, so the JVM starts once per pytest process."""
    pytest.importorskip("pyspark")
    from pathways.io.spark import spark_session

    return spark_session("local[1]", app_name="pathways-tests", shuffle_partitions=1,
                         conf={"spark.default.parallelism": "1", "spark.sql.adaptive.enabled": "false"})


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def assert_same_eventlog(a, b) -> None:
    """Two EventLogs hold exactly the same events (order included), patients, vocabulary and extras."""
    assert a.n_events == b.n_events and a.n_patients == b.n_patients
    assert a.vocab == b.vocab
    np.testing.assert_array_equal(a.patient, b.patient)
    np.testing.assert_array_equal(a.time, b.time)
    np.testing.assert_array_equal(a.code_strings(), b.code_strings())
    np.testing.assert_array_equal(a.end, b.end)
    np.testing.assert_array_equal(a.value, b.value)
    assert list(a.category) == list(b.category) or a.category.equals(b.category)
    assert sorted(a.extras) == sorted(b.extras)
    for name in a.extras:
        pd.testing.assert_series_equal(pd.Series(a.extras[name]), pd.Series(b.extras[name]), check_dtype=True)
    pd.testing.assert_frame_equal(a.patients, b.patients)


def assert_same_report(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Same steps, decisions and counts, in the same order."""
    cols = ["step", "decision", "count", "total"]
    left, right = a[cols].astype(str).reset_index(drop=True), b[cols].astype(str).reset_index(drop=True)
    pd.testing.assert_frame_equal(left, right)


def write_identical_claim_lines(folder: Path) -> Path:
    """DCIR tables of one patient, one day, one CIP13, one prescriber and pharmacy: a service billed twice in
    identical lines (6.00 paid, 3.90 base each) and another one (6.00 paid, 7.05 base). The identical lines are
    one event carrying 12.00 and 7.80, which must sort after the other event (6.00 < 12.00): before the fix, the
    DuckDB engine ordered the two events by their amounts before the merge (the 4.1 M-line benchmark's mismatch)."""
    keys = {"FLX_DIS_DTD": "2020-02-01", "FLX_TRT_DTD": "2020-02-01", "FLX_EMT_TYP": 1, "FLX_EMT_NUM": 1,
            "FLX_EMT_ORD": 1, "ORG_CLE_NUM": "01C731221", "PRS_ORD_NUM": 1, "REM_TYP_AFF": 1}
    prs = pd.DataFrame({"BEN_NIR_PSA": ["PATIENT0000000001"] * 3, "EXE_SOI_DTD": ["2020-01-10"] * 3,
                        "DPN_QLF": [0, 0, 0], "DCT_ORD_NUM": [1, 2, 3], "PFS_PRE_NUM": ["DOC1"] * 3,
                        "PFS_EXE_NUM": ["PHA1"] * 3, "PRS_PAI_MNT": [6.0, 6.0, 6.0],
                        "BSE_REM_MNT": [3.9, 3.9, 7.05]}).assign(**keys)
    pha = pd.DataFrame({"DCT_ORD_NUM": [1, 2, 3], "PHA_PRS_C13": ["3400930000001"] * 3,
                        "PHA_ACT_QSN": [1, 1, 1]}).assign(**keys)
    ben = pd.DataFrame({"BEN_NIR_PSA": ["PATIENT0000000001"], "BEN_RNG_GEM": [1], "BEN_NAI_ANN": [1950],
                        "BEN_SEX_COD": [2], "BEN_DCD_DTE": ["1600-01-01"]})
    (folder / "DCIR").mkdir(parents=True, exist_ok=True)
    prs.to_csv(folder / "DCIR" / "ER_PRS_F.csv", index=False)
    pha.to_csv(folder / "DCIR" / "ER_PHA_F.csv", index=False)
    ben.to_csv(folder / "IR_BEN_R.csv", index=False)
    return folder
