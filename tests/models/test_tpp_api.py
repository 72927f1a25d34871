"""Estimator face of the neural TPPs: input checks, EventLog input, checkpoint state, sampling reproducibility."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from pathways.data.eventlog import EventLog
from pathways.encode.sequences import Sequences, to_sequences
from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.models import NotFittedError, PathwaysEstimator
from pathways.models.tpp import RMTPP, LogNormMix, NeuralHawkes, SelfAttentiveHawkes, TransformerHawkes
from pathways.synthetic.hawkes import simulate_hawkes

MODELS = [RMTPP, NeuralHawkes, TransformerHawkes, LogNormMix, SelfAttentiveHawkes]
TINY = dict(hidden_size=4, max_epochs=2, batch_size=16, device="cpu")


def _seqs(n: int = 24, seed: int = 0) -> Sequences:
    return simulate_hawkes(np.array([0.5, 0.3, 0.2]), 0.2 * np.eye(3), end=20.0, n_sequences=n, seed=seed)


@pytest.fixture(scope="module", params=MODELS, ids=lambda c: c.__name__)
def fitted(request: pytest.FixtureRequest) -> PathwaysEstimator:
    extra = {"n_heads": 2} if request.param in (TransformerHawkes, SelfAttentiveHawkes) else {}
    return request.param(**TINY, **extra).fit(_seqs())


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_init_stores_params_and_clone_works(cls: type) -> None:
    model = cls(hidden_size=7, lr=0.01)
    params = model.get_params()
    assert params["hidden_size"] == 7 and params["lr"] == 0.01
    assert clone(model).get_params() == params
    assert not any(k.endswith("_") for k in vars(model))
    assert cls.input_kind == "sequences"


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_unfitted_model_refuses_to_score(cls: type) -> None:
    with pytest.raises(NotFittedError):
        cls().score(_seqs(2))


def test_fit_rejects_bad_input() -> None:
    with pytest.raises(PathwaysInputError, match="argument .data."):
        RMTPP(**TINY).fit(np.zeros(3))
    empty = Sequences(np.zeros(0), np.zeros(0, np.int64), np.array([0, 0]), np.zeros(1), np.ones(1), n_codes=2)
    with pytest.raises(PathwaysInputError, match="no event"):
        RMTPP(**TINY).fit(empty)


@pytest.mark.parametrize("cls,params,match", [
    (RMTPP, {"hidden_size": 0}, "hidden_size: expected an integer >= 1"),
    (RMTPP, {"hidden_size": 2.5}, "hidden_size"),
    (RMTPP, {"max_epochs": 0}, "max_epochs"),
    (RMTPP, {"lr": -1.0}, "lr: expected a number > 0"),
    (RMTPP, {"lr": float("nan")}, "lr"),
    (RMTPP, {"weight_decay": -0.1}, "weight_decay"),
    (RMTPP, {"rnn_type": "lstm"}, "rnn_type.*'lstm'"),
    (NeuralHawkes, {"n_mc_samples": 0}, "n_mc_samples"),
    (NeuralHawkes, {"n_quadrature": 0}, "n_quadrature"),
    (TransformerHawkes, {"hidden_size": 5, "n_heads": 2}, "hidden_size: 5 is not a multiple of n_heads=2"),
    (TransformerHawkes, {"dropout": 1.5}, r"dropout: expected a number in \[0, 1\)"),
    (TransformerHawkes, {"n_layers": 0}, "n_layers"),
    (SelfAttentiveHawkes, {"hidden_size": 6, "n_heads": 4}, "hidden_size: 6 is not a multiple of n_heads=4"),
    (SelfAttentiveHawkes, {"n_mc_samples": 0}, "n_mc_samples"),
    (SelfAttentiveHawkes, {"dropout": -0.1}, "dropout"),
    (LogNormMix, {"n_components": 0}, "n_components"),
    (LogNormMix, {"min_gap": -1.0}, "min_gap"),
])
def test_fit_rejects_bad_hyper_parameters(cls: type, params: dict, match: str) -> None:
    # checked before any work: torch's own errors (or a NaN loss) would not name the parameter
    with pytest.raises(PathwaysInputError, match=match):
        cls(**{**TINY, **params}).fit(_seqs(4))


def test_score_rejects_other_code_count(fitted: PathwaysEstimator) -> None:
    other = simulate_hawkes(np.array([0.5, 0.3]), np.zeros((2, 2)), end=10.0, n_sequences=3, seed=1)
    with pytest.raises(PathwaysInputError, match="codes"):
        fitted.score(other)


def test_fit_returns_self_and_learns_attributes(fitted: PathwaysEstimator) -> None:
    assert fitted.n_codes_ == 3 and fitted.time_scale_ > 0 and fitted.max_gap_ > 0
    assert len(fitted.history_) == 2 and "train_loss" in fitted.history_[0]
    assert np.isfinite(fitted.score(_seqs(8, seed=3)))


def test_checkpoint_state_round_trip(fitted: PathwaysEstimator) -> None:
    state = fitted.export_state()
    assert any(k.startswith("module_.") for k in state["arrays"])
    restored = PathwaysEstimator.import_state(state)
    test = _seqs(8, seed=4)
    assert type(restored) is type(fitted)
    np.testing.assert_allclose(restored.score(test), fitted.score(test), rtol=1e-6)
    np.testing.assert_allclose(restored.predict_next(test).dt, fitted.predict_next(test).dt, rtol=1e-5)


def test_sampling_is_reproducible_and_inside_window(fitted: PathwaysEstimator) -> None:
    a, b = fitted.sample(5, 15.0, seed=3), fitted.sample(5, 15.0, seed=3)
    np.testing.assert_array_equal(a.times, b.times)
    np.testing.assert_array_equal(a.marks, b.marks)
    assert np.all((a.times >= 0) & (a.times <= 15.0)) and np.all(a.end == 15.0)
    with pytest.raises(PathwaysInputError, match="end_time"):
        fitted.sample(2, -1.0, seed=0)


def test_sample_cap_warns(fitted: PathwaysEstimator) -> None:
    with pytest.warns(PathwaysDataWarning, match="max_events"):
        capped = fitted.sample(3, 200.0, seed=0, max_events=2)
    assert capped.lengths.max() <= 2


def test_eventlog_input_is_reencoded_with_the_model_vocabulary() -> None:
    events = pd.DataFrame({"patient_id": [1, 1, 1, 2, 2, 3], "time": [0.5, 1.0, 2.5, 0.2, 3.0, 1.0],
                           "code": ["A", "B", "A", "B", "C", "A"]})
    log = EventLog.from_pandas(events)
    model = RMTPP(**TINY).fit(log)
    assert list(model.vocab_.codes) == ["A", "B", "C"]
    subset = EventLog.from_pandas(events[events.code != "B"])  # vocabulary A, C: C has index 1 here, 2 in the model
    seqs = to_sequences(subset)
    by_hand = Sequences(seqs.times, np.array([0, 2])[seqs.marks], seqs.offsets, seqs.start, seqs.end, n_codes=3)
    np.testing.assert_allclose(model.score_samples(subset), model.score_samples(by_hand), rtol=1e-6)
    with pytest.raises(PathwaysInputError):
        model.score(EventLog.from_pandas(events.assign(code=events.code.replace("C", "Z"))))


def test_lognormmix_warns_about_ties() -> None:
    seqs = Sequences(np.array([1.0, 1.0, 2.0, 0.5]), np.array([0, 1, 0, 1]), np.array([0, 3, 4]), np.zeros(2),
                     np.full(2, 3.0), n_codes=2)
    with pytest.warns(PathwaysDataWarning, match="ties"):
        LogNormMix(**TINY).fit(seqs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RMTPP(**TINY).fit(seqs)  # intensity models give ties a finite density: no warning


def test_thp_weights_from_before_the_relaxation_rate_are_refused(tmp_path) -> None:
    """A TransformerHawkes checkpoint without the ``floor`` term (the former parameterisation) fails to load with a
    CheckpointError that names the missing term; the same checkpoint with it loads."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    from pathways.checkpoint import CheckpointError, _digest, load, save

    model = TransformerHawkes(**TINY, n_heads=2).fit(_seqs())
    path = save(model, tmp_path / "thp.pt")
    np.testing.assert_allclose(load(path).score(_seqs(8, seed=5)), model.score(_seqs(8, seed=5)), rtol=1e-6)
    with safe_open(str(path), framework="pt") as fh:
        metadata = dict(fh.metadata())
        arrays = {k: fh.get_tensor(k).clone() for k in fh.keys() if not k.startswith("module_.floor.")}
    metadata["digest"] = _digest(metadata["header"], arrays)
    old = tmp_path / "thp_old.pt"
    save_file(arrays, str(old), metadata=metadata)
    assert json.loads(metadata["header"])["class"].endswith("TransformerHawkes")
    with pytest.raises(CheckpointError, match=r"(?s)incompatible.*without the 'floor' term.*refit"):
        load(old)
