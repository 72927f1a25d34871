"""Balance statistics against hand computation; preference score, equipoise, effective sample size."""
import numpy as np
import pytest
import scipy.sparse as sp

from pathways.errors import PathwaysInputError
from pathways.studies.balance import (
    balance_table,
    effective_sample_size,
    equipoise,
    preference_score,
    standardized_differences,
)


def _hand_smd(x, t, w):
    out = []
    for j in range(x.shape[1]):
        m1, m0 = np.average(x[t, j], weights=w[t]), np.average(x[~t, j], weights=w[~t])
        v1 = np.average((x[t, j] - m1) ** 2, weights=w[t])
        v0 = np.average((x[~t, j] - m0) ** 2, weights=w[~t])
        out.append((m1 - m0) / np.sqrt((v1 + v0) / 2))
    return np.array(out)


def test_smd_matches_hand_computation_sparse_and_dense():
    rng = np.random.default_rng(0)
    x = (rng.random((300, 6)) < 0.3).astype(float)
    x[:, 5] = rng.normal(50, 10, 300)
    t = rng.random(300) < 0.4
    w = rng.uniform(0.2, 3, 300)
    dense = standardized_differences(x, t, w)["smd"].to_numpy()
    sparse = standardized_differences(sp.csr_matrix(x), t, w)["smd"].to_numpy()
    np.testing.assert_allclose(dense, _hand_smd(x, t, w), atol=1e-10)
    np.testing.assert_allclose(sparse, dense, atol=1e-10)


def test_balance_table_before_after_and_zero_weights():
    x = np.array([[1.], [0.], [1.], [1.], [0.]])
    t = np.array([1, 1, 0, 0, 0]).astype(bool)
    w = np.array([1., 1., 1., 0., 1.])  # one comparator unmatched
    table = balance_table(x, t, w, ["x"])
    assert table.loc[0, "smd_before"] == pytest.approx(_hand_smd(x, t, np.ones(5))[0])
    assert table.loc[0, "smd_after"] == pytest.approx(0.0)
    assert table.loc[0, "mean_comparator_after"] == pytest.approx(0.5)
    with pytest.raises(PathwaysInputError):
        standardized_differences(x, t[:3])


def test_preference_equipoise_and_ess():
    t = np.array([1, 1, 0, 0, 0, 0])
    ps = np.full(6, t.mean())
    np.testing.assert_allclose(preference_score(ps, t), 0.5)
    assert equipoise(ps, t) == 1.0
    assert effective_sample_size(np.ones(10)) == pytest.approx(10)
    assert effective_sample_size(np.array([1., 0., 0.])) == pytest.approx(1)
