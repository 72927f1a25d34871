"""Checkpoint format: round trips, integrity checks, safe loading of crafted files, the former (torch.save) format."""
from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from safetensors import safe_open
from safetensors.torch import save_file

from pathways.checkpoint import FORMAT, CheckpointError, _digest, data_fingerprint, load, read, save
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


def stored(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Metadata and tensors of a safetensors checkpoint, read with the safetensors library alone (copies: the
    tensors must not stay mapped on a file the test then rewrites)."""
    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata()), {k: fh.get_tensor(k).clone() for k in fh.keys()}


def rewrite(path: Path, metadata: dict[str, str], arrays: dict[str, torch.Tensor], *, digest: bool) -> None:
    """Write an edited checkpoint; ``digest=True`` recomputes the digest as a careful forger would."""
    if digest:
        metadata = {**metadata, "digest": _digest(metadata["header"], arrays)}
    save_file(arrays, str(path), metadata=metadata)


def edit_header(path: Path, edit) -> None:
    """Apply ``edit(header dict)`` to a checkpoint's JSON header, with a recomputed digest."""
    metadata, arrays = stored(path)
    header = json.loads(metadata["header"])
    edit(header)
    rewrite(path, {**metadata, "header": json.dumps(header, sort_keys=True)}, arrays, digest=True)


def save_format_1(estimator, path: Path, **kwargs) -> Path:
    """The former writer (format version 1): one torch.save zip of {format, format_version, header, arrays, digest}.

    Written the way pathways <= 0.1 wrote it: a current checkpoint's header and arrays, re-packed."""
    metadata, arrays = stored(save(estimator, path, **kwargs))
    payload = {"format": FORMAT, "format_version": 1, "header": metadata["header"], "arrays": arrays,
               "digest": _digest(metadata["header"], arrays)}
    torch.save(payload, path)
    return path


def test_checkpoint_is_one_safetensors_file_of_json_and_tensors(tmp_path, hawkes_model):
    path = save(hawkes_model, tmp_path / "m.pt")
    metadata, arrays = stored(path)
    assert metadata["format"] == FORMAT and metadata["format_version"] == "2"
    header = json.loads(metadata["header"])
    assert {"params", "meta", "config", "metrics", "data_fingerprint", "pathways_version"} <= set(header)
    assert metadata["digest"] == _digest(metadata["header"], arrays)
    np.testing.assert_array_equal(arrays["adjacency_"].numpy(), hawkes_model.adjacency_)
    assert not zipfile.is_zipfile(path) and path.read_bytes()[:1] != b"\x80"  # neither a torch zip nor a pickle
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temporary file


def test_loading_runs_no_unpickling(tmp_path, hawkes_model, hawkes_data, monkeypatch):
    path = save(hawkes_model, tmp_path / "m.pt")

    def forbidden(*args, **kwargs):
        raise AssertionError("unpickling was attempted")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    assert load(path).score(hawkes_data) == hawkes_model.score(hawkes_data)


def test_mmap_keeps_arrays_on_the_file(tmp_path, hawkes_model):
    path = save(hawkes_model, tmp_path / "m.pt")
    mapped, copied = read(path, mmap=True), read(path)
    np.testing.assert_array_equal(mapped.arrays["adjacency_"].numpy(), copied.arrays["adjacency_"].numpy())
    # overwrite the file's bytes in place: a mapping sees the change, a private copy does not
    data = bytearray(path.read_bytes())
    raw = copied.arrays["adjacency_"].numpy().tobytes()
    at = bytes(data).index(raw)
    data[at:at + len(raw)] = np.full(hawkes_model.adjacency_.shape, 7.0).tobytes()
    with open(path, "r+b") as fh:
        fh.write(bytes(data))
    assert float(mapped.arrays["adjacency_"][0, 0]) == 7.0
    np.testing.assert_array_equal(copied.arrays["adjacency_"].numpy(), hawkes_model.adjacency_)


def test_former_torch_save_format_still_loads(tmp_path, hawkes_model, hawkes_data):
    path = save_format_1(hawkes_model, tmp_path / "old.pt", metrics={"ll": -1.5}, data=hawkes_data)
    assert zipfile.is_zipfile(path)
    loaded = load(path)
    np.testing.assert_array_equal(loaded.adjacency_, hawkes_model.adjacency_)
    assert loaded.score(hawkes_data) == hawkes_model.score(hawkes_data)
    assert loaded.checkpoint_["metrics"] == {"ll": -1.5}
    assert loaded.checkpoint_["data_fingerprint"] == data_fingerprint(hawkes_data)


def test_truncated_checkpoint_fails_clearly(tmp_path, hawkes_model):
    for name, writer in (("new.pt", save), ("old.pt", save_format_1)):
        path = writer(hawkes_model, tmp_path / name)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            load(path)


def test_modified_checkpoint_fails_digest(tmp_path, hawkes_model):
    path = save(hawkes_model, tmp_path / "m.pt")
    metadata, arrays = stored(path)
    arrays["adjacency_"] = arrays["adjacency_"] * 2  # tampered weights, stale digest
    rewrite(path, metadata, arrays, digest=False)
    with pytest.raises(CheckpointError, match="digest does not match"):
        load(path)
    old = save_format_1(hawkes_model, tmp_path / "old.pt")
    payload = torch.load(old, weights_only=True)
    payload["arrays"]["adjacency_"] = payload["arrays"]["adjacency_"] * 2
    torch.save(payload, old)
    with pytest.raises(CheckpointError, match="digest does not match"):
        load(old)


def test_incompatible_format_version_fails_naming_versions(tmp_path, hawkes_model):
    path = save(hawkes_model, tmp_path / "m.pt")
    metadata, arrays = stored(path)
    rewrite(path, {**metadata, "format_version": "99"}, arrays, digest=False)
    with pytest.raises(CheckpointError, match=r"format_version 99; .* reads versions \[1, 2\]"):
        load(path)


def test_foreign_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a pathways checkpoint"):
        load(path)
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))  # another tool's safetensors file
    with pytest.raises(CheckpointError, match="not a pathways checkpoint"):
        load(tmp_path / "foreign.safetensors")
    (tmp_path / "notes.txt").write_text("not a checkpoint at all")
    with pytest.raises(CheckpointError, match="neither a safetensors file nor a torch.save file"):
        load(tmp_path / "notes.txt")
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
    edit_header(path, lambda header: header.update({"class": "os.system"}))
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
