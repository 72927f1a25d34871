"""MaxSPRT critical values (Kulldorff et al. 2011) and alpha-spending thresholds."""
import numpy as np
import pytest
from scipy import stats

from pathways.errors import PathwaysInputError
from pathways.signals.sequential import (
    binomial_llr, binomial_maxsprt_alpha, binomial_maxsprt_cv, binomial_spending_thresholds, poisson_llr,
    poisson_maxsprt_alpha, poisson_maxsprt_cv, poisson_spending_thresholds, power_spending,
)

# Kulldorff, Davis, Kolczak, Lewis, Lieu, Platt (2011), Sequential Analysis 30:58-78, Table 1 (alpha = 0.05,
# M = 1): critical values of the continuous Poisson MaxSPRT by upper limit T (expected events under the null).
PUBLISHED = {1.0: 2.853937, 2.0: 3.046977, 5.0: 3.297183, 10.0: 3.467952}


@pytest.mark.parametrize("upper, expected", sorted(PUBLISHED.items()))
def test_poisson_cv_matches_published_table(upper, expected):
    assert poisson_maxsprt_cv(upper, alpha=0.05) == pytest.approx(expected, abs=2e-6)


def _simulated_poisson_alpha(cv: float, upper: float, n_paths: int, seed: int) -> float:
    """Monte-Carlo: event arrival times of a unit-rate process; signal at the c-th event if LLR(c, t_c) >= cv."""
    gen = np.random.default_rng(seed)
    n_max = int(upper + 10 * np.sqrt(upper) + 20)
    arrivals = np.cumsum(gen.exponential(size=(n_paths, n_max)), axis=1)
    c = np.arange(1, n_max + 1)[None, :]
    signal = (arrivals <= upper) & (poisson_llr(c, arrivals) >= cv)
    return float(signal.any(axis=1).mean())


def test_poisson_alpha_agrees_with_simulation():
    cv = poisson_maxsprt_cv(4.0)
    assert poisson_maxsprt_alpha(cv, 4.0) == pytest.approx(0.05, abs=1e-8)
    assert _simulated_poisson_alpha(cv, 4.0, 40_000, seed=1) == pytest.approx(0.05, abs=0.006)


def test_minimum_events_lowers_the_critical_value():
    assert poisson_maxsprt_cv(10.0, min_events=4) < poisson_maxsprt_cv(10.0, min_events=1)
    cv = poisson_maxsprt_cv(10.0, min_events=4)
    assert poisson_maxsprt_alpha(cv, 10.0, min_events=4) == pytest.approx(0.05, abs=1e-8)


def test_binomial_cv_is_conservative_and_tight():
    cv = binomial_maxsprt_cv(60, z=2.0)
    assert binomial_maxsprt_alpha(cv, 60, 2.0) <= 0.05
    n, k = np.meshgrid(np.arange(1, 61), np.arange(61), indexing="ij")
    attainable = binomial_llr(k[k <= n], n[k <= n], 2.0)
    below = attainable[(attainable > 0) & (attainable < cv - 1e-9)].max()
    assert binomial_maxsprt_alpha(below, 60, 2.0) > 0.05  # the next lower attainable value is too liberal


def test_binomial_alpha_agrees_with_simulation():
    n, z = 40, 1.0
    cv = binomial_maxsprt_cv(n, z)
    gen = np.random.default_rng(2)
    k = np.cumsum(gen.random((40_000, n)) < 1 / (1 + z), axis=1)
    simulated = (binomial_llr(k, np.arange(1, n + 1)[None, :], z) >= cv).any(axis=1).mean()
    assert simulated == pytest.approx(binomial_maxsprt_alpha(cv, n, z), abs=0.006)


def test_llr_values():
    assert float(poisson_llr(6, 2.0)) == pytest.approx(2 - 6 + 6 * np.log(3))
    assert float(binomial_llr(8, 10, 1.0)) == pytest.approx(8 * np.log(1.6) + 2 * np.log(0.4))
    assert float(binomial_llr(2, 10, 1.0)) == 0.0


def test_single_look_spending_is_the_exact_fixed_sample_test():
    table = poisson_spending_thresholds(np.array([7.5]), upper=7.5, alpha=0.05)
    k = int(table["threshold"].iloc[0])
    assert stats.poisson.sf(k - 1, 7.5) <= 0.05 < stats.poisson.sf(k - 2, 7.5)
    table = binomial_spending_thresholds(np.array([30]), 30, z=3.0)
    k = int(table["threshold"].iloc[0])
    assert stats.binom.sf(k - 1, 30, 0.25) <= 0.05 < stats.binom.sf(k - 2, 30, 0.25)


def test_spending_keeps_cumulative_alpha_within_budget():
    looks = np.array([5, 12, 20, 33, 41, 60])
    table = binomial_spending_thresholds(looks, 60, z=1.0, rho=2.0)
    assert np.all(table["alpha_spent"].to_numpy() <= table["alpha_target"].to_numpy() + 1e-12)
    assert table["alpha_target"].iloc[-1] == pytest.approx(0.05)
    gen = np.random.default_rng(3)
    increments = [gen.binomial(d, 0.5, 40_000) for d in np.diff(np.concatenate([[0], looks]))]
    k = np.cumsum(np.stack(increments, axis=1), axis=1)
    simulated = (k >= table["threshold"].to_numpy()[None, :]).any(axis=1).mean()
    assert simulated == pytest.approx(table["alpha_spent"].iloc[-1], abs=0.006)


def test_power_spending_and_errors():
    assert power_spending(0.5, 0.05, 1.0) == pytest.approx(0.025)
    with pytest.raises(PathwaysInputError):
        poisson_maxsprt_cv(5.0, alpha=0.7)
    with pytest.raises(PathwaysInputError):
        poisson_spending_thresholds(np.array([3.0, 2.0]), 5.0)
    with pytest.raises(PathwaysInputError):
        binomial_maxsprt_alpha(3.0, 0, 1.0)
