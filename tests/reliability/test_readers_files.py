"""Bad-input corpus of pathways' own files (issue 12): EventLog parquet triplets and MEDS folders that are
corrupt, truncated, incomplete or from different writes give one clear error naming the file."""
from __future__ import annotations

import pandas as pd
import pytest
from corpus_readers import A, B

from pathways.data import EventLog
from pathways.errors import PathwaysInputError
from pathways.io import read_meds, write_meds


def _log() -> EventLog:
    return EventLog.from_pandas(pd.DataFrame({"patient_id": [A, A, B], "time": ["2020-01-01", "2020-01-05",
                                                                                 "2020-02-01"],
                                              "code": ["x", "y", "x"]}))


def test_round_trip_is_the_reference(tmp_path):
    _log().to_parquet(tmp_path / "log.parquet")
    back = EventLog.read_parquet(tmp_path / "log.parquet")
    assert back.n_events == 3 and back.patients["patient_id"].tolist() == [A, B]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_events_parquet_is_named(tmp_path, damage):
    path = tmp_path / "log.parquet"
    _log().to_parquet(path)
    data = path.read_bytes()
    path.write_bytes({"garbage": b"not a parquet file at all", "truncated": data[: len(data) // 2],
                      "empty": b""}[damage])
    with pytest.raises(PathwaysInputError, match=r"cannot read parquet file .*log\.parquet"):
        EventLog.read_parquet(path)


@pytest.mark.parametrize("sidecar", ["patients", "codes"])
def test_missing_sidecar_is_named(tmp_path, sidecar):
    _log().to_parquet(tmp_path / "log.parquet")
    (tmp_path / f"log.{sidecar}.parquet").unlink()
    with pytest.raises(PathwaysInputError, match=rf"cannot read parquet file .*log\.{sidecar}\.parquet"):
        EventLog.read_parquet(tmp_path / "log.parquet")


def test_sidecar_from_another_write_is_refused(tmp_path):
    _log().to_parquet(tmp_path / "log.parquet")
    other = _log().select_patients([0])
    other.to_parquet(tmp_path / "other.parquet")
    (tmp_path / "other.patients.parquet").replace(tmp_path / "log.patients.parquet")
    with pytest.raises(PathwaysInputError, match=r"log\.patients\.parquet: 1 patients, the events file expects 2 "
                                                  r"\(files from different writes\)"):
        EventLog.read_parquet(tmp_path / "log.parquet")


def test_meds_folder_without_shards_is_named(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(PathwaysInputError, match=r"MEDS folder .*: no data/\*\.parquet shards"):
        read_meds(tmp_path)


def test_corrupt_meds_shard_is_named(tmp_path):
    write_meds(_log(), tmp_path / "meds")
    shard = next((tmp_path / "meds" / "data").rglob("*.parquet"))
    shard.write_bytes(b"garbage")
    with pytest.raises(PathwaysInputError, match=r"MEDS folder .*: cannot read a shard"):
        read_meds(tmp_path / "meds")


def test_french_export_semicolons_latin1_dates_before_1970(tmp_path):
    """A messy real-shaped export: ';' separators, latin-1 accents, leading-zero ids and codes, decades of history
    back to 1948. Read as written, with negative day counts before 1970, and no file handle left open."""
    events = tmp_path / "events.csv"
    events.write_bytes("BEN_NIR_PSA;date;code;libellé\n0123;1948-03-02;0410;fièvre\n123;1949-07-15;410;fièvre\n"
                       "0123;2019-11-30;C03CA01;furosémide\n".encode("latin-1"))
    patients = tmp_path / "patients.csv"
    patients.write_bytes("BEN_NIR_PSA;birth\n0123;1931-01-01\n123;1940-05-01\n".encode("latin-1"))
    log = EventLog.read_csv(events, patients=patients, patient_columns={"patient_id": "BEN_NIR_PSA"},
                            columns={"patient_id": "BEN_NIR_PSA", "time": "date", "code": "code"})
    frame, people = log.to_pandas()
    assert sorted(people["patient_id"]) == ["0123", "123"]
    assert sorted(log.vocab.codes) == ["0410", "410", "C03CA01"]
    by_patient = frame.groupby("patient_id")["time"].apply(list).to_dict()
    assert by_patient == {"0123": [-7975.0, 18230.0], "123": [-7475.0]}  # days since 1970-01-01
    assert people.set_index("patient_id")["birth"].to_dict() == {"0123": -14245.0, "123": -10837.0}
