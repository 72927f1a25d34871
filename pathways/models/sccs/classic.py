"""Classic SCCS: one relative incidence per user-defined risk window, fitted by Newton's method, Wald intervals.

:func:`sccs_estimand` gives the value the estimates converge to under a known outcome intensity.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from scipy import stats

from pathways.data.tables import factors_frame
from pathways.encode.sccs import SCCSData
from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.models.base import full_batch_fit
from pathways.models.sccs.base import SCCSEstimator
from pathways.models.sccs.design import LagDesign, as_sccs_data, lag_design
from pathways.models.sccs.eventdep import (OBSERVATION_FAMILIES, first_outcomes, fit_observation_model,
                                           observation_intervals, weighted_design)
from pathways.models.sccs.likelihood import case_loglik, joint_separation, newton, separation
from pathways.models.sccs.profile import profile_intervals
from pathways.utils import ragged_arange

__all__ = ["EXPOSURE_CODINGS", "SCCS", "sccs_estimand"]

#: Feature kinds whose parameters get profile-likelihood intervals (the others, age and season, get Wald ones).
PROFILED_KINDS = ("exposure", "pre-exposure", "end of observation")
#: Exposure codings of the classic :class:`SCCS` (see its ``exposure_coding`` parameter).
EXPOSURE_CODINGS = ("exposed", "starts")


class SCCS(SCCSEstimator):
    """Classic SCCS: one relative incidence per user-defined risk window, conditional Poisson likelihood.

    Parameters
    ----------
    risk_windows : list of [start, end] or mapping exposure name -> list of [start, end]
        Risk windows in buckets after the exposure start, both ends included (``[0, 0]`` = the start bucket).
        A list applies to every exposure. Buckets outside every window (and unexposed buckets) are the reference.
        Windows of one exposure must not overlap.
    exposure_coding : {"exposed", "starts"}
        How exposure starts whose windows overlap enter the model. ``"exposed"`` (default, the classic SCCS risk
        period): a window's covariate is 1 in every bucket that lies in that window of at least one start, so
        overlapping windows count once and ``exp(coef)`` is the incidence ratio between time inside the risk
        period and reference time. ``"starts"``: the covariate counts the starts whose window holds the bucket
        (the convolutional design of :class:`ConvSCCS`, tied across the window), so ``k`` overlapping windows
        multiply the incidence by ``RI ** k``. Both coincide when windows never overlap. Age features are
        indicators either way.
    ci_level : float
        Level of the intervals.
    interval : {"profile", "wald"}
        ``"profile"`` (default): profile-likelihood intervals and likelihood-ratio p-values for the exposure
        windows (and any separated parameter), one-sided when a bound is infinite; ``"wald"``: Wald intervals and
        tests from the observed information (NaN for separated parameters). Age and season parameters always get
        Wald; the diagnostic terms of :mod:`pathways.models.sccs.terms` (pre-exposure window, end-of-observation
        probe) are profiled like the exposures.
    prior_sd : float
        Standard deviation of the weak normal prior on the log RI of *separated* parameters only (the remedy of
        :mod:`pathways.models.sccs.likelihood`): their point estimate is the penalised one; every other parameter
        keeps its maximum-likelihood estimate. The default (4) keeps the penalised estimate inside the profile
        interval up to |log RI| = 30 (its log-likelihood deficit ``log RI / prior_sd^2`` stays below 1.92).
    event_dependent_observation : str or None
        None (default): the classic SCCS. A law of the time from the outcome to the end of observation
        (``"exponential"``, ``"weibull"``, ``"gamma"``, ``"exponential-weibull"``, ``"exponential-gamma"``, or
        ``"auto"``: smallest AIC): the modified SCCS for outcomes that end the observation (death), Farrington,
        Whitaker and Ghebremichael Weldeselassie 2011 (:mod:`pathways.models.sccs.eventdep`). Needs
        ``SCCSData.case_death`` and keeps each case's first outcome; the fitted law is ``observation_model_``.
        Intervals are profile-likelihood intervals of the weighted likelihood with the law held at its fit.
    tol : float
        Newton stops when the largest step is below ``tol``.
    max_iter : int
        Maximum Newton iterations.

    Attributes
    ----------
    coef_, std_err_ : ndarray (n_params,)
        Log relative incidence per (exposure, window) then per age group, and Wald standard errors.
    results_ : DataFrame
        One row per parameter: ``feature``, ``kind``, ``window_start``, ``window_end`` (buckets), ``log_ri``,
        ``std_err``, ``ri``, ``ci_low``, ``ci_high``, ``p`` (test of RI = 1), ``n_outcomes`` (outcomes in the
        window), ``status`` and ``separation`` (``"upper"``: the MLE is +inf, ``"lower"``: -inf, ``"none"``).
    status_ : ndarray of str (n_params,)
        ``"estimated"``; ``"separated"`` (infinite MLE, penalised estimate, one-sided interval); ``"no exposed
        outcome"`` (the window holds no outcome: penalised estimate below 1, interval from 0); ``"too few cases"``
        (no case with an outcome has varying exposure: no estimate, NaN).

    Notes
    -----
    ``score`` is the mean conditional log-likelihood per case-outcome, as for :class:`ConvSCCS`.
    A window without any outcome, or with all outcomes of its informative cases inside it, has no finite MLE: its
    ``status`` says so (with a warning) and its estimate is penalised (see ``prior_sd``), never a silent 0 or inf.
    :func:`sccs_estimand` gives the value the estimates converge to under a known outcome intensity.
    """

    def __init__(self, risk_windows: Sequence[Sequence[int]] | Mapping[str, Sequence[Sequence[int]]] = ((0, 0),),
                 exposure_coding: str = "exposed", ci_level: float = 0.95, tol: float = 1e-8, max_iter: int = 100,
                 interval: str = "profile", prior_sd: float = 4.0, event_dependent_observation: str | None = None):
        self.risk_windows = risk_windows
        self.exposure_coding = exposure_coding
        self.ci_level = ci_level
        self.interval = interval
        self.prior_sd = prior_sd
        self.tol = tol
        self.max_iter = max_iter
        self.event_dependent_observation = event_dependent_observation

    @full_batch_fit
    def fit(self, data: Any, validation: Any | None = None, *, labels: Sequence[Any] | None = None,
            censoring: Any | None = None, **encode_kwargs: Any) -> SCCS:
        """Fit by Newton's method on SCCSData, tick's features (with ``labels=``, ``censoring=``) or an EventLog
        (+ encoder arguments). ``validation`` is ignored: the fit is full-batch and unpenalised."""
        if not 0.0 < float(self.ci_level) < 1.0:
            raise PathwaysInputError(f"ci_level must lie in (0, 1), got {self.ci_level!r}")
        if self.interval not in ("profile", "wald") or not float(self.prior_sd) > 0:
            raise PathwaysInputError(f"interval must be 'profile' or 'wald' and prior_sd > 0, got "
                                     f"{self.interval!r}, {self.prior_sd!r}")
        data = as_sccs_data(data, labels, censoring, **encode_kwargs)
        # a sharded fit (pathways.models.sccs.distributed.fit_sharded): every case sum runs over the ranks
        reducer = getattr(self, "_shard_reducer", None)
        with_outcome = int(np.count_nonzero(data.outcomes_per_case() > 0))
        if reducer is not None:
            with_outcome = reducer.sum(with_outcome)[0]
        if with_outcome == 0:
            raise PathwaysInputError("data has no case with an outcome: nothing to fit")
        eventdep = self.event_dependent_observation
        if eventdep is not None and reducer is not None:
            raise PathwaysInputError("a sharded SCCS fit does not support event_dependent_observation (the law of "
                                     "the time to death is fitted in one process)")
        if eventdep is not None:
            if eventdep != "auto" and eventdep not in OBSERVATION_FAMILIES:
                raise PathwaysInputError(f"event_dependent_observation: expected None, 'auto' or one of "
                                         f"{OBSERVATION_FAMILIES}, got {eventdep!r}")
            data = first_outcomes(data)
        self._structure(data)
        X_s, design = self._design(data)
        self.observation_model_ = None
        if eventdep is not None:  # the modified SCCS: buckets weighted by the fitted law of the time to death
            _, k, died = observation_intervals(data)
            if died.any():
                self.observation_model_ = fit_observation_model(k, died, family=eventdep)
                design = weighted_design(design, data, self.observation_model_)
            else:  # nothing ends with death: the weights are flat, the classic SCCS of first outcomes
                warnings.warn("SCCS: no case's observation ended with death: event_dependent_observation leaves "
                              "the classic SCCS (first outcomes)", PathwaysDataWarning, stacklevel=2)
        y_col = np.asarray(X_s.multiply(design.y_row.cpu().numpy()[:, None]).sum(0)).reshape(-1)
        if reducer is not None:
            y_col = reducer.sum(y_col)[0]
        sign, free = separation(X_s, design, reducer)
        exposure = self.param_kind_ == "exposure"
        sign = joint_separation(X_s, design, sign, [np.flatnonzero(exposure & (self.param_feature_ == name))
                                                    for name in np.unique(self.param_feature_[exposure])], reducer)
        if not free.all() or not y_col.all():
            warnings.warn(f"SCCS: {int((~free | (y_col == 0)).sum())} windows hold no outcome or no informative "
                          f"case, e.g. {self.param_names_[np.flatnonzero(~free | (y_col == 0))[0]]} (see the "
                          f"status column)", PathwaysDataWarning, stacklevel=2)
        theta, precision = self._penalised_fit(X_s, design, sign, free)
        self._finish(X_s, design, theta, precision, sign, free, y_col)
        return self

    def to_factors(self, data: Any | None = None) -> pd.DataFrame:
        """Risk-window estimates as a factors table (``lag_days`` = window start in the data's time unit).

        ``data`` is ignored: the estimates do not depend on it.
        """
        self.check_fitted()
        r = self.results_[self.results_["kind"] == "exposure"]
        return factors_frame(r["feature"], [self.outcome_name_] * len(r), r["ri"], method="sccs",
                             lag_days=r["window_start"] * self.bucket_size_, ci_low=r["ci_low"],
                             ci_high=r["ci_high"], lag_end_days=(r["window_end"] + 1) * self.bucket_size_, p=r["p"])

    def _penalised_fit(self, X_s: sp.csr_matrix, design: LagDesign, sign: np.ndarray, free: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Newton fit; the prior ``N(0, prior_sd^2)`` only on separated columns."""
        precision = np.where(sign != 0, 1.0 / float(self.prior_sd) ** 2, 0.0)
        theta = np.full(X_s.shape[1], np.nan)
        X_f = X_s[:, free]
        theta[free], _, self.n_iter_ = newton(X_f, design, float(self.tol), int(self.max_iter),
                                              precision=precision[free],
                                              reducer=getattr(self, "_shard_reducer", None))
        return theta, precision

    def _finish(self, X_s: sp.csr_matrix, design: LagDesign, theta: np.ndarray, precision: np.ndarray,
                sign: np.ndarray, free: np.ndarray, y_col: np.ndarray) -> None:
        """Status, standard errors, intervals (profile or Wald) and p-values of every parameter -> ``results_``."""
        idx = np.flatnonzero(free)
        reducer = getattr(self, "_shard_reducer", None)
        info = newton(X_s[:, free], design, np.inf, 0, precision=precision[free], theta0=theta[free],
                      reducer=reducer)[1]
        se = np.full(theta.size, np.nan)
        se[free] = np.sqrt(np.clip(np.diag(np.linalg.pinv(info + np.diag(precision[free]))), 0, None))
        wald_se = se.copy()
        se[sign != 0] = np.nan  # no Wald standard error for an infinite MLE
        z = stats.norm.ppf(0.5 + float(self.ci_level) / 2)
        low, high = theta - z * se, theta + z * se
        p = 2 * stats.norm.sf(np.abs(theta / se))
        profiled = idx[np.isin(self.param_kind_[idx], PROFILED_KINDS) | (sign[idx] != 0)]
        if self.interval == "profile" and profiled.size:
            local = np.searchsorted(idx, profiled)
            prof = profile_intervals(X_s[:, free], design, theta[free], precision[free], sign[free], local,
                                     float(self.ci_level), float(self.tol), int(self.max_iter),
                                     std_err=np.where(sign[free] != 0, np.nan, wald_se[free]), reducer=reducer)
            low[profiled], high[profiled], p[profiled] = prof.low, prof.high, prof.p
        status = np.select([~free, y_col == 0, sign != 0], ["too few cases", "no exposed outcome", "separated"],
                           "estimated")
        self.coef_, self.std_err_, self.status_ = theta, se, status.astype(object)
        self.results_ = pd.DataFrame({
            "feature": self.param_feature_, "kind": self.param_kind_, "window_start": self.param_window_[:, 0],
            "window_end": self.param_window_[:, 1], "log_ri": theta, "std_err": se, "ri": np.exp(theta),
            "ci_low": np.exp(low), "ci_high": np.exp(high), "p": p, "n_outcomes": y_col, "status": status,
            "separation": np.select([sign > 0, sign < 0], ["upper", "lower"], "none")})

    # -- internals ------------------------------------------------------------------------------------------------
    def _case_scores(self, data: SCCSData) -> np.ndarray:
        """Per-case conditional log-likelihood (windows without estimate count as reference)."""
        X_s, design = self._design(data)
        return case_loglik(X_s @ np.nan_to_num(self.coef_), design)[0]

    def _windows_for(self, name: str) -> list[tuple[int, int]]:
        spec = self.risk_windows
        if isinstance(spec, Mapping):
            if name not in spec:
                return []
            spec = spec[name]
        windows = [tuple(int(v) for v in w) for w in spec]
        bad = [w for w in windows if len(w) != 2 or w[0] < 0 or w[1] < w[0]]
        if bad:
            raise PathwaysInputError(f"risk_windows of {name!r}: {len(bad)} windows are not [start, end] with "
                                     f"0 <= start <= end, e.g. {bad[0]}")
        ordered = sorted(windows)
        overlap = [(a, b) for a, b in zip(ordered, ordered[1:]) if b[0] <= a[1]]
        if overlap:
            raise PathwaysInputError(f"risk_windows of {name!r} overlap: {len(overlap)} pairs, e.g. {overlap[0]}")
        return ordered

    def _structure(self, data: SCCSData) -> None:
        """Parameters: one per (exposure, window), then one per age feature; lags needed per feature."""
        if self.exposure_coding not in EXPOSURE_CODINGS:
            raise PathwaysInputError(f"exposure_coding must be one of {EXPOSURE_CODINGS}, got "
                                     f"{self.exposure_coding!r}")
        if isinstance(self.risk_windows, Mapping):
            unknown = sorted(set(self.risk_windows) - set(data.feature_names))
            if unknown:
                raise PathwaysInputError(f"risk_windows names {len(unknown)} unknown exposures, e.g. {unknown[0]!r}")
        feat, kind, win, lags = [], [], [], np.zeros(data.n_features, dtype=np.int64)
        for j, (name, k) in enumerate(zip(data.feature_names, data.feature_kind)):
            windows = self._windows_for(name) if k == "exposure" else [(0, 0)]
            if windows and windows[-1][1] >= data.n_buckets:
                raise PathwaysInputError(f"risk window {windows[-1]} of {name!r} reaches beyond the "
                                         f"{data.n_buckets} buckets")
            lags[j] = windows[-1][1] if windows else 0
            feat += [name] * len(windows)
            kind += [k] * len(windows)
            win += windows
        if not feat:
            raise PathwaysInputError("risk_windows defines no window for any exposure")
        self.feature_names_ = np.asarray(data.feature_names, dtype=object)
        self.param_feature_ = np.asarray(feat, dtype=object)
        self.param_kind_ = np.asarray(kind, dtype=object)
        self.param_window_ = np.asarray(win, dtype=np.int64).reshape(-1, 2)
        self.param_names_ = np.asarray([f"{f}[{a},{b}]" for f, (a, b) in zip(feat, win)], dtype=object)
        self.n_lags_ = lags
        self.bucket_size_ = float(data.bucket_size)
        self.outcome_name_ = data.outcome_name if data.outcome_name is not None else "outcome"

    def _design(self, data: SCCSData) -> tuple[sp.csr_matrix, LagDesign]:
        """Lagged design tied into window columns (lags outside windows map to no column: reference)."""
        design = lag_design(data, self.n_lags_, "cpu", torch.float64)
        offsets = np.concatenate([[0], np.cumsum(self.n_lags_ + 1)])
        name_to_feature = {n: j for j, n in enumerate(data.feature_names)}
        j_of_param = np.array([name_to_feature[f] for f in self.param_feature_], dtype=np.int64)
        width = self.param_window_[:, 1] - self.param_window_[:, 0] + 1
        rows = np.repeat(offsets[j_of_param] + self.param_window_[:, 0], width) + ragged_arange(width)
        cols = np.repeat(np.arange(width.size), width)
        tie = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(int(offsets[-1]), width.size))
        X_s = (design.X_scipy @ tie).tocsr()
        if self.exposure_coding == "exposed":
            # inside the window of at least one start -> 1: overlapping windows count once (classic risk period)
            capped = (self.param_kind_ == "exposure")[X_s.indices]
            X_s.data = np.where(capped, (X_s.data != 0).astype(np.float64), X_s.data)
            X_s.eliminate_zeros()
        return X_s, design


