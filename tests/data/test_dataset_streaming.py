"""Encoders and disproportionality over a sharded dataset, shard by shard, against the whole log."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pathways.cohort import limited_exposures
from pathways.data import EventLog
from pathways.data.dataset import EventDataset, write_event_dataset
from pathways.encode.sccs import sccs_data
from pathways.encode.sharded import (
    case_ids,
    iter_sparse_series,
    shard_batches,
    sharded_sccs_data,
)
from pathways.encode.sparse import to_sparse_series
from pathways.encode.split import patient_uniforms
from pathways.signals.disproportionality import (
    contingency_tables,
    exposure_event_matrix,
)
from pathways.signals.sharded import sharded_disproportionality, sharded_tables

DRUGS, OUTCOMES = ["ATC:A", "ATC:B", "ATC:C"], ["CIM10:K", "CIM10:L"]


@pytest.fixture(scope="module")
def log():
    rng = np.random.default_rng(1)
    n = 3_000
    patients = rng.integers(0, 150, n)
    events = pd.DataFrame({"patient_id": [f"id{p}" for p in patients],
                           "time": rng.integers(0, 700, n).astype(float),
                           "code": rng.choice(DRUGS + OUTCOMES + ["CCAM:Z"], n, p=[.25, .2, .15, .1, .05, .25])})
    # patient id{p} with an odd p reacts to ATC:A: an outcome K 5 days after each dispensation
    react = events[(events["code"] == "ATC:A") & (patients % 2 == 1)]
    events = pd.concat([events, react.assign(time=react["time"] + 5, code="CIM10:K")], ignore_index=True)
    events = events.drop_duplicates(ignore_index=True)
    return EventLog.from_pandas(events, time_unit="days")


@pytest.fixture(scope="module")
def dataset(log, tmp_path_factory):
    shard = np.minimum((patient_uniforms(log.patients["patient_id"].to_numpy(object)) * 5).astype(int), 4)
    return EventDataset(write_event_dataset(log, tmp_path_factory.mktemp("st") / "d", 5, shard))


def _whole_tables(log):
    exposure = limited_exposures(log, codes=DRUGS, prefix=False, duration=30.0).events
    windows = pd.DataFrame({"patient": exposure.patient,
                            "exposure": pd.Index(DRUGS).get_indexer(exposure.vocab.codes[exposure.code]),
                            "start": exposure.time, "end": exposure.end})
    out = pd.Index(OUTCOMES).get_indexer(log.code_strings())
    keep = out >= 0
    x = exposure_event_matrix(log.patient[keep], log.time[keep], windows, len(DRUGS))
    return contingency_tables(x, out[keep], len(OUTCOMES), np.array(DRUGS), np.array(OUTCOMES))


def test_sharded_tables_equal_the_whole_population(log, dataset):
    whole, parts = _whole_tables(log), sharded_tables(dataset, DRUGS, OUTCOMES)
    for name in "abcd":
        np.testing.assert_array_equal(getattr(parts, name), getattr(whole, name))
    table = sharded_disproportionality(dataset, DRUGS, OUTCOMES, methods=("PRR", "ROR"))
    prr = table[(table["method"] == "PRR")].set_index(["exposure", "outcome"])["estimate"]
    assert prr[("ATC:A", "CIM10:K")] > max(1.3, prr[("ATC:B", "CIM10:K")])  # the planted reaction stands out


def test_sccs_case_selection_reads_only_cases_and_matches_the_whole_log(log, dataset):
    cases = case_ids(dataset, ["CIM10:L"])
    assert set(cases) == set(log.patient_ids()[log.code_strings() == "CIM10:L"])
    whole = sccs_data(log, DRUGS, ["CIM10:L"], 7.0)
    pushed = sharded_sccs_data(dataset, DRUGS, ["CIM10:L"], 7.0)
    for name in ("censoring", "exposure_case", "exposure_bucket", "exposure_feature", "outcome_case",
                 "outcome_bucket", "outcome_count"):
        np.testing.assert_array_equal(getattr(pushed, name), getattr(whole, name))


def test_sparse_series_and_batches_per_shard_cover_the_log(log, dataset):
    whole = to_sparse_series(log, 30.0)
    parts = list(iter_sparse_series(dataset, 30.0))
    assert sum(p.matrix.sum() for p in parts) == whole.matrix.sum()
    assert all(p.matrix.shape[1] == whole.matrix.shape[1] for p in parts)
    seen = [sum(int(b.lengths.shape[0])
                for b in shard_batches(dataset, 16, rank=r, world_size=2)) for r in (0, 1)]
    assert sum(seen) == log.n_patients and min(seen) > 0
