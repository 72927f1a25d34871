"""EventDataset: a sharded event dataset read lazily, shard by shard with one vocabulary, filters pushed down."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pathways.data import EventLog
from pathways.data.dataset import EventDataset, write_event_dataset
from pathways.encode.split import patient_uniforms
from pathways.errors import PathwaysInputError
from tests.io.spark_fixtures import assert_same_eventlog


@pytest.fixture(scope="module")
def log():
    rng = np.random.default_rng(0)
    n = 400
    events = pd.DataFrame({"patient_id": rng.choice([f"p{i:03d}" for i in range(40)], n),
                           "time": rng.integers(18_000, 18_400, n).astype(float),
                           "code": rng.choice(["ATC:A", "ATC:B", "CIM10:I10", "CCAM:X"], n),
                           "value": rng.normal(size=n)})
    return EventLog.from_pandas(events, time_unit="days")


@pytest.fixture(scope="module")
def dataset(log, tmp_path_factory):
    ids = log.patients["patient_id"].to_numpy(object)
    shard = np.minimum((patient_uniforms(ids) * 4).astype(int), 3)
    return EventDataset(write_event_dataset(log, tmp_path_factory.mktemp("ds") / "data", 4, shard)), shard


def test_whole_dataset_reads_back_the_eventlog(log, dataset):
    data, _ = dataset
    assert_same_eventlog(log, data.to_eventlog())
    assert "4 shards" in repr(data)


def test_shards_partition_the_patients_and_share_the_vocabulary(log, dataset):
    data, shard = dataset
    seen = []
    for k, part in zip(data.shard_ids(), data.iter_shards()):
        assert part.vocab == log.vocab
        ids = part.patients["patient_id"].to_numpy(object)
        rows = log.patients.index[log.patients["patient_id"].isin(ids)]
        assert (shard[rows] == k).all()
        assert part.n_events == int(np.isin(log.patient, rows).sum())
        seen.extend(ids)
    assert sorted(seen) == sorted(log.patients["patient_id"])


def test_filters_select_patients_codes_and_dates(log, dataset):
    data, _ = dataset
    some = ["p001", "p017", "p033"]
    part = data.to_eventlog(patients=some)
    assert sorted(part.patients["patient_id"]) == some
    assert part.n_events == int(np.isin(log.patient_ids(), some).sum())
    codes = data.to_eventlog(codes=["ATC:A", "CCAM:X"])
    assert set(codes.code_strings()) == {"ATC:A", "CCAM:X"}
    assert codes.n_events == int(np.isin(log.code_strings(), ["ATC:A", "CCAM:X"]).sum())
    window = data.to_eventlog(start=18_100, end=18_199)
    assert window.n_events == int(((log.time >= 18_100) & (log.time <= 18_199)).sum())
    dated = data.to_eventlog(start="2019-07-20", end=pd.Timestamp("2019-10-27"))  # days 18097 .. 18196
    assert dated.n_events == int(((log.time >= 18_097) & (log.time <= 18_196)).sum())


def test_fsspec_filesystem_reads_the_same(log, dataset):
    fsspec = pytest.importorskip("fsspec")
    data, _ = dataset
    other = EventDataset(data.root, filesystem=fsspec.filesystem("file"))
    assert other.to_eventlog(codes=["ATC:B"]).n_events == data.to_eventlog(codes=["ATC:B"]).n_events


def test_a_folder_that_is_no_dataset_is_refused(tmp_path, dataset):
    with pytest.raises(PathwaysInputError, match="no pathways event dataset"):
        EventDataset(tmp_path)
    data, _ = dataset
    meta = tmp_path / "metadata"
    meta.mkdir()
    (meta / "dataset.json").write_text(json.dumps({**data.meta, "format": "other"}))
    with pytest.raises(PathwaysInputError, match="format"):
        EventDataset(tmp_path)
