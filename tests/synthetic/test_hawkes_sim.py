import numpy as np
import pytest

from pathways.errors import PathwaysInputError
from pathways.synthetic import KernelComponent, simulate_hawkes

MU = np.array([0.5, 0.2, 0.1])
A = np.array([[0.2, 0.0, 0.3], [0.4, 0.1, 0.0], [0.0, 0.5, 0.2]])


def _rates(seq, horizon):
    return np.bincount(seq.marks, minlength=seq.n_codes) / horizon


@pytest.mark.parametrize("kernel,adj,kw", [
    ("exp", A, {"decays": 2.0}),
    ("sumexp", np.stack([A * 0.5, A * 0.5]), {"decays": [1.0, 10.0]}),
    ("step", np.stack([A * 0.5, A * 0.5]), {"bin_edges": [0.0, 1.0, 3.0]}),
])
def test_stationary_rates_match_theory(kernel, adj, kw):
    seq = simulate_hawkes(MU, adj, kernel=kernel, end=2000.0, n_sequences=40, seed=0, **kw)
    expected = np.linalg.solve(np.eye(3) - A, MU)
    np.testing.assert_allclose(_rates(seq, 2000.0 * 40), expected, rtol=0.05)


def test_offspring_delays_follow_exp_kernel():
    # one code exciting another only: mean delay of children after their parent = 1 / decay
    mu = np.array([0.05, 0.0])
    adj = np.array([[0.0, 0.0], [0.9, 0.0]])
    seq = simulate_hawkes(mu, adj, decays=4.0, end=20000.0, n_sequences=1, seed=1)
    t0 = seq.times[seq.marks == 0]
    t1 = seq.times[seq.marks == 1]
    assert t1.size / t0.size == pytest.approx(0.9, rel=0.1)
    nearest = t1 - t0[np.searchsorted(t0, t1) - 1]
    assert np.median(nearest[(nearest > 0) & (nearest < 3)]) == pytest.approx(np.log(2) / 4.0, rel=0.15)


def test_windows_respected_and_deterministic():
    start = np.array([0.0, 10.0, 5.0])
    end = np.array([20.0, 12.0, 50.0])
    a = simulate_hawkes(MU, A, start=start, end=end, seed=3)
    b = simulate_hawkes(MU, A, start=start, end=end, seed=3)
    np.testing.assert_array_equal(a.times, b.times)
    seg = a.sequence_ids
    assert np.all(a.times >= start[seg]) and np.all(a.times <= end[seg])


def test_mixed_components_and_per_sequence_baseline():
    mu = np.array([[1.0, 0.0], [0.0, 0.0]])
    comps = [KernelComponent(np.array([[0.0, 0.0], [0.5, 0.0]]), "uniform", low=2.0, high=3.0)]
    seq = simulate_hawkes(mu, start=0.0, end=1000.0, components=comps, seed=0)
    assert seq.lengths[1] == 0
    t0 = seq.times[(seq.marks == 0)]
    t1 = seq.times[(seq.marks == 1)]
    assert t1.size == pytest.approx(0.5 * t0.size, rel=0.15)
    assert t1.min() >= t0.min() + 2.0


def test_explosive_process_rejected():
    with pytest.raises(PathwaysInputError, match="spectral radius"):
        simulate_hawkes(MU, A * 3, end=10.0)
    with pytest.raises(PathwaysInputError, match="expected shape"):
        simulate_hawkes(MU, np.eye(2) * 0.1, end=10.0)
