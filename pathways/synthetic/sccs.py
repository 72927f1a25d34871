"""Vectorised simulation of self-controlled case series data (ConvSCCS model, Morel et al. 2020), and the SCCS
view of a :func:`~pathways.synthetic.cohort.simulate_cohort` draw with its expected outcome counts.

Every case has exactly one outcome, drawn from the SCCS conditional (multinomial) law over its observed buckets:
``P(outcome in bucket t) ∝ exp(drift[t] + sum_j sum_l coeffs[j, l] * start_j[t - l])``.
The layout mirrors tick's ``SimuSCCS`` (exposure starts per drug, lagged log relative incidences, optional right
censoring) but draws everything with numpy in one pass, without a loop per case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from pathways.data.eventlog import EventLog
from pathways.encode.sccs import SCCSData, _windows
from pathways.errors import PathwaysInputError
from pathways.synthetic.truth import Truth
from pathways.utils import ragged_arange, rng as make_rng

__all__ = ["simulate_sccs", "step_effect", "bell_effect", "cohort_sccs_expected"]


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


def cohort_sccs_expected(log: EventLog, truth: Truth, outcome: str, bucket_size: float,
                         exposures: Sequence[str] | None = None) -> tuple[SCCSData, np.ndarray]:
    """Every patient of a :func:`~pathways.synthetic.cohort.simulate_cohort` draw as SCCS data, with the expected
    number of ``outcome`` events per bucket under the simulator's true intensity.

    The simulator's outcome intensity is ``mu s_p (1 + sum_steps (RI - 1) N_step(t))``, ``N_step(t)`` counting
    the dispensations of the step's drug whose lag window ``[lag_start, lag_end)`` holds ``t``; its integral over
    each bucket (exact, partial last bucket and window end included) is the expected count. With
    :func:`pathways.models.sccs.sccs_estimand` this gives the value an SCCS design converges to on this cohort.

    Parameters
    ----------
    log, truth : the output of ``simulate_cohort`` (``truth`` aligned with ``log.vocab``).
    outcome : outcome code.
    bucket_size : bucket width in days; buckets and windows follow :func:`pathways.encode.sccs.sccs_data`
        (bucket 0 starts at the patient's window start, the window ends at ``end`` or death).
    exposures : drug codes, one feature each (default: every drug of the cohort, in vocabulary order).

    Returns
    -------
    data : SCCSData
        One case per patient (cases without outcome included), exposure-start indicators per bucket and the
        log's ``outcome`` events (all of them); ``case_patient`` is ``arange(n_patients)``.
    expected : ndarray, shape (n_patients, data.n_buckets)
        Expected outcome count per patient and bucket (0 beyond the censoring).
    """
    if truth.patient_scale.size != log.n_patients or truth.codes.size != len(log.vocab):
        raise PathwaysInputError(f"truth: describes {truth.patient_scale.size} patients and {truth.codes.size} codes, "
                                 f"the log has {log.n_patients} and {len(log.vocab)}")
    names = [str(c) for c in truth.codes[truth.categories == "drug"]] if exposures is None else list(exposures)
    out_i, drug_idx = int(truth.index(outcome)[0]), truth.index(names)
    b = float(bucket_size)
    start, censoring, n_buckets = _windows(log, b, None)
    span = _window_length(log)  # observed time per patient: bucket censoring[p] - 1 holds its end
    feature = np.full(len(log.vocab), -1, dtype=np.int64)
    feature[drug_idx] = np.arange(drug_idx.size)
    bucket = np.floor((log.time - start[log.patient]) / b).astype(np.int64)
    inside = (bucket >= 0) & (bucket < censoring[log.patient])
    is_exp = inside & (feature[log.code] >= 0)
    key = np.unique((log.patient[is_exp] * n_buckets + bucket[is_exp]) * drug_idx.size + feature[log.code[is_exp]])
    e_cb, e_feat = np.divmod(key, drug_idx.size)
    is_out = inside & (log.code == out_i)
    o_key, o_count = np.unique(log.patient[is_out] * n_buckets + bucket[is_out], return_counts=True)
    data = SCCSData(n_buckets=n_buckets, censoring=censoring, exposure_case=e_cb // n_buckets,
                    exposure_bucket=e_cb % n_buckets, exposure_feature=e_feat, exposure_value=np.ones(key.size),
                    outcome_case=o_key // n_buckets, outcome_bucket=o_key % n_buckets, outcome_count=o_count,
                    feature_names=np.asarray(names, dtype=object), bucket_size=b,
                    case_patient=np.arange(log.n_patients), case_start=start, outcome_name=str(outcome),
                    time_unit=log.time_unit)
    rate = truth.baseline_matrix()[:, out_i]
    grid = np.arange(n_buckets) * b
    expected = rate[:, None] * np.clip(np.minimum(grid + b, span[:, None]) - grid, 0.0, None)
    effects = truth.drug_effects[truth.drug_effects["event"] == outcome]
    for drug, lo, hi, ri in effects[["drug", "lag_start", "lag_end", "relative_incidence"]].itertuples(index=False):
        # one vectorised pass per planted step (a handful), over all dispensations of its drug
        rows = np.flatnonzero(log.code == truth.index(drug)[0])
        p = log.patient[rows]
        a = log.time[rows] - start[p] + lo
        e = np.minimum(log.time[rows] - start[p] + hi, span[p])
        _add_overlap(expected, p, a, e, truth.baseline[out_i] * truth.patient_scale[p] * (ri - 1.0), b)
    return data, expected


def _window_length(log: EventLog) -> np.ndarray:
    """Observed time of every patient: ``min(end, death) - start`` (the rule of ``sccs_data``)."""
    patients = log.patients
    end = patients["end"].to_numpy(dtype=np.float64)
    if "death" in patients:
        death = patients["death"].to_numpy(dtype=np.float64)
        end = np.where(np.isfinite(death), np.minimum(end, death), end)
    return end - patients["start"].to_numpy(dtype=np.float64)


def _add_overlap(out: np.ndarray, patient: np.ndarray, a: np.ndarray, e: np.ndarray, height: np.ndarray,
                 b: float) -> None:
    """Add ``height * |[a, e) ∩ bucket t|`` to ``out[patient, t]`` for every interval (window-relative times)."""
    keep = e > a
    patient, a, e, height = patient[keep], a[keep], e[keep], height[keep]
    first = np.floor(a / b).astype(np.int64)
    count = np.ceil(e / b).astype(np.int64) - first
    rep = np.repeat(np.arange(a.size), count)
    t = first[rep] + ragged_arange(count)
    length = np.minimum(e[rep], (t + 1) * b) - np.maximum(a[rep], t * b)
    ok = (t < out.shape[1]) & (length > 0)
    out += np.bincount(patient[rep][ok] * out.shape[1] + t[ok], weights=(height[rep] * length)[ok],
                       minlength=out.size).reshape(out.shape)
