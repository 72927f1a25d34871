"""Recurrent outcome models: GRUOutcome, RETAIN, CountsLogisticBaseline, their inputs and outcome_dataset."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics import log_loss

from pathways.data.eventlog import EventLog
from pathways.encode.sparse import to_sparse_series
from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.metrics import auroc
from pathways.models.base import PathwaysEstimator
from pathways.encode import OutcomeData, outcome_dataset
from pathways.models.recurrent import RETAIN, CountsLogisticBaseline, DenseBatcher, GRUOutcome
from pathways.training import Trainer
from pathways.models.recurrent.modules import reverse_padded


def simulate(n: int, seed: int, n_codes: int = 20, max_bins: int = 12, static_effect: float = 0.0) -> tuple:
    """Poisson code counts per 30-day bin; the outcome depends on known drivers.

    code_0 in the last two bins (+4 log-odds), log1p(total count of code_1) (x2), any code_2 (-3, protective),
    and an optional static covariate. Histories have 6-12 bins (variable lengths).
    """
    g = np.random.default_rng(seed)
    rates = np.r_[np.full(3, 0.15), g.uniform(0.05, 0.4, n_codes - 3)]
    lengths = g.integers(max_bins // 2, max_bins + 1, n)
    offsets = np.r_[0, np.cumsum(lengths)]
    counts = g.poisson(rates, size=(offsets[-1], n_codes)).astype(np.float64)
    owner = np.repeat(np.arange(n), lengths)
    lag = offsets[1:][owner] - 1 - np.arange(offsets[-1])
    recent0 = np.bincount(owner, weights=(counts[:, 0] > 0) & (lag < 2), minlength=n) > 0
    total1 = np.bincount(owner, weights=counts[:, 1], minlength=n)
    any2 = np.bincount(owner, weights=counts[:, 2], minlength=n) > 0
    s = g.standard_normal(n)
    logit = -2.5 + 4.0 * recent0 + 2.0 * np.log1p(total1) - 3.0 * any2 + static_effect * s
    y = (g.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    static = s[:, None] if static_effect else None
    return OutcomeData(sp.csr_matrix(counts), offsets, y, bin_width=30.0, static=static), logit


FAST = dict(device="cpu", max_epochs=20, batch_size=128, lr=1e-2, seed=0)


@pytest.fixture(scope="module")
def data():
    return simulate(2000, 0)[0], simulate(500, 2)[0], simulate(1000, 1)


@pytest.fixture(scope="module")
def gru(data):
    train, val, _ = data
    return GRUOutcome(hidden_size=32, embedding_dim=32, **FAST).fit(train, validation=val)


@pytest.fixture(scope="module")
def retain(data):
    train, val, _ = data
    return RETAIN(embedding_dim=32, alpha_hidden=32, beta_hidden=32, **FAST).fit(train, validation=val)


def test_gru_and_retain_reach_auroc_on_known_drivers(data, gru, retain):
    _, _, (test, true_logit) = data
    oracle = auroc(test.y, true_logit)
    baseline = CountsLogisticBaseline(windows_days=(60,)).fit(data[0])
    for model in (gru, retain, baseline):
        value = auroc(test.y, model.predict_proba(test))
        assert value >= 0.8, (type(model).__name__, value, oracle)
        assert value <= oracle + 0.02
    assert gru.n_epochs_ == len(gru.history_) >= 2
    val_losses = [h["val_loss"] for h in gru.history_]
    assert min(val_losses) < val_losses[0]  # training improved the held-out loss (best weights are kept)


def test_faces_predict_proba_predict_score(data, gru):
    _, _, (test, _) = data
    proba = gru.predict_proba(test)
    assert proba.shape == (len(test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(gru.predict(test), (proba[:, 1] >= 0.5).astype(int))
    expected = -log_loss(test.y[:, 0], np.clip(proba[:, 1], 1e-12, 1 - 1e-12))
    assert gru.score(test) == pytest.approx(expected, rel=1e-9)
    # the trained model beats predicting the training prevalence
    prev = data[0].y.mean()
    assert gru.score(test) > -log_loss(test.y[:, 0], np.full(len(test), prev)) + 0.05
    assert gru.input_kind == "outcome"
    assert isinstance(gru, PathwaysEstimator) and "hidden_size" in gru.get_params()


def test_padding_does_not_change_predictions(data, gru, retain):
    """A sample's logit is the same alone and in a padded batch with longer histories (packing/masking work)."""
    _, _, (test, _) = data
    short = int(np.argmin(test.lengths))
    assert test.lengths[short] < test.lengths.max()
    for model in (gru, retain):
        batch_p = model.predict_proba(test)[short]
        alone = model.predict_proba(test.subset([short]))[0]
        np.testing.assert_allclose(batch_p, alone, atol=1e-6)


