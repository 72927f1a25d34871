"""Attributions -> factors table: RETAIN contributions, integrated gradients, linear decomposition, permutations."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from pathways.errors import PathwaysInputError
from pathways.factors.attribution import (
    _permute_columns,
    attribution_factors,
    integrated_gradients,
    logistic_attributions,
    permutation_importance,
    retain_attributions,
)
from pathways.data.tables import FACTOR_COLUMNS
from pathways.models.recurrent.attribution import _ig_completeness
from pathways.encode import OutcomeData
from pathways.models.recurrent import RETAIN, CountsLogisticBaseline, GRUOutcome

DRIVERS = {"code_0", "code_1", "code_2"}


def simulate(n: int, seed: int, n_codes: int = 20, max_bins: int = 12, equal_lengths: bool = False) -> OutcomeData:
    """Poisson counts per 30-day bin; outcome driven by code_0 in the last 2 bins (+4), log1p(count code_1) (x2)
    and any code_2 (-3). The other 17 codes are noise."""
    g = np.random.default_rng(seed)
    rates = np.r_[np.full(3, 0.15), g.uniform(0.05, 0.4, n_codes - 3)]
    lengths = np.full(n, max_bins) if equal_lengths else g.integers(max_bins // 2, max_bins + 1, n)
    offsets = np.r_[0, np.cumsum(lengths)]
    counts = g.poisson(rates, size=(offsets[-1], n_codes)).astype(np.float64)
    owner = np.repeat(np.arange(n), lengths)
    lag = offsets[1:][owner] - 1 - np.arange(offsets[-1])
    recent0 = np.bincount(owner, weights=(counts[:, 0] > 0) & (lag < 2), minlength=n) > 0
    total1 = np.bincount(owner, weights=counts[:, 1], minlength=n)
    any2 = np.bincount(owner, weights=counts[:, 2], minlength=n) > 0
    logit = -2.5 + 4.0 * recent0 + 2.0 * np.log1p(total1) - 3.0 * any2
    y = (g.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return OutcomeData(sp.csr_matrix(counts), offsets, y, bin_width=30.0)


FAST = dict(device="cpu", max_epochs=20, batch_size=128, lr=1e-2, seed=0)


@pytest.fixture(scope="module")
def data():
    return simulate(2000, 0), simulate(500, 2), simulate(800, 1)


@pytest.fixture(scope="module")
def retain(data):
    return RETAIN(embedding_dim=32, alpha_hidden=32, beta_hidden=32, **FAST).fit(data[0], validation=data[1])


@pytest.fixture(scope="module")
def gru(data):
    return GRUOutcome(hidden_size=32, embedding_dim=32, **FAST).fit(data[0], validation=data[1])


def _top(frame, k: int = 3) -> set[str]:
    whole = frame[frame["lag_days"].isna()]
    return set(whole.reindex(whole["effect"].abs().sort_values(ascending=False).index)["source"].head(k))


def _check_recent_lags(frame) -> None:
    """code_0 only matters in the two most recent bins (lag midpoints 15 and 45 days)."""
    c0 = frame[(frame["source"] == "code_0") & frame["lag_days"].notna()].set_index("lag_days")["effect"]
    assert c0.loc[[15.0, 45.0]].min() > 3 * c0.drop([15.0, 45.0]).abs().max()


def test_retain_attributions_rank_true_drivers(data, retain):
    frame = retain_attributions(retain, data[2])
    assert list(frame.columns[:7]) == list(FACTOR_COLUMNS) and (frame["method"] == "retain").all()
    assert _top(frame) == DRIVERS
    whole = frame[frame["lag_days"].isna()].set_index("source")
    assert whole.loc["code_2", "effect"] < 0 < whole.loc["code_0", "effect"]  # protective vs harmful
    assert whole.loc["code_1", "ci_low"] > 0 and whole.loc["code_2", "ci_high"] < 0
    assert (frame["ci_low"] <= frame["effect"]).all() and (frame["effect"] <= frame["ci_high"]).all()
    _check_recent_lags(frame)
    assert set(retain_attributions(retain, data[2], lags="total")["lag_days"].isna()) == {True}


def test_integrated_gradients_rank_true_drivers_and_complete(data, gru, retain):
    frame = integrated_gradients(gru, data[2], n_steps=32)
    assert (frame["method"] == "integrated_gradients").all()
    assert _top(frame) == DRIVERS
    _check_recent_lags(frame)
    total, delta = _ig_completeness(gru, data[2].subset(np.arange(100)), n_steps=32)
    # completeness: attributions add up to logit(x) - logit(empty history)
    np.testing.assert_allclose(total, delta, atol=0.02 * max(1.0, np.abs(delta).max()))
    assert frame.attrs["completeness_gap"] < 0.01
    with pytest.warns(UserWarning, match="raise n_steps"):
        coarse = integrated_gradients(gru, data[2].subset(np.arange(200)), n_steps=1, max_gap=0.0)
    assert coarse.attrs["completeness_gap"] > frame.attrs["completeness_gap"]
    # also works for RETAIN (any module exposing logits)
    assert _top(integrated_gradients(retain, data[2], lags="total")) == DRIVERS


def test_logistic_attributions_and_dispatch(data, retain, gru):
    base = CountsLogisticBaseline(windows_days=(60,)).fit(data[0])
    frame = logistic_attributions(base, data[2])
    assert _top(frame) == DRIVERS and (frame["method"] == "logistic").all()
    # exact decomposition: mean contribution x patients with the code sums, over codes, to the summed logit shift
    feats = base._raw_features(data[2]) @ sp.diags(1.0 / base.feature_scale_)
    logit_shift = float((feats @ base.coef_[0]).sum())
    assert float((frame["effect"] * frame["n"]).sum()) == pytest.approx(logit_shift, rel=1e-8)
    assert (attribution_factors(retain, data[2])["method"] == "retain").all()
    assert (attribution_factors(gru, data[2], lags="total")["method"] == "integrated_gradients").all()
    assert (attribution_factors(base, data[2])["method"] == "logistic").all()
    # max_samples explains a seeded random subset
    small = attribution_factors(base, data[2], max_samples=100, seed=3)
    assert small["n"].max() <= 100
    assert small.equals(attribution_factors(base, data[2], max_samples=100, seed=3))


def test_permutation_importance_ranks_drivers_for_any_model(data, retain):
    for model in (retain, CountsLogisticBaseline().fit(data[0])):
        frame = permutation_importance(model, data[2], n_repeats=3, seed=0)
        assert (frame["method"] == "permutation_auroc").all() and frame["lag_days"].isna().all()
        assert set(frame["source"].head(3)) == DRIVERS
        noise = frame[~frame["source"].isin(DRIVERS)]
        assert frame.set_index("source").loc[list(DRIVERS), "effect"].min() > 5 * noise["effect"].abs().max()


def test_permutation_matches_sklearn_on_counts():
    """With equal history lengths, shuffling a code's bins across patients = shuffling its count column."""
    from sklearn.inspection import permutation_importance as sk_permutation_importance
    from sklearn.linear_model import LogisticRegression

    train = simulate(1500, 5, equal_lengths=True)
    test = simulate(800, 6, equal_lengths=True)
    model = CountsLogisticBaseline().fit(train)
    frame = permutation_importance(model, test, n_repeats=10, seed=1).set_index("source")
    ours, ours_sd = frame["effect"].to_numpy(), frame["std"].to_numpy()
    feats = np.log1p(test.counts().toarray()) / model.feature_scale_
    ref = LogisticRegression(max_iter=1000)
    ref.coef_, ref.intercept_, ref.classes_ = model.coef_, model.intercept_, np.array([0.0, 1.0])
    sk = sk_permutation_importance(ref, feats, test.y[:, 0], scoring="roc_auc", n_repeats=10, random_state=1)
    col = [int(s.split("_")[1]) for s in frame.index]
    theirs, theirs_sd = np.asarray(sk.importances_mean)[col], np.asarray(sk.importances_std)[col]
    # same estimand, independent shuffles: agree within Monte-Carlo error (4 standard errors of the difference)
    se = np.sqrt((ours_sd**2 + theirs_sd**2) / 10)
    assert np.all(np.abs(ours - theirs) <= 4 * se + 2e-3), np.c_[ours, theirs, se]
    assert np.corrcoef(ours, theirs)[0, 1] > 0.98


