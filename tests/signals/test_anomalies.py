import numpy as np
import pandas as pd
import pytest

from pathways import EventLog, PathwaysInputError, Vocabulary
from pathways.signals.anomalies import _ks_by_group, count_anomaly_scores
from pathways.synthetic import simulate_hawkes


def _log(n=300, planted=(7, 42), seed=0):
    mu = np.tile(np.full(5, 0.05), (n, 1))
    for p in planted:
        mu[p, 2] = 0.6  # abnormal dispensation frequency of code "c"
    seq = simulate_hawkes(mu, np.zeros((5, 5)), end=100.0, seed=seed)
    prescriber = np.where(seq.sequence_ids % 10 == 3, "X", np.where(seq.sequence_ids % 2, "Y", "Z"))
    patients = pd.DataFrame({"patient_id": np.arange(n) + 1000, "start": 0.0, "end": 100.0})
    return EventLog.from_arrays(seq.sequence_ids, seq.times, seq.marks, Vocabulary(list("abcde")), patients,
                                extras={"prescriber": prescriber})


def test_planted_patients_rank_first_with_their_code():
    scores = count_anomaly_scores(_log())
    assert set(scores["unit_index"].iloc[:2]) == {7, 42}
    assert scores["top_codes"].iloc[0].startswith("c (")
    assert scores["score"].iloc[0] > 10 * scores["score"].iloc[10]
    assert "1007" not in scores.to_string()  # patient identifiers never appear


def test_prescriber_units_compare_code_mix():
    log = _log(planted=())
    codes = log.code.copy()
    x = log.extras["prescriber"] == "X"
    codes[x & (np.arange(codes.size) % 2 == 0)] = 2  # prescriber X over-dispenses "c"
    log.code = codes
    scores = count_anomaly_scores(log, unit="prescriber")
    assert scores["unit_index"].iloc[0] == "X"
    assert scores["top_codes"].iloc[0].startswith("c (")


def test_unknown_unit_named():
    with pytest.raises(PathwaysInputError, match="pharmacy"):
        count_anomaly_scores(_log(), unit="pharmacy")


def test_ks_by_group_matches_scipy():
    from scipy import stats
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.exponential(size=50), rng.exponential(3.0, size=80)])
    group = np.repeat([0, 1], [50, 80])
    d = _ks_by_group(values, group, 3, law="exp")
    assert d[0] == pytest.approx(stats.kstest(values[:50], "expon").statistic)
    assert d[1] == pytest.approx(stats.kstest(values[50:], "expon").statistic)
    assert np.isnan(d[2])
    u = rng.uniform(size=40)
    assert _ks_by_group(u, np.zeros(40, int), 1)[0] == pytest.approx(stats.kstest(u, "uniform").statistic)


def test_model_scores_rank_sequences_the_model_does_not_explain():
    from pathways.encode import Sequences
    from pathways.models.hawkes import HawkesExpKernel
    from pathways.signals import model_anomaly_scores

    mu = np.array([0.1, 0.05, 0.05])
    adj = np.array([[0.2, 0.0, 0.3], [0.4, 0.1, 0.0], [0.0, 0.5, 0.2]])
    normal = simulate_hawkes(mu, adj, end=200.0, n_sequences=200, seed=0)
    model = HawkesExpKernel(decay=1.0).fit(normal)
    # five sequences with a burst of code 2 at a rate the model never saw
    odd = simulate_hawkes(np.array([0.0, 0.0, 1.0]), np.zeros((3, 3)), end=200.0, n_sequences=5, seed=1)
    both = Sequences(np.concatenate([normal.times, odd.times]), np.concatenate([normal.marks, odd.marks]),
                     np.concatenate([normal.offsets, normal.offsets[-1] + odd.offsets[1:]]),
                     np.concatenate([normal.start, odd.start]), np.concatenate([normal.end, odd.end]), 3)
    scores = model_anomaly_scores(model, both)
    assert set(scores["sequence"].iloc[:5]) == set(range(200, 205))
    by_seq = scores.set_index("sequence")
    assert by_seq.loc[list(range(200, 205)), "volume_score"].min() > 10
    # sequences of the fitted process itself look like the null: median p-value of the timing test near 0.5
    assert 0.2 < np.median(10 ** -by_seq.loc[list(range(200)), "timing_score"]) < 0.8
    with pytest.raises(PathwaysInputError, match="no per-sequence"):
        model_anomaly_scores(object(), both)
