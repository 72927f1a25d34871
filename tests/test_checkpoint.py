"""Checkpoint format: round trips, integrity checks, safe loading of crafted files."""
from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from pathways.checkpoint import FORMAT, CheckpointError, data_fingerprint, load, read, save
from pathways.models import HawkesExpKernel
from pathways.synthetic import simulate_hawkes


@pytest.fixture(scope="module")
def hawkes_data():
    return simulate_hawkes(np.array([0.3, 0.2]), np.array([[0.2, 0.0], [0.4, 0.1]]), end=60.0, n_sequences=20,
                           decays=1.0, seed=0)


@pytest.fixture(scope="module")
def hawkes_model(hawkes_data):
    return HawkesExpKernel(decay=1.0, max_iter=50).fit(hawkes_data)


def test_hawkes_round_trip_gives_identical_predictions(tmp_path, hawkes_model, hawkes_data):
    path = save(hawkes_model, tmp_path / "m.pt", config={"model": {"decay": 1.0}}, metrics={"ll": -1.5},
                data=hawkes_data, extra={"note": "test"})
    loaded = load(path)
    assert type(loaded) is HawkesExpKernel
    np.testing.assert_array_equal(loaded.adjacency_, hawkes_model.adjacency_)
    np.testing.assert_array_equal(loaded.baseline_, hawkes_model.baseline_)
    assert loaded.score(hawkes_data) == hawkes_model.score(hawkes_data)
    t = np.linspace(0, 60, 7)
    np.testing.assert_array_equal(loaded.intensity(hawkes_data[[0]], t), hawkes_model.intensity(hawkes_data[[0]], t))
    header = loaded.checkpoint_
    assert header["config"] == {"model": {"decay": 1.0}}
    assert header["metrics"] == {"ll": -1.5}
    assert header["data_fingerprint"] == data_fingerprint(hawkes_data)
    assert header["class"] == "pathways.models.hawkes.exp.HawkesExpKernel"
    assert header["pathways_version"] and header["torch_version"] == torch.__version__


def test_neural_tpp_round_trip_gives_identical_predictions(tmp_path, hawkes_data):
    from pathways.models import RMTPP

    model = RMTPP(hidden_size=8, max_epochs=1, batch_size=8, device="cpu", seed=0, progress=False).fit(hawkes_data)
    loaded = load(save(model, tmp_path / "rmtpp.pt"))
    before, after = model.predict_next(hawkes_data), loaded.predict_next(hawkes_data)
    np.testing.assert_array_equal(before.dt, after.dt)
    np.testing.assert_array_equal(before.mark_proba, after.mark_proba)
    assert loaded.score(hawkes_data) == model.score(hawkes_data)


def test_checkpoint_is_one_zip_of_json_and_tensors(tmp_path, hawkes_model):
    path = save(hawkes_model, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == FORMAT and payload["format_version"] == 1
    header = json.loads(payload["header"])
    assert {"params", "meta", "config", "metrics", "data_fingerprint", "pathways_version"} <= set(header)
    assert all(isinstance(v, torch.Tensor) for v in payload["arrays"].values())
    assert zipfile.is_zipfile(path)
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temporary file


def test_truncated_checkpoint_fails_clearly(tmp_path, hawkes_model):
    path = save(hawkes_model, tmp_path / "m.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load(path)


def test_modified_checkpoint_fails_digest(tmp_path, hawkes_model):
    path = save(hawkes_model, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["arrays"]["adjacency_"] = payload["arrays"]["adjacency_"] * 2  # tampered weights, stale digest
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="digest does not match"):
        load(path)


def test_incompatible_format_version_fails_naming_versions(tmp_path, hawkes_model):
    path = save(hawkes_model, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="format_version 99"):
        load(path)


def test_foreign_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a pathways checkpoint"):
        load(path)
    with pytest.raises(FileNotFoundError, match="no file"):
        load(tmp_path / "absent.pt")


class _Exploit:
    """Unpickling this object runs a shell command (the classic pickle attack)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_malicious_pickle_does_not_execute(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"format": FORMAT, "format_version": 1, "header": "{}", "arrays": {}, "digest": _Exploit(marker)}
    if writer == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError, match="refused by the safe loader|truncated or corrupt"):
        load(path)
    assert not marker.exists()


def test_class_outside_pathways_is_refused(tmp_path, hawkes_model):
    path = save(hawkes_model, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    header = json.loads(payload["header"])
    header["class"] = "os.system"
    payload["header"] = json.dumps(header, sort_keys=True)
    from pathways.checkpoint import _digest

    payload["digest"] = _digest(payload["header"], payload["arrays"])
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="outside the pathways package"):
        load(path)


def test_read_exposes_header_without_building(tmp_path, hawkes_model):
    ckpt = read(save(hawkes_model, tmp_path / "m.pt", metrics={"a": 1.0}))
    assert ckpt.class_path.endswith("HawkesExpKernel") and ckpt.metrics == {"a": 1.0}
    assert set(ckpt.arrays) >= {"adjacency_", "baseline_"}


def test_fingerprint_tracks_the_data(hawkes_data):
    assert data_fingerprint(hawkes_data) == data_fingerprint(hawkes_data[np.arange(len(hawkes_data))])
    assert data_fingerprint(hawkes_data) != data_fingerprint(hawkes_data[np.arange(len(hawkes_data) - 1)])


def test_load_on_unavailable_gpu_fails_clearly(tmp_path, hawkes_model):
    if torch.cuda.is_available():
        pytest.skip("CUDA present: the error path needs a machine without GPU")
    from pathways.errors import PathwaysInputError

    with pytest.raises(PathwaysInputError, match="CUDA is not available"):
        load(save(hawkes_model, tmp_path / "m.pt"), device="cuda")


def test_checkpoint_written_before_the_encoder_objects_still_predicts(tmp_path, monkeypatch):
    """A checkpoint of the former format: a ``trainer_kwargs`` parameter and the old ``encode`` dict in ``extra``
    (written by the pipeline before the encoder objects). It loads and encodes new patients as it did then."""
    from pathways.data.anchors import index_times
    from pathways.encode import most_frequent_diagnosis, outcome_dataset
    from pathways.models.recurrent import GRUOutcome
    from pathways.pipelines.infer import encode_like
    from pathways.synthetic import simulate_cohort

    log, _ = simulate_cohort(60, seed=0, n_drugs=6, n_diagnoses=3, n_acts=1, n_outcomes=2, n_strong=1, n_weak=1,
                             follow_up_years=[1.0, 2.0])
    code = most_frequent_diagnosis(log)
    old_encode = {"sequences": {}, "sparse_series": {"bin_days": 30.0, "value": "count"}, "sccs": {},
                  "labels": {"outcomes": [code], "horizon_days": 180.0, "lookback_days": 365.0, "index_time": None,
                             "censoring": "keep"}}
    # the encoding the former pipeline computed from that dict
    data = outcome_dataset(log, [code], 180.0, index_times(log, "midpoint"), lookback=365.0, bin_days=30.0,
                           value="count", censoring="keep")
    model = GRUOutcome(hidden_size=4, embedding_dim=4, max_epochs=1, device="cpu").fit(data)
    state = model.export_state()
    state["params"]["trainer_kwargs"] = None  # a parameter of the former GRUOutcome
    monkeypatch.setattr(model, "export_state", lambda: state)
    path = save(model, tmp_path / "old.pt", extra={"task": "outcome_risk", "encode": old_encode})
    loaded = load(path)
    assert loaded.input_kind == "outcome" and "trainer_kwargs" not in loaded.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(encode_like(loaded, log)), model.predict_proba(data))