def sccs_estimand(data: SCCSData, expected: Any, risk_windows: Any = ((0, 0),), *,
                  exposure_coding: str = "exposed", tol: float = 1e-10, max_iter: int = 100) -> pd.DataFrame:
    """What :class:`SCCS` estimates when the outcome intensity is known: the design-consistent truth.

    When outcomes follow a Poisson process given the exposure history (of any form, not necessarily the SCCS
    model's), the SCCS estimate converges, as the number of patients grows, to the maximiser of the *expected*
    conditional log-likelihood ``sum_i sum_t m_it log p_it(theta)``, with ``m_it`` the expected number of outcomes of
    patient ``i`` in bucket ``t`` and ``p_it`` the model's share of bucket ``t`` (the Kullback-Leibler projection
    of the true intensity on the model). Patients without any outcome drop out of the SCCS likelihood but carry
    their expected counts here, so ``data`` holds every patient at risk, not only the cases. This function fits the
    same design (windows, exposure coding) by the same Newton solver to those expected counts.

    Parameters
    ----------
    data : SCCSData
        Exposures and censoring of every patient at risk (its outcome rows are ignored).
    expected : array-like or scipy sparse, shape (n_cases, n_buckets)
        Expected outcome count of every patient and bucket under the true intensity (finite, >= 0; zero at
        buckets >= censoring).
    risk_windows, exposure_coding : as in :class:`SCCS`.
    tol, max_iter : Newton's stopping rule.

    Returns
    -------
    DataFrame
        One row per parameter: ``feature``, ``kind``, ``window_start``, ``window_end``, ``log_ri``, ``ri``
        (NaN for a window with no expected outcome), ``expected_outcomes`` (expected outcomes in the window).

    Examples
    --------
    >>> from pathways.encode.sccs import SCCSData
    >>> data = SCCSData(n_buckets=4, censoring=[4], exposure_case=[0], exposure_bucket=[1], exposure_feature=[0],
    ...                 exposure_value=[1.0], outcome_case=[], outcome_bucket=[], outcome_count=[],
    ...                 feature_names=["drug"])
    >>> sccs_estimand(data, [[1.0, 3.0, 3.0, 1.0]], [[0, 1]])["ri"].round(6).tolist()
    [3.0]
    """
    model = SCCS(risk_windows=risk_windows, exposure_coding=exposure_coding, tol=tol, max_iter=max_iter)
    model._structure(data)
    X_s, design = model._design(data)
    m = _expected_matrix(expected, data)
    row_case = design.row_case.cpu().numpy()
    y_row = m[row_case, design.row_bucket]
    as_t = (lambda a: torch.as_tensor(a, dtype=torch.float64))
    design = replace(design, y_row=as_t(y_row), n_outcomes=as_t(m.sum(1)))
    y_col = np.asarray(X_s.T @ y_row).reshape(-1)
    free = y_col > 0
    theta = np.full(X_s.shape[1], np.nan)
    if m.sum() > 0:
        theta[free] = newton(X_s[:, free], design, float(tol), int(max_iter))[0]
    return pd.DataFrame({
        "feature": model.param_feature_, "kind": model.param_kind_, "window_start": model.param_window_[:, 0],
        "window_end": model.param_window_[:, 1], "log_ri": theta, "ri": np.exp(theta), "expected_outcomes": y_col})


def _expected_matrix(expected: Any, data: SCCSData) -> np.ndarray:
    """Dense (n_cases, n_buckets) expected counts, checked: finite, >= 0, zero beyond each case's censoring."""
    m = expected.toarray() if sp.issparse(expected) else np.asarray(expected, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    if m.shape != (data.n_cases, data.n_buckets):
        raise PathwaysInputError(f"expected: shape {m.shape}, need (n_cases, n_buckets) = "
                                 f"({data.n_cases}, {data.n_buckets})")
    bad = np.argwhere(~np.isfinite(m) | (m < 0))
    if bad.size:
        raise PathwaysInputError(f"expected: counts must be finite and >= 0: {len(bad)} entries fail, e.g. "
                                 f"case {bad[0, 0]}, bucket {bad[0, 1]} = {m[bad[0, 0], bad[0, 1]]}")
    beyond = np.argwhere((m != 0) & (np.arange(data.n_buckets)[None, :] >= data.censoring[:, None]))
    if beyond.size:
        raise PathwaysInputError(f"expected: {len(beyond)} non-zero counts at buckets >= censoring, e.g. case "
                                 f"{beyond[0, 0]}, bucket {beyond[0, 1]} (censoring {data.censoring[beyond[0, 0]]})")
    return m
