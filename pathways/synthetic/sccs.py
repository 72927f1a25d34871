"""Vectorised simulation of self-controlled case series data (ConvSCCS model, Morel et al. 2020).

Every case has exactly one outcome, drawn from the SCCS conditional (multinomial) law over its observed buckets:
``P(outcome in bucket t) ∝ exp(drift[t] + sum_j sum_l coeffs[j, l] * start_j[t - l])``.
The layout mirrors tick's ``SimuSCCS`` (exposure starts per drug, lagged log relative incidences, optional right
censoring) but draws everything with numpy in one pass, without a loop per case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from pathways.encode.sccs import SCCSData
from pathways.errors import PathwaysInputError
from pathways.utils import ragged_arange, rng as make_rng

__all__ = ["simulate_sccs", "step_effect", "bell_effect"]


def step_effect(n_lags: int, relative_incidence: float, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Log relative-incidence curve over ``n_lags + 1`` lags: ``log(relative_incidence)`` on ``[start, stop)``."""
    curve = np.zeros(n_lags + 1)
    curve[start:stop] = np.log(relative_incidence)
    return curve


def bell_effect(n_lags: int, peak: float, center: float, width: float) -> np.ndarray:
    """Gaussian-shaped log relative-incidence curve peaking at ``log(peak)`` at lag ``center``."""
    lags = np.arange(n_lags + 1)
    return np.log(peak) * np.exp(-0.5 * ((lags - center) / width) ** 2)


def simulate_sccs(n_cases: int, n_buckets: int, coeffs: np.ndarray | Sequence[np.ndarray], *,
                  exposure_prob: float | Sequence[float] = 0.5, exposures_per_case: str = "single",
                  exposure_rate: float | Sequence[float] = 1.0, censoring_prob: float = 0.0,
                  censoring_scale: float | None = None,
                  time_drift: Callable[[np.ndarray], np.ndarray] | np.ndarray | None = None,
                  seed: int | np.random.Generator | None = None) -> SCCSData:
    """Simulate SCCS cases with known lagged exposure effects.

    Parameters
    ----------
    n_cases : int
        Number of cases (each has exactly one outcome).
    n_buckets : int
        Buckets per window before censoring.
    coeffs : array (n_drugs, n_lags + 1) or list of per-drug arrays
        True log relative incidence per drug and lag (lag 0 = the bucket of the exposure start).
    exposure_prob : float or sequence
        ``exposures_per_case="single"``: probability that a case starts each drug once, at a uniform bucket.
    exposures_per_case : {"single", "multiple"}
        One start at most per drug (tick's ``single_exposure``) or a Poisson number of starts.
    exposure_rate : float or sequence
        ``"multiple"``: mean number of starts per case and drug.
    censoring_prob, censoring_scale : float
        A case is censored with probability ``censoring_prob``; it then loses ``Poisson(censoring_scale)`` buckets
        (default ``n_buckets / 4``, as tick).
    time_drift : callable or array (n_buckets,), optional
        Log-baseline over buckets common to all cases (e.g. seasonality); ConvSCCS needs age/time features to
        absorb it.
    seed : int, Generator or None
        Random seed.

    Returns
    -------
    SCCSData
        Features named ``drug_0 .. drug_{D-1}``; ``info["coeffs"]`` holds the true coefficients.
    """
    gen = make_rng(seed)
    beta = _check_coeffs(coeffs, n_buckets)
    n_drugs, width = beta.shape
    if n_cases < 1:
        raise PathwaysInputError(f"n_cases must be >= 1, got {n_cases}")
    censoring = _draw_censoring(gen, n_cases, n_buckets, censoring_prob, censoring_scale)
    case, bucket, drug = _draw_exposures(gen, n_cases, n_drugs, censoring, exposures_per_case, exposure_prob,
                                         exposure_rate)
    eta = np.zeros((n_cases, n_buckets))
    if time_drift is not None:
        drift = time_drift(np.arange(n_buckets)) if callable(time_drift) else np.asarray(time_drift, float)
        eta += np.broadcast_to(drift, (n_buckets,))
    # lagged effects: every start spreads its drug's curve over the next `width` buckets (within the window)
    lags = np.minimum(width, censoring[case] - bucket)
    rep = np.repeat(np.arange(case.size), lags)
    lag = ragged_arange(lags)
    flat = case[rep] * n_buckets + bucket[rep] + lag
    eta += np.bincount(flat, weights=beta[drug[rep], lag], minlength=n_cases * n_buckets).reshape(eta.shape)
    # one outcome per case from the conditional multinomial law, by the Gumbel-max trick
    gumbel = gen.gumbel(size=eta.shape)
    gumbel[np.arange(n_buckets)[None, :] >= censoring[:, None]] = -np.inf
    outcome_bucket = np.argmax(eta + gumbel, axis=1)
    return SCCSData(
        n_buckets=n_buckets, censoring=censoring, exposure_case=case, exposure_bucket=bucket,
        exposure_feature=drug, exposure_value=np.ones(case.size), outcome_case=np.arange(n_cases),
        outcome_bucket=outcome_bucket, outcome_count=np.ones(n_cases, dtype=np.int64),
        feature_names=np.array([f"drug_{j}" for j in range(n_drugs)], dtype=object),
        outcome_name="outcome", info={"coeffs": beta.copy()})


