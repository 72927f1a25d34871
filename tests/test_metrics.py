"""pathways.metrics against scikit-learn (the reference) and on bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from pathways import metrics as pm
from pathways.errors import PathwaysInputError


@pytest.fixture
def binary():
    g = np.random.default_rng(0)
    n = 500
    y = (g.random(n) < 0.3).astype(int)
    p = np.clip(0.3 + 0.4 * (y - 0.3) + 0.2 * g.standard_normal(n), 0.0, 1.0)
    p[:40] = np.round(p[:40], 1)  # ties exercise mid-ranks and threshold blocks
    return y, p


@pytest.fixture
def multilabel():
    g = np.random.default_rng(1)
    n, k = 400, 4
    y = (g.random((n, k)) < np.array([0.1, 0.3, 0.5, 0.05])).astype(int)
    p = np.clip(0.5 * y + 0.5 * g.random((n, k)), 0, 1)
    return y, p


def test_auroc_auprc_match_sklearn_binary(binary):
    y, p = binary
    assert pm.auroc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert pm.auprc(y, p) == pytest.approx(skm.average_precision_score(y, p), abs=1e-12)
    # scikit-learn style (n, 2) probabilities are accepted for a binary target
    assert pm.auroc(y, np.c_[1 - p, p]) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)


def test_multilabel_macro_and_per_label(multilabel):
    y, p = multilabel
    assert pm.auroc(y, p) == pytest.approx(skm.roc_auc_score(y, p, average="macro"), abs=1e-12)
    np.testing.assert_allclose(pm.auroc(y, p, average=None), skm.roc_auc_score(y, p, average=None), atol=1e-12)
    assert pm.auprc(y, p) == pytest.approx(skm.average_precision_score(y, p, average="macro"), abs=1e-12)
    np.testing.assert_allclose(pm.brier_score(y, p, average=None), ((p - y) ** 2).mean(axis=0))


def test_brier_and_log_likelihood_match_sklearn(binary):
    y, p = binary
    assert pm.brier_score(y, p) == pytest.approx(skm.brier_score_loss(y, p), abs=1e-12)
    pc = np.clip(p, 1e-12, 1 - 1e-12)
    assert pm.mean_log_likelihood(y, p) == pytest.approx(-skm.log_loss(y, pc), rel=1e-9)


def test_multilabel_log_likelihood_sums_labels(multilabel):
    y, p = multilabel
    pc = np.clip(p, 1e-12, 1 - 1e-12)
    expected = sum(-skm.log_loss(y[:, k], pc[:, k], labels=[0, 1]) for k in range(y.shape[1]))
    assert pm.mean_log_likelihood(y, p) == pytest.approx(expected, rel=1e-9)


def test_ece_matches_calibration_curve(binary):
    y, p = binary
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    # calibration_curve drops empty bins; recover each bin's weight from the bin assignment
    bins = np.searchsorted(np.linspace(0, 1, 11)[1:-1], p)
    weights = np.bincount(bins, minlength=10)
    weights = weights[weights > 0] / y.size
    expected = float(np.sum(weights * np.abs(prob_true - prob_pred)))
    assert pm.expected_calibration_error(y, p, n_bins=10) == pytest.approx(expected, abs=1e-12)


def test_ece_zero_for_calibrated_and_large_for_inverted():
    y = np.r_[np.zeros(80), np.ones(20)]
    p = np.full(100, 0.2)
    assert pm.expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)
    assert pm.expected_calibration_error(y, 1 - y) == pytest.approx(1.0)
    assert pm.expected_calibration_error(y, p, strategy="quantile") == pytest.approx(0.0, abs=1e-12)


def test_next_type_metrics_match_sklearn():
    g = np.random.default_rng(2)
    n, k = 300, 6
    scores = g.random((n, k))
    y = np.where(g.random(n) < 0.5, scores.argmax(1), g.integers(0, k, n))
    assert pm.next_type_accuracy(y, scores) == pytest.approx(skm.accuracy_score(y, scores.argmax(1)))
    for top in (1, 2, 3):
        assert pm.top_k_accuracy(y, scores, k=top) == pytest.approx(
            skm.top_k_accuracy_score(y, scores, k=top, labels=np.arange(k))
        )
    pred = scores.argmax(1)
    assert pm.macro_f1(y, pred) == pytest.approx(skm.f1_score(y, pred, average="macro"))
    # a class never seen: with n_classes it counts as F1 = 0, as sklearn with explicit labels
    assert pm.macro_f1(y, pred, n_classes=k + 1) == pytest.approx(
        skm.f1_score(y, pred, average="macro", labels=np.arange(k + 1), zero_division=0)
    )


def test_time_errors_and_loglik_per_event():
    t = np.array([1.0, 2.0, 4.0])
    p = np.array([1.5, 2.0, 2.0])
    assert pm.next_time_rmse(t, p) == pytest.approx(np.sqrt(skm.mean_squared_error(t, p)))
    assert pm.next_time_mae(t, p) == pytest.approx(skm.mean_absolute_error(t, p))
    assert pm.loglik_per_event([-10.0, -20.0], [5, 15]) == pytest.approx(-1.5)


def test_outcome_and_next_event_reports(binary):
    y, p = binary
    rep = pm.outcome_metrics(y, p)
    assert set(rep) == {"auroc", "auprc", "brier", "ece", "log_likelihood", "prevalence", "n"}
    assert rep["auroc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert rep["n"] == y.size
    rep = pm.outcome_metrics(np.zeros(5), np.full(5, 0.1))  # AUROC undefined with one class -> NaN, others defined
    assert np.isnan(rep["auroc"]) and rep["brier"] == pytest.approx(0.01)
    ne = pm.next_event_metrics([1.0, 2.0], [1.0, 3.0], [0, 1], np.array([[0.9, 0.1], [0.8, 0.2]]), k=5)
    assert ne["accuracy"] == 0.5 and ne["top_k"] == 1.0 and ne["rmse"] == pytest.approx(np.sqrt(0.5))


def test_undefined_labels_are_nan_and_skipped():
    y = np.array([[0, 1], [1, 1], [0, 1], [1, 1]])
    p = np.array([[0.1, 0.3], [0.9, 0.2], [0.2, 0.8], [0.7, 0.5]])
    per = pm.auroc(y, p, average=None)
    assert per[0] == 1.0 and np.isnan(per[1])
    assert pm.auroc(y, p) == 1.0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: pm.auroc([0, 1, 2], [0.1, 0.2, 0.3]), "y_true: 1 value"),
        (lambda: pm.auroc([0, 1, 1], [0.1, np.nan, 0.3]), "y_score: 1 non-finite"),
        (lambda: pm.auroc([0, 1], [0.1, 0.2, 0.3]), "y_true has 2 rows but y_score has 3"),
        (lambda: pm.auroc([1, 1, 1], [0.1, 0.2, 0.3]), "undefined for all 1 label"),
        (lambda: pm.brier_score([0, 1], [0.1, 1.2]), "y_prob: 1 probability value"),
        (lambda: pm.auroc(np.zeros((3, 2)), np.zeros((3, 3))), "2 label column"),
        (lambda: pm.top_k_accuracy([0, 1], np.zeros((2, 3)), k=4), "k: expected 1 <= k <= 3"),
        (lambda: pm.next_type_accuracy([0, -1], [0, 1]), "y_true: 1 value"),
        (lambda: pm.expected_calibration_error([0, 1], [0.1, 0.2], strategy="x"), "strategy"),
        (lambda: pm.loglik_per_event([-1.0], [0]), "total number of events is 0"),
        (lambda: pm.auroc([], []), "0 samples"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(PathwaysInputError, match=match):
        call()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6)), min_size=2, max_size=60))
def test_auroc_auprc_match_sklearn_with_heavy_ties(pairs):
    y = np.array([p[0] for p in pairs])
    s = np.array([p[1] for p in pairs], dtype=float) / 6.0  # few distinct scores: many ties
    if y.min() == y.max():
        return
    assert pm.auroc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert pm.auprc(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    assert pm.expected_calibration_error(y, s) <= 1.0