def test_retain_contributions_sum_to_logit(data, retain):
    _, _, (test, _) = data
    sub = test.subset(np.arange(64))
    batch = DenseBatcher(sub, transform="log1p").batch(np.arange(64))
    with torch.no_grad():
        logits = retain.module_.logits(batch["x"], batch["lengths"])
        omega, x_rev = retain.module_.contributions(batch["x"], batch["lengths"])
    recon = omega.sum(dim=(1, 2)) + retain.module_.head.bias
    torch.testing.assert_close(recon, logits, atol=1e-4, rtol=1e-4)
    assert torch.equal(x_rev, reverse_padded(batch["x"], batch["lengths"]))


def test_retain_decomposition_with_static_and_labels_untrained():
    """The exact decomposition holds for any weights: bias + static part + contributions = logits."""
    from pathways.models.recurrent.modules import RETAINNet

    torch.manual_seed(0)
    net = RETAINNet(n_codes=7, n_labels=3, n_static=2, embedding_dim=8, alpha_hidden=5, beta_hidden=6).eval()
    x = torch.rand(4, 6, 7) * (torch.rand(4, 6, 7) < 0.4)
    lengths = torch.tensor([6, 3, 1, 5])
    x[torch.arange(6)[None, :].expand(4, 6) >= lengths[:, None]] = 0.0  # right padding
    static = torch.randn(4, 2)
    with torch.no_grad():
        logits = net.logits(x, lengths, static)
        omega, _ = net.contributions(x, lengths)
    static_part = static @ net.head.weight[:, 8:].T
    torch.testing.assert_close(omega.sum(dim=(1, 2)) + net.head.bias + static_part, logits, atol=1e-5, rtol=1e-5)
    assert omega.shape == (4, 6, 7, 3) and float(omega[1, 3:].abs().sum()) == 0.0


def test_lstm_static_and_multilabel():
    train, _ = simulate(1500, 3, static_effect=2.5)
    test, _ = simulate(600, 4, static_effect=2.5)
    # second label: a pure function of the static covariate
    y2 = lambda d: (d.static[:, 0] > 0).astype(float)  # noqa: E731
    train = OutcomeData(train.matrix, train.offsets, np.c_[train.y, y2(train)], labels=("a", "b"),
                        bin_width=30.0, static=train.static, static_names=("s",))
    test = OutcomeData(test.matrix, test.offsets, np.c_[test.y, y2(test)], labels=("a", "b"),
                       bin_width=30.0, static=test.static, static_names=("s",))
    model = GRUOutcome(cell="lstm", hidden_size=16, embedding_dim=16, **FAST).fit(train)
    proba = model.predict_proba(test)
    assert proba.shape == (len(test), 2) and model.labels_ == ["a", "b"] and model.n_static_ == 1
    per_label = auroc(test.y, proba, average=None)
    assert per_label[0] > 0.8 and per_label[1] > 0.95
    assert model.predict(test).shape == (len(test), 2)
    from pathways.factors.attribution import integrated_gradients

    factors = integrated_gradients(model, test.subset(np.arange(200)), lags="total")
    assert set(factors["target"]) == {"a", "b"}
    top_a = factors[factors["target"] == "a"].iloc[0]["source"]
    assert top_a in {"code_0", "code_1", "code_2"}
    base = CountsLogisticBaseline().fit(train)
    assert base.predict_proba(test).shape == (len(test), 2)
    assert auroc(test.y[:, 1], base.predict_proba(test)[:, 1]) > 0.95
    assert base.feature_names_[-1] == "s"