def test_permute_columns_moves_only_selected_codes():
    counts = np.arange(1, 25, dtype=float).reshape(8, 3)
    d = OutcomeData(sp.csr_matrix(counts), np.array([0, 4, 8]), np.array([0.0, 1.0]))
    same = _permute_columns(d, np.array([0]), np.array([0, 1]))
    np.testing.assert_array_equal(same.matrix.toarray(), counts)
    swapped = _permute_columns(d, np.array([0]), np.array([1, 0])).matrix.toarray()
    np.testing.assert_array_equal(swapped[:4, 0], counts[4:, 0])
    np.testing.assert_array_equal(swapped[4:, 0], counts[:4, 0])
    np.testing.assert_array_equal(swapped[:, 1:], counts[:, 1:])
    # a shorter receiver keeps the donor's most recent bins
    ragged = OutcomeData(sp.csr_matrix(counts), np.array([0, 6, 8]), np.array([0.0, 1.0]))
    moved = _permute_columns(ragged, np.array([2]), np.array([1, 0])).matrix.toarray()
    np.testing.assert_array_equal(moved[6:, 2], counts[4:6, 2])
    np.testing.assert_array_equal(moved[4:6, 2], counts[6:8, 2])
    assert moved[:4, 2].sum() == 0


def test_groups(data):
    model = CountsLogisticBaseline().fit(data[0])
    frame = permutation_importance(model, data[2], groups={"drivers": ["code_0", "code_1"], "noise": ["code_5"]},
                                   n_repeats=2).set_index("source")
    assert frame.loc["drivers", "effect"] > 0.1 > abs(frame.loc["noise", "effect"])
    assert frame.loc["drivers", "n"] >= frame.loc["noise", "n"] * 0.5


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m, d: retain_attributions(m["gru"], d), "needs a fitted RETAIN"),
        (lambda m, d: retain_attributions(m["retain"], d, lags="week"), "lags"),
        (lambda m, d: integrated_gradients(m["gru"], d, n_steps=0), "n_steps"),
        (lambda m, d: integrated_gradients(CountsLogisticBaseline(), d), "expected a fitted GRUOutcome"),
        (lambda m, d: permutation_importance(m["gru"], d, scoring="f1"), "scoring"),
        (lambda m, d: permutation_importance(m["gru"], d, groups={"g": ["nope"]}), "1 code"),
        (lambda m, d: attribution_factors(m["gru"], d, method="shap"), "method"),
        (lambda m, d: logistic_attributions(m["gru"], d), "CountsLogisticBaseline"),
    ],
)
def test_bad_input(data, gru, retain, call, match):
    with pytest.raises(PathwaysInputError, match=match):
        call({"gru": gru, "retain": retain}, data[2])
