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