def test_export_import_round_trip(data, retain):
    _, _, (test, _) = data
    state = retain.export_state()
    restored = PathwaysEstimator.import_state(state)
    assert isinstance(restored, RETAIN)
    np.testing.assert_allclose(restored.predict_proba(test), retain.predict_proba(test), atol=1e-6)
    base = CountsLogisticBaseline(windows_days=(60, 90)).fit(data[0])
    again = PathwaysEstimator.import_state(base.export_state())
    np.testing.assert_allclose(again.predict_proba(test), base.predict_proba(test))


def test_logistic_matches_sklearn_on_aggregated_counts(data):
    from sklearn.linear_model import LogisticRegression

    train, _, (test, _) = data
    model = CountsLogisticBaseline(C=0.5).fit(train)
    feats = np.log1p(train.counts().toarray())
    scale = feats.std(axis=0)
    ref = LogisticRegression(C=0.5, max_iter=1000).fit(feats / scale, train.y[:, 0])
    np.testing.assert_allclose(model.coef_[0], ref.coef_[0], atol=1e-4)
    np.testing.assert_allclose(model.predict_proba(test)[:, 1],
                               ref.predict_proba(np.log1p(test.counts().toarray()) / scale)[:, 1], atol=1e-5)


def test_dense_batcher_layout_and_max_bins():
    counts = np.arange(1, 25, dtype=float).reshape(8, 3)  # 8 bins, 3 codes
    d = OutcomeData(sp.csr_matrix(counts), np.array([0, 5, 8]), np.array([0.0, 1.0]))
    b = DenseBatcher(d, transform="none").batch(np.array([1, 0]))
    assert b["x"].shape == (2, 5, 3) and b["lengths"].tolist() == [3, 5]
    np.testing.assert_array_equal(b["x"][0, :3].numpy(), counts[5:8])
    assert float(b["x"][0, 3:].abs().sum()) == 0.0
    np.testing.assert_array_equal(b["x"][1].numpy(), counts[:5])
    t = DenseBatcher(d, transform="log1p", max_bins=2).batch(np.array([0, 1]))
    np.testing.assert_allclose(t["x"][0].numpy(), np.log1p(counts[3:5]), rtol=1e-6)  # the 2 most recent bins
    rev = reverse_padded(b["x"], b["lengths"])
    np.testing.assert_array_equal(rev[0, :3].numpy(), counts[7:4:-1])
    np.testing.assert_array_equal(d.counts(last_bins=2).toarray(), np.array([counts[3:5].sum(0), counts[6:8].sum(0)]))


def _toy_log() -> EventLog:
    events = pd.DataFrame({
        "patient_id": [1, 1, 1, 1, 2, 2, 3, 3],
        "time": [10.0, 70.0, 99.0, 130.0, 50.0, 100.0, 20.0, 140.0],
        "code": ["A", "B", "A", "Y", "A", "Y", "B", "A"],
    })
    patients = pd.DataFrame({"patient_id": [1, 2, 3], "birth": [-365.25 * 40, -365.25 * 60, 0.0],
                             "sex": ["F", "M", "F"], "start": [0.0, 0.0, 0.0], "end": [400.0, 400.0, 150.0],
                             "index": [100.0, 100.0, 100.0]})
    return EventLog.from_pandas(events, patients)


def test_outcome_dataset_labels_history_and_censoring():
    log = _toy_log()
    with pytest.warns(PathwaysDataWarning, match="dropped 1 of 3 patients censored"):
        d = outcome_dataset(log, ["Y"], horizon=100.0, index_time="index", lookback=90.0, bin_days=30.0,
                            static=("age", "sex"))
    # patient 3 is followed until 150 < 100 + 100 without the outcome: censored and dropped
    # patient 2's Y at exactly the index time (100) falls in the label window [100, 200)
    assert d.patient_index.tolist() == [0, 1] and d.y[:, 0].tolist() == [1.0, 1.0]
    series = d.matrix.toarray()
    a, b = list(log.vocab.codes).index("A"), list(log.vocab.codes).index("B")
    # patient 1: history [10, 100): bins [10,40) [40,70) [70,100): A at 10, B at 70 and A at 99 -> last bin
    assert d.lengths.tolist() == [3, 3]
    assert series[0, a] == 1 and series[2, b] == 1 and series[2, a] == 1
    # patient 2: A at 50 in the middle bin; its Y at exactly the index time (100) is an outcome, not history
    assert series[4, a] == 1 and series[3:6].sum() == 1
    np.testing.assert_allclose(d.static, [[40.0 + 100 / 365.25, 1.0], [60.0 + 100 / 365.25, 0.0]])  # age at index
    kept = outcome_dataset(log, {"y": ["Y"], "b": ["B"]}, horizon=100.0, index_time="index", lookback=90.0,
                           censoring="keep")
    assert kept.labels == ("y", "b") and kept.y.tolist() == [[1, 0], [1, 0], [0, 0]]