def _check_coeffs(coeffs: np.ndarray | Sequence[np.ndarray], n_buckets: int) -> np.ndarray:
    rows = [np.asarray(c, dtype=np.float64).reshape(-1) for c in coeffs]
    if not rows or len({r.size for r in rows}) != 1:
        raise PathwaysInputError(f"coeffs must hold per-drug curves of equal length, got lengths "
                                 f"{[r.size for r in rows]}")
    beta = np.stack(rows)
    if not np.all(np.isfinite(beta)):
        raise PathwaysInputError("coeffs must be finite")
    if beta.shape[1] > n_buckets:
        raise PathwaysInputError(f"coeffs has {beta.shape[1]} lags for only n_buckets={n_buckets}")
    return beta


def _draw_censoring(gen: np.random.Generator, n_cases: int, n_buckets: int, prob: float,
                    scale: float | None) -> np.ndarray:
    if not 0.0 <= prob <= 1.0:
        raise PathwaysInputError(f"censoring_prob must lie in [0, 1], got {prob}")
    censoring = np.full(n_cases, n_buckets, dtype=np.int64)
    censored = gen.random(n_cases) < prob
    scale = n_buckets / 4 if scale is None else float(scale)
    censoring[censored] -= gen.poisson(scale, size=int(censored.sum()))
    return np.clip(censoring, 1, n_buckets)


def _draw_exposures(gen: np.random.Generator, n_cases: int, n_drugs: int, censoring: np.ndarray, kind: str,
                    prob: float | Sequence[float], rate: float | Sequence[float]) -> tuple[np.ndarray, ...]:
    if kind == "single":
        p = np.broadcast_to(np.asarray(prob, dtype=np.float64), (n_drugs,))
        if np.any((p < 0) | (p > 1)):
            raise PathwaysInputError(f"exposure_prob must lie in [0, 1], got {list(p)}")
        counts = (gen.random((n_cases, n_drugs)) < p).astype(np.int64)
    elif kind == "multiple":
        lam = np.broadcast_to(np.asarray(rate, dtype=np.float64), (n_drugs,))
        if np.any(lam < 0):
            raise PathwaysInputError(f"exposure_rate must be >= 0, got {list(lam)}")
        counts = gen.poisson(lam, size=(n_cases, n_drugs))
    else:
        raise PathwaysInputError(f"exposures_per_case must be 'single' or 'multiple', got {kind!r}")
    case = np.repeat(np.repeat(np.arange(n_cases), n_drugs), counts.reshape(-1))
    drug = np.repeat(np.tile(np.arange(n_drugs), n_cases), counts.reshape(-1))
    bucket = np.floor(gen.random(case.size) * censoring[case]).astype(np.int64)
    return case, bucket, drug
