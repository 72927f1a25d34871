"""Neural TPPs trained on known generators: Poisson (match its likelihood), Hawkes (beat Poisson), sampling rates."""
from __future__ import annotations

import numpy as np
import pytest

from pathways.encode.sequences import Sequences
from pathways.models.tpp import RMTPP, LogNormMix, NeuralHawkes, SelfAttentiveHawkes, TransformerHawkes
from pathways.synthetic.hawkes import simulate_hawkes

RATES = np.array([0.4, 0.8])
WINDOW = 50.0
MODELS = [RMTPP, NeuralHawkes, TransformerHawkes, LogNormMix, SelfAttentiveHawkes]


def _settings(cls: type) -> dict:
    extra = {"n_heads": 2, "n_layers": 1} if cls in (TransformerHawkes, SelfAttentiveHawkes) else {}
    return dict(hidden_size=8, max_epochs=12, lr=1e-2, batch_size=8, patience=3, device="cpu", seed=0, **extra)


def _poisson(n: int, seed: int) -> Sequences:
    return simulate_hawkes(RATES, np.zeros((2, 2)), end=WINDOW, n_sequences=n, seed=seed)


def _poisson_loglik_per_event(seqs: Sequences, rates: np.ndarray) -> float:
    counts = np.bincount(seqs.marks, minlength=rates.size)
    total_time = float(np.sum(seqs.end - seqs.start))
    return float((counts @ np.log(rates) - rates.sum() * total_time) / seqs.n_events)


@pytest.fixture(scope="module", params=MODELS, ids=lambda c: c.__name__)
def poisson_fit(request: pytest.FixtureRequest) -> tuple:
    train, val, test = _poisson(64, 1), _poisson(32, 2), _poisson(64, 3)
    model = request.param(**_settings(request.param)).fit(train, validation=val)
    return model, train, test


def test_score_matches_poisson_likelihood(poisson_fit: tuple) -> None:
    model, _, test = poisson_fit
    assert abs(model.score(test) - _poisson_loglik_per_event(test, RATES)) < 0.03


def test_samples_reproduce_training_rates(poisson_fit: tuple) -> None:
    model, train, _ = poisson_fit
    sample = model.sample(200, WINDOW, seed=5)
    assert sample.n_codes == 2 and len(sample) == 200
    assert np.all(np.diff(sample.times)[np.diff(sample.sequence_ids) == 0] >= 0)
    observed = np.bincount(train.marks, minlength=2) / (len(train) * WINDOW)
    simulated = np.bincount(sample.marks, minlength=2) / (len(sample) * WINDOW)
    np.testing.assert_allclose(simulated, observed, rtol=0.12)


def test_next_event_prediction_on_poisson(poisson_fit: tuple) -> None:
    model, _, test = poisson_fit
    pred = model.predict_next(test)
    assert pred.dt.shape == (test.n_events,) and pred.mark_proba.shape == (test.n_events, 2)
    np.testing.assert_allclose(pred.mark_proba.sum(1), 1.0, rtol=1e-6)
    # memoryless truth: expected gap 1 / (total rate), type probabilities proportional to the rates
    assert abs(np.median(pred.dt) * RATES.sum() - 1.0) < 0.2
    np.testing.assert_allclose(pred.mark_proba.mean(0), RATES / RATES.sum(), atol=0.08)
    previous = np.where(np.isin(np.arange(test.n_events), test.offsets[:-1]), test.start[test.sequence_ids],
                        np.concatenate([[0.0], test.times[:-1]]))
    np.testing.assert_allclose(pred.time - pred.dt, previous, atol=1e-9)


def test_intensities_at_events_match_poisson_rates(poisson_fit: tuple) -> None:
    model, _, test = poisson_fit
    lam = model.intensities(test)
    assert lam.shape == (test.n_events, 2) and np.all(lam > 0)
    np.testing.assert_allclose(np.median(lam, axis=0), RATES, rtol=0.25)


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_beats_poisson_on_hawkes_data(cls: type) -> None:
    adjacency = np.array([[0.5, 0.0], [0.4, 0.3]])
    sim = dict(baseline=np.array([0.2, 0.2]), adjacency=adjacency, decays=2.0, end=40.0)
    train = simulate_hawkes(**sim, n_sequences=64, seed=11)
    test = simulate_hawkes(**sim, n_sequences=48, seed=12)
    rates = np.bincount(train.marks, minlength=2) / np.sum(train.end - train.start)  # Poisson MLE on train
    model = cls(**_settings(cls)).fit(train, validation=test)
    assert model.score(test) > _poisson_loglik_per_event(test, rates) + 0.05