def test_outcome_dataset_trims_unobserved_bins_and_uses_encoder():
    log = _toy_log()
    patients = log.patients.copy()
    idx = np.array([100.0, 100.0, 100.0])
    d = outcome_dataset(log, ["Y"], horizon=50.0, index_time=idx, lookback=300.0, bin_days=30.0,
                        censoring="keep")
    full = outcome_dataset(log, ["Y"], horizon=50.0, index_time=idx, lookback=300.0, bin_days=30.0,
                           censoring="keep", trim_unobserved=False)
    assert full.lengths.tolist() == [10, 10, 10]
    assert d.lengths.tolist() == [4, 4, 4]  # bins ending after the observation start (0): [-20,10) .. [70,100)
    ref = to_sparse_series(log, 30.0, align="index", index_time=idx, n_bins=10, first_bin=-10)
    np.testing.assert_array_equal(full.matrix.toarray(), ref.matrix.toarray())
    assert d.matrix.sum() == full.matrix.sum() and len(patients) == 3


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda d: GRUOutcome(**FAST).fit(d, y=np.full(len(d), 2.0)), "y: 2000 value"),
        (lambda d: GRUOutcome(**FAST).fit(d, y=np.zeros(len(d))), "single class"),
        (lambda d: GRUOutcome(**FAST).predict_proba(d), "not fitted"),
        (lambda d: GRUOutcome(cell="rnn", **FAST).fit(d), "cell"),
        (lambda d: RETAIN(transform="sqrt", **FAST).fit(d), "transform"),
        (lambda d: GRUOutcome(**FAST).fit(np.zeros((3, 3))), "X: expected OutcomeData"),
        (lambda d: GRUOutcome(**FAST).fit(d, static=np.full((len(d), 1), np.nan)), "static: 2000 non-finite"),
        (lambda d: CountsLogisticBaseline(windows_days=(-1,)).fit(d), "windows_days"),
        (lambda d: CountsLogisticBaseline(C=0.0).fit(d), "C: expected a number > 0"),
        (lambda d: CountsLogisticBaseline(threshold=1.5).fit(d), "threshold"),
        (lambda d: GRUOutcome(**{**FAST, "lr": -1.0}).fit(d), "lr: expected a number > 0"),
        (lambda d: GRUOutcome(hidden_size=0, **FAST).fit(d), "hidden_size: expected an integer >= 1, got 0"),
        (lambda d: GRUOutcome(num_layers=0, **FAST).fit(d), "num_layers"),
        (lambda d: GRUOutcome(dropout=1.5, **FAST).fit(d), r"dropout: expected a number in \[0, 1\)"),
        (lambda d: GRUOutcome(max_bins=0, **FAST).fit(d), "max_bins"),
        (lambda d: GRUOutcome(threshold=2.0, **FAST).fit(d), "threshold: expected a probability"),
        (lambda d: GRUOutcome(**{**FAST, "batch_size": 0}).fit(d), "batch_size"),
        (lambda d: RETAIN(alpha_hidden=0, **FAST).fit(d), "alpha_hidden"),
        (lambda d: RETAIN(embedding_dim=2.5, **FAST).fit(d), "embedding_dim"),
        (lambda d: RETAIN(dropout_context=-0.5, **FAST).fit(d), "dropout_context"),
        (lambda d: OutcomeData(d.matrix, d.offsets[:-1]), "offsets end"),
        (lambda d: OutcomeData(d.matrix, d.offsets, d.y, labels=("a", "b")), "labels: 2 name"),
    ],
)
def test_bad_input(data, call, match):
    with pytest.raises(PathwaysInputError, match=match):
        call(data[0])


