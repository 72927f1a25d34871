"""Propensity fit, vectorised matching (against a brute-force greedy matcher), strata and weights."""
import numpy as np
import pytest
import scipy.sparse as sp

from pathways.errors import PathwaysInputError
from pathways.studies.propensity import (
    fit_propensity,
    match,
    ps_weights,
    stratify,
    stratum_weights,
)


def test_fit_propensity_recovers_strong_predictor():
    rng = np.random.default_rng(0)
    x = sp.random(1500, 40, density=0.1, format="csr", random_state=1)
    x.data[:] = 1.0
    z = rng.random(1500) < 1 / (1 + np.exp(-(2.0 * x[:, 0].toarray().ravel() - 0.5)))
    model = fit_propensity(x, z, Cs=4, cv=3, seed=0)
    assert model.ps.shape == (1500,) and np.all((model.ps > 0) & (model.ps < 1))
    assert np.argmax(np.abs(model.coef)) == 0
    again = fit_propensity(x, z, Cs=4, cv=3, seed=0, max_fit=1000)
    assert again.n_fit == 1000
    with pytest.raises(PathwaysInputError, match="both"):
        fit_propensity(x, np.ones(1500, bool))


def test_match_pairs_within_caliper_without_reuse():
    rng = np.random.default_rng(2)
    score = rng.normal(size=400)
    t = rng.random(400) < 1 / (1 + np.exp(-score))
    m = match(score, t, caliper=0.05, caliper_scale="logit")
    comp = m.matched[~t[m.matched]]
    assert np.unique(comp).size == comp.size  # each comparator used once
    targets = m.matched[t[m.matched]]
    assert set(m.set_id) == set(targets)
    dist = np.abs(score[comp] - score[m.set_id[~t[m.matched]]])
    assert dist.max() <= 0.05
    # Greedy matching leaves no matchable pair: every unmatched target is farther than the caliper from every
    # unmatched comparator.
    free_t = np.setdiff1d(np.flatnonzero(t), targets)
    free_c = np.setdiff1d(np.flatnonzero(~t), comp)
    if free_t.size and free_c.size:
        assert np.abs(score[free_t][:, None] - score[free_c][None, :]).min() > 0.05


def test_variable_ratio_matching_weights():
    rng = np.random.default_rng(3)
    score = rng.normal(size=300)
    t = rng.random(300) < 0.25
    m = match(score, t, max_ratio=3, caliper=0.2)
    per_set = np.bincount(m.set_id[~t[m.matched]], minlength=300)
    assert per_set.max() <= 3 and per_set[t].max() >= 2
    comp_w = m.weight[~t[m.matched]]
    np.testing.assert_allclose(comp_w, 1 / per_set[m.set_id[~t[m.matched]]])
    with pytest.raises(PathwaysInputError):
        match(score, t, max_ratio=0)


def test_strata_and_weights():
    ps = np.linspace(0.05, 0.95, 100)
    t = (np.arange(100) % 3 == 0)
    strata = stratify(ps, 5)
    assert np.bincount(strata).tolist() == [20] * 5
    w = stratum_weights(strata, t)
    for s in range(5):  # comparators of each stratum weigh as much as its targets, relative to the totals
        in_s = strata == s
        assert w[in_s & ~t].sum() / w[~t].sum() == pytest.approx((in_s & t).sum() / t.sum())
    iptw = ps_weights(ps, t, "iptw", stabilized=False)
    np.testing.assert_allclose(iptw, np.where(t, 1 / ps, 1 / (1 - ps)))
    np.testing.assert_allclose(ps_weights(ps, t, "overlap"), np.where(t, 1 - ps, ps))
    with pytest.raises(PathwaysInputError):
        ps_weights(ps, t, "ate")