def test_predict_checks_layout(data, gru):
    train = data[0]
    narrow = OutcomeData(train.matrix[:, :5], train.offsets, train.y)
    with pytest.raises(PathwaysInputError, match="5 code columns but the model was fitted on 20"):
        gru.predict_proba(narrow)
    with pytest.raises(PathwaysInputError, match="static: 1 column"):
        gru.predict_proba(train, static=np.zeros((len(train), 1)))


def test_outcome_dataset_bad_input():
    log = _toy_log()
    with pytest.raises(PathwaysInputError, match="none of the 1 code"):
        outcome_dataset(log, ["ZZZ"], horizon=10.0, index_time="index")
    with pytest.raises(PathwaysInputError, match="index_time: column 'nope'"):
        outcome_dataset(log, ["Y"], horizon=10.0, index_time="nope")
    with pytest.raises(PathwaysInputError, match="horizon"):
        outcome_dataset(log, ["Y"], horizon=-1.0, index_time="index")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PathwaysDataWarning)
        with pytest.raises(PathwaysInputError, match="no patient left"):
            outcome_dataset(log, ["Y"], horizon=10.0, index_time=np.full(3, np.nan))


def test_outcome_dataset_on_simulated_cohort_matches_direct_counts():
    from pathways.synthetic import simulate_cohort

    log, truth = simulate_cohort(300, seed=1)
    event = str(truth.drug_effects.iloc[0]["event"])
    start, end = log.patients["start"].to_numpy(float), log.patients["end"].to_numpy(float)
    index = start + 0.5 * (end - start)
    d = outcome_dataset(log, [event], horizon=90.0, index_time=index, lookback=365.0, bin_days=30.0,
                        static=("age", "sex"), censoring="keep", trim_unobserved=False)
    assert len(d) == log.n_patients and d.n_codes == log.n_codes and d.lengths.tolist() == [13] * 300
    t_idx = index[log.patient]
    is_event = log.code == log.vocab.encode([event])[0]
    hit = is_event & (log.time >= t_idx) & (log.time < t_idx + 90.0)
    np.testing.assert_array_equal(d.y[:, 0], np.bincount(log.patient[hit], minlength=300) > 0)
    # point events (no span) strictly before the index, within 13 bins of 30 days, are all in the history
    point = np.isnan(log.end) | (log.end <= log.time)
    in_hist = point & (log.time < t_idx) & (log.time >= t_idx - 13 * 30.0)
    expected = np.bincount(log.code[in_hist], minlength=log.n_codes)
    got = np.asarray(d.counts().sum(axis=0)).ravel()
    codes_with_points = np.unique(log.code[point])
    only_points = np.setdiff1d(codes_with_points, np.unique(log.code[~point]))
    np.testing.assert_array_equal(got[only_points], expected[only_points])
    model = CountsLogisticBaseline().fit(d)
    assert model.predict_proba(d).shape == (300, 2) and model.n_static_ == 2
    gru = GRUOutcome(max_epochs=2, hidden_size=8, embedding_dim=8, device="cpu").fit(d)
    assert np.isfinite(gru.score(d))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_mixed_precision_fit_predict_and_attributions(data):
    from pathways.factors.attribution import integrated_gradients, retain_attributions

    train, val, (test, _) = data
    kw = dict(FAST, device="cuda")
    run = Trainer(device="cuda", precision="16-mixed", progress=False)
    gru = GRUOutcome(hidden_size=32, embedding_dim=32, **kw).fit(train, validation=val, trainer=run)
    retain = RETAIN(embedding_dim=32, alpha_hidden=32, beta_hidden=32, **kw).fit(train, validation=val, trainer=run)
    for model in (gru, retain):
        assert next(model.module_.parameters()).is_cuda
        assert auroc(test.y, model.predict_proba(test)) >= 0.8
    assert set(retain_attributions(retain, test)["source"].head(3)) == {"code_0", "code_1", "code_2"}
    frame = integrated_gradients(gru, test, lags="total")
    assert frame.attrs["completeness_gap"] < 0.05
