"""ConvSCCS: lagged relative-incidence curves penalised by total variation and group lasso, CV and bootstrap.

``ConvSCCS`` (Morel, Bacry, Gaïffas, Guilloux, Leroy, Biostatistics 2020; tick's ``tick.survival.ConvSCCS``)
models the outcome intensity of a case as ``exp(sum_j sum_l beta[j, l] * start_j[t - l])``: every exposure start
raises the log-incidence by a step function of the lag. The case-specific baseline cancels in the likelihood
conditional on the case's number of outcomes (multinomial over its observed buckets). Coefficient curves are
penalised by total variation (piecewise-constant curves) and group lasso (whole curves set to zero).

Differences from tick, on purpose: censored buckets are excluded from a case's normaliser (tick's C++ model counts
them as unexposed observed buckets); cross-validation uses a grid with warm starts along the penalty path and
patient-level folds (tick's random search breaks with current scikit-learn); intervals come from a case-resampling
bootstrap (tick uses a parametric bootstrap whose coverage is far below nominal) — see ``docs/sccs.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from pathways.data.tables import factors_frame
from pathways.device import resolve_device
from pathways.encode.sccs import SCCSData
from pathways.errors import PathwaysInputError
from pathways.models.base import full_batch_fit
from pathways.models.sccs.base import SCCSEstimator
from pathways.models.sccs.design import LagDesign, as_sccs_data, lag_design, resolve_lags, resolve_penalized
from pathways.models.sccs.likelihood import joint_separation, separation
from pathways.models.sccs.solver import (batched_loss, curvature, fista, penalty_prox, penalty_value, project,
                                         support_projection)
from pathways.progress import progress_bar
from pathways.utils import ragged_arange, rng as make_rng

__all__ = ["ConvSCCS", "ConvSCCSCV", "lag_status"]


def _check_penalty(name: str, value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise PathwaysInputError(f"{name} must be None or a positive number, got {value!r}")
    return value


def _normalise(counts: torch.Tensor, n_outcomes: torch.Tensor, reduce: Any = None) -> torch.Tensor:
    """Case weights (n_cases, B): cases without outcome carry nothing; each column sums to 1 (tick's 1/n_cases)
    over the cases of every rank in a sharded fit (``reduce``)."""
    w = counts * (n_outcomes > 0)[:, None]
    total = w.sum(0, keepdim=True) if reduce is None else reduce(w.sum(0, keepdim=True))[0]
    if bool((total <= 0).any()):
        raise PathwaysInputError("no case with an outcome in the data (or in a cross-validation fold)")
    return w / total


class ConvSCCS(SCCSEstimator):
    """Convolutional SCCS: lagged relative-incidence curves penalised by total variation and group lasso.

    Parameters
    ----------
    n_lags : int or sequence of int
        Lags per exposure (an int: every exposure; age features get 0). Coefficient ``l`` of a curve is the log
        relative incidence ``l`` buckets after an exposure start (lag 0 = the start bucket).
    C_tv, C_group_l1 : float or None
        Inverse penalty strengths, as in tick: the objective is ``mean_i(-loglik_i) + TV(beta_j) / C_tv +
        sqrt(n_lags_j + 1) * ||beta_j||_2 / C_group_l1`` summed over penalised features. None disables a penalty.
    penalized_features : bool mask or indices, optional
        Features to penalise (default: every exposure; age features stay unpenalised).
    tol : float
        Stop when ``||beta_k - beta_{k-1}||_2 / max(1, ||beta_{k-1}||_2)`` falls below ``tol`` (tick's criterion).
    max_iter : int
        Maximum FISTA iterations per fit.
    n_bootstrap : int
        Bootstrap replicates (cases resampled with replacement) for confidence intervals; 0 skips them.
    ci_level : float
        Confidence level of the intervals.
    ci_method : {"refit", "percentile"}
        ``"refit"``: every replicate re-runs the penalised fit, then refits without penalty on the support that fit
        selected (its TV segments and non-zero curves); intervals are percentiles of these debiased refits and the
        point estimate ``refit_coef_`` is the same refit on the full data. ``"percentile"``: percentiles of the
        penalised replicates (narrower, but inherit the penalty's shrinkage bias).
    bootstrap_batch : int
        Replicates fitted together (memory grows with it).
    seed : int or None
        Seed for bootstrap draws and cross-validation folds.
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    dtype : {"float64", "float32"}
        Solver precision.

    Attributes
    ----------
    coef_ : ndarray (n_coeffs,)
        All coefficients, feature after feature (``offsets_`` marks the blocks).
    refit_coef_, ci_low_, ci_high_ : ndarray (n_coeffs,)
        Present after a bootstrap (log scale).
    cv_results_ : DataFrame
        Present after :meth:`fit_kfold_cv`: one row per (C_tv, C_group_l1).

    Notes
    -----
    ``score`` is the mean conditional log-likelihood per case-outcome:
    ``sum_i sum_t y_it log P_i(t) / sum_i sum_t y_it`` with ``P_i`` the multinomial law of case ``i``'s outcome over
    its observed buckets (higher is better; ``-log(n_buckets)`` for a model without effects and full windows).
    """

    def __init__(self, n_lags: int | Sequence[int] = 49, C_tv: float | None = None,
                 C_group_l1: float | None = None, penalized_features: Sequence[int] | None = None,
                 tol: float = 1e-5, max_iter: int = 2000, n_bootstrap: int = 0, ci_level: float = 0.95,
                 ci_method: str = "refit", bootstrap_batch: int = 16, seed: int | None = 0, device: str = "cpu",
                 dtype: str = "float64"):
        self.n_lags = n_lags
        self.C_tv = C_tv
        self.C_group_l1 = C_group_l1
        self.penalized_features = penalized_features
        self.tol = tol
        self.max_iter = max_iter
        self.n_bootstrap = n_bootstrap
        self.ci_level = ci_level
        self.ci_method = ci_method
        self.bootstrap_batch = bootstrap_batch
        self.seed = seed
        self.device = device
        self.dtype = dtype

    # -- public API -----------------------------------------------------------------------------------------------
    @full_batch_fit
    def fit(self, data: Any, validation: Any | None = None, *, labels: Sequence[Any] | None = None,
            censoring: Any | None = None, **encode_kwargs: Any) -> ConvSCCS:
        """Fit on SCCSData, tick's features (with ``labels=``, ``censoring=``) or an EventLog (+ ``exposures``,
        ``outcome``, ``bucket_size`` and other :func:`~pathways.encode.sccs.sccs_data` arguments).

        ``validation`` is ignored: the fit is full-batch, penalties are chosen by :meth:`fit_kfold_cv`.
        """
        data = as_sccs_data(data, labels, censoring, **encode_kwargs)
        design = self._prepare(data)
        self.C_tv_ = _check_penalty("C_tv", self.C_tv)
        self.C_group_l1_ = _check_penalty("C_group_l1", self.C_group_l1)
        weights = _normalise(torch.ones(data.n_cases, 1, dtype=self._dtype(), device=design.X.device),
                             design.n_outcomes, self._shard_sum())
        beta, self.n_iter_, self._lip = self._solve(design, weights, None, self.C_tv_, self.C_group_l1_)
        self._store(beta[:, 0], design)
        self._maybe_bootstrap(design)
        return self

    def fit_kfold_cv(self, data: Any, *, labels: Sequence[Any] | None = None, censoring: Any | None = None,
                     C_tv_grid: Sequence[float | None] | None = None,
                     C_group_l1_grid: Sequence[float | None] | None = None, n_folds: int = 3,
                     **encode_kwargs: Any) -> ConvSCCS:
        """Select ``(C_tv, C_group_l1)`` by K-fold cross-validation on a grid, then refit on all cases.

        Folds are patient-level (all cases of a patient in one fold). Folds are fitted together (one batched solve)
        and the grid is walked from the strongest penalties to the weakest, in a snake order, each fit warm-started
        from its neighbour. The selected pair maximises the mean held-out score (mean conditional log-likelihood per
        outcome). Results go to ``cv_results_`` and ``best_params_``; the refit (and its bootstrap, if
        ``n_bootstrap > 0``) uses the selected pair.

        Defaults: ``C_tv_grid = logspace(1, 4, 7)``, ``C_group_l1_grid = logspace(2, 5, 7)`` (tick's example ranges).
        """
        data = as_sccs_data(data, labels, censoring, **encode_kwargs)
        design = self._prepare(data)
        tv_grid = sorted(_grid(C_tv_grid, np.logspace(1, 4, 7), "C_tv_grid"), key=_strength_order)
        gl_grid = sorted(_grid(C_group_l1_grid, np.logspace(2, 5, 7), "C_group_l1_grid"), key=_strength_order)
        folds = self._folds(data, n_folds)
        dtype, dev = self._dtype(), design.X.device
        fold_t = torch.as_tensor(folds, device=dev)
        test = (fold_t[:, None] == torch.arange(n_folds, device=dev)[None, :]).to(dtype)
        train = _normalise(1.0 - test, design.n_outcomes)
        test_outcomes = (test * design.n_outcomes[:, None]).sum(0)
        # a split fit (pathways.models.sccs.distributed.fit_split): this rank fits its folds only, every rank
        # then holds every fold's scores and coefficients (one all-reduce of zero-filled arrays)
        split = getattr(self, "_split_reducer", None)
        mine = np.arange(n_folds) if split is None else np.arange(split.rank, n_folds, split.world_size)
        if split is not None:
            test, train, test_outcomes = test[:, mine], train[:, mine], test_outcomes[mine]
        cells = [(c_tv, c_gl) for a, c_gl in enumerate(gl_grid) for c_tv in (tv_grid if a % 2 == 0 else
                                                                                tv_grid[::-1])]
        scores, n_iters, beta, lip = np.zeros((len(cells), 2, n_folds)), np.zeros(len(cells)), None, None
        fold_beta: Any = [] if split is None else np.zeros((len(cells), design.n_coeffs, n_folds))
        for i, (c_tv, c_gl) in enumerate(progress_bar(cells, desc="ConvSCCS CV grid", unit="fit")):
            if mine.size == 0:  # more ranks than folds
                continue
            beta, n_iters[i], lip = self._solve(design, train, beta, c_tv, c_gl, lip)
            ll = batched_loss(design, beta, train, grad=False)[2]
            scores[i, 0, mine] = ((ll * test).sum(0) / test_outcomes).cpu().numpy()
            scores[i, 1, mine] = ((ll * (1 - test)).sum(0) / (design.n_outcomes.sum() - test_outcomes)).cpu().numpy()
            if split is None:
                fold_beta.append(beta)
            else:
                fold_beta[i][:, mine] = beta.cpu().numpy()
        if split is not None:
            scores, fold_beta = split.sum(scores, fold_beta)
            n_iters = split.max(n_iters)[0]
            fold_beta = torch.as_tensor(fold_beta, dtype=dtype, device=dev)
        as_dtype = np.float64 if dtype == torch.float64 else np.float32  # the one-process scores' precision
        rows, best = [], (-math.inf, None, None)
        for i, (c_tv, c_gl) in enumerate(cells):
            test_scores, train_scores = scores[i, 0].astype(as_dtype), scores[i, 1].astype(as_dtype)
            rows.append({"C_tv": c_tv, "C_group_l1": c_gl, "mean_test_score": float(test_scores.mean()),
                         "std_test_score": float(test_scores.std()),
                         "mean_train_score": float(train_scores.mean()), "n_iter": int(n_iters[i])})
            if rows[-1]["mean_test_score"] > best[0]:
                best = (rows[-1]["mean_test_score"], (c_tv, c_gl), fold_beta[i].mean(1, keepdim=True))
        self.cv_results_ = pd.DataFrame(rows)
        self.best_params_ = {"C_tv": best[1][0], "C_group_l1": best[1][1]}
        self.C_tv_, self.C_group_l1_ = best[1]
        weights = _normalise(torch.ones(data.n_cases, 1, dtype=dtype, device=dev), design.n_outcomes)
        beta, self.n_iter_, self._lip = self._solve(design, weights, best[2], self.C_tv_, self.C_group_l1_)
        self._store(beta[:, 0], design)
        self._maybe_bootstrap(design)
        return self

    def lag_curves(self) -> np.ndarray:
        """``coef_`` as curves: log relative incidence per feature and lag, shape (n_features, max_lags + 1), NaN
        beyond a feature's lags."""
        self.check_fitted()
        curves = np.full((self.n_lags_.size, int(self.n_lags_.max()) + 1), np.nan)
        feat = np.repeat(np.arange(self.n_lags_.size), self.n_lags_ + 1)
        curves[feat, ragged_arange(self.n_lags_ + 1)] = self.coef_
        return curves

    def relative_incidence(self) -> pd.DataFrame:
        """Long table of the fitted curves: one row per (feature, lag).

        Columns: ``feature``, ``kind``, ``lag`` (buckets after the start), ``lag_time`` (lag x bucket size, in the
        data's time unit), ``log_ri``, ``ri`` (penalised estimate), and after a bootstrap ``ri_refit``,
        ``ci_low``, ``ci_high`` (relative-incidence scale); ``n_outcomes`` (outcomes at that lag, weighted by the
        design value) and ``status`` per lag (:func:`lag_status`): a lag with no
        outcome, separated or without informative case has no bootstrap interval (NaN; ``ci_low`` 0 for an empty
        lag) and, in an unpenalised fit, no estimate (NaN) — never a drifting 0 or 1e39 with a zero-width interval.
        """
        self.check_fitted()
        feat = np.repeat(np.arange(self.n_lags_.size), self.n_lags_ + 1)
        lag = ragged_arange(self.n_lags_ + 1)
        frame = pd.DataFrame({"feature": self.feature_names_[feat], "kind": self.feature_kind_[feat], "lag": lag,
                              "lag_time": lag * self.bucket_size_, "log_ri": self.coef_, "ri": np.exp(self.coef_)})
        status = getattr(self, "status_", np.full(self.coef_.size, "estimated", dtype=object))
        empty = status != "estimated"
        if getattr(self, "C_tv_", None) is None and getattr(self, "C_group_l1_", None) is None:
            frame.loc[empty, ["log_ri", "ri"]] = np.nan  # no finite MLE: the solver's stopping point is no estimate
        if hasattr(self, "ci_low_"):
            frame["ri_refit"] = np.where(empty, np.nan, np.exp(self.refit_coef_))
            # no bootstrap interval where no replicate can estimate: 0 is the known bound of an empty lag
            frame["ci_low"] = np.where(status == "no exposed outcome", 0.0, np.where(empty, np.nan,
                                                                                     np.exp(self.ci_low_)))
            frame["ci_high"] = np.where(empty, np.nan, np.exp(self.ci_high_))
        if hasattr(self, "lag_outcomes_"):
            frame["n_outcomes"] = self.lag_outcomes_
        frame["status"] = status
        return frame

    def to_factors(self, data: Any | None = None) -> pd.DataFrame:
        """The fitted curves as a factors table (source = exposure, target = outcome, effect = relative incidence).

        ``lag_days`` is the lag in the data's time unit (days when the log was built from dates). ``data`` is
        ignored: the curves do not depend on it.
        """
        ri = self.relative_incidence()
        ri = ri[ri["kind"] == "exposure"]
        has_ci = "ci_low" in ri
        return factors_frame(ri["feature"], [self.outcome_name_] * len(ri), ri["ri"], method="convsccs",
                             lag_days=ri["lag_time"], ci_low=ri["ci_low"] if has_ci else None,
                             ci_high=ri["ci_high"] if has_ci else None, lag=ri["lag"])

    # -- internals ------------------------------------------------------------------------------------------------
    def _case_scores(self, data: SCCSData) -> np.ndarray:
        """Per-case conditional log-likelihood of the fitted coefficients."""
        design = lag_design(data, self.n_lags_, resolve_device(self.device), self._dtype())
        beta = torch.as_tensor(self.coef_, dtype=self._dtype(), device=design.X.device)[:, None]
        ll = batched_loss(design, beta, torch.zeros(data.n_cases, 1, dtype=beta.dtype, device=beta.device),
                          grad=False)[2]
        return ll[:, 0].detach().cpu().numpy().astype(np.float64)

    def _dtype(self) -> torch.dtype:
        if self.dtype not in ("float64", "float32"):
            raise PathwaysInputError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")
        return torch.float64 if self.dtype == "float64" else torch.float32

    def _prepare(self, data: SCCSData) -> LagDesign:
        """Validate parameters against the data, set structural attributes, build the lagged design."""
        if self.ci_method not in ("refit", "percentile"):
            raise PathwaysInputError(f"ci_method must be 'refit' or 'percentile', got {self.ci_method!r}")
        if not 0.0 < float(self.ci_level) < 1.0:
            raise PathwaysInputError(f"ci_level must lie in (0, 1), got {self.ci_level!r}")
        if int(self.max_iter) < 1 or not float(self.tol) > 0:
            raise PathwaysInputError(f"max_iter must be >= 1 and tol > 0, got {self.max_iter!r}, {self.tol!r}")
        self.n_lags_ = resolve_lags(self.n_lags, data)
        self.penalized_ = resolve_penalized(self.penalized_features, data)
        self.offsets_ = np.concatenate([[0], np.cumsum(self.n_lags_ + 1)]).astype(np.int64)
        self.feature_names_ = np.asarray(data.feature_names, dtype=object)
        self.feature_kind_ = np.asarray(data.feature_kind, dtype=object)
        self.n_cases_ = int(np.sum(data.outcomes_per_case() > 0))
        self.n_buckets_ = data.n_buckets
        self.bucket_size_ = float(data.bucket_size)
        self.outcome_name_ = data.outcome_name if data.outcome_name is not None else "outcome"
        if self.n_cases_ == 0:
            raise PathwaysInputError("data has no case with an outcome: nothing to fit")
        return lag_design(data, self.n_lags_, resolve_device(self.device), self._dtype())

    def _solve(self, design: LagDesign, weights: torch.Tensor, beta0: torch.Tensor | None, C_tv: float | None,
               C_gl: float | None, lip: torch.Tensor | None = None) -> tuple[torch.Tensor, int, torch.Tensor]:
        b = weights.shape[1]
        dtype, dev = weights.dtype, weights.device
        if beta0 is None:
            beta0 = torch.zeros(design.n_coeffs, b, dtype=dtype, device=dev)
        elif beta0.shape[1] != b:
            beta0 = beta0[:, :1].expand(-1, b).clone()
        if lip is None or lip.shape[0] != b:
            lip = torch.ones(b, dtype=dtype, device=dev)
        offsets, pen = self.offsets_, self.penalized_
        prox = (lambda x, precision: penalty_prox(x, precision, offsets, pen, C_tv, C_gl))
        penalty = (lambda x: penalty_value(x, offsets, pen, C_tv, C_gl))
        metric = curvature(design, beta0, weights, offsets, blockwise=pen, reduce=self._shard_sum())
        return fista(design, weights, beta0, prox, penalty, lipschitz=lip, metric=metric, tol=float(self.tol),
                     max_iter=int(self.max_iter), reduce=self._shard_sum())

    def _shard_sum(self) -> Any:
        """None, or in a sharded fit (:func:`pathways.models.sccs.distributed.fit_sharded`) the sum over ranks."""
        reducer = getattr(self, "_shard_reducer", None)
        return None if reducer is None else reducer.sum

    def _refit(self, design: LagDesign, weights: torch.Tensor, beta_pen: torch.Tensor,
               lip: torch.Tensor) -> torch.Tensor:
        """Unpenalised refit constrained to the support of ``beta_pen`` (column-wise), by projected FISTA."""
        seg, keep = support_projection(beta_pen, self.offsets_, self.penalized_)
        zero = (lambda x: torch.zeros(x.shape[1], dtype=x.dtype, device=x.device))
        metric = curvature(design, beta_pen, weights, self.offsets_)
        beta, _, _ = fista(design, weights, project(beta_pen, seg, keep, metric),
                           lambda x, precision: project(x, seg, keep, precision), zero, lipschitz=lip, metric=metric,
                           tol=float(self.tol), max_iter=int(self.max_iter))
        return beta

    def _store(self, beta: torch.Tensor, design: LagDesign) -> None:
        self.coef_ = beta.detach().cpu().numpy().astype(np.float64)
        self.status_ = lag_status(design, self.feature_kind_ == "exposure")
        self.lag_outcomes_ = np.asarray(design.X_scipy.T @ design.y_row.cpu().numpy()).reshape(-1)

    def _folds(self, data: SCCSData, n_folds: int) -> np.ndarray:
        if int(n_folds) < 2:
            raise PathwaysInputError(f"n_folds must be >= 2, got {n_folds!r}")
        groups = data.case_patient if data.case_patient is not None else np.arange(data.n_cases)
        uniq, inverse = np.unique(groups, return_inverse=True)
        if uniq.size < n_folds:
            raise PathwaysInputError(f"n_folds={n_folds} exceeds the {uniq.size} patients")
        fold_of_group = np.empty(uniq.size, dtype=np.int64)
        fold_of_group[make_rng(self.seed).permutation(uniq.size)] = np.arange(uniq.size) % n_folds
        return fold_of_group[inverse.reshape(-1)]

    def _maybe_bootstrap(self, design: LagDesign) -> None:
        """Case-resampling bootstrap: replicate weights are multinomial counts over the cases with an outcome."""
        n_boot = int(self.n_bootstrap)
        if n_boot <= 0:
            return
        gen = make_rng(self.seed)
        dtype, dev = self._dtype(), design.X.device
        active = np.flatnonzero(design.n_outcomes.cpu().numpy() > 0)
        counts = gen.multinomial(active.size, np.full(active.size, 1.0 / active.size), size=n_boot)
        full = torch.as_tensor(self.coef_, dtype=dtype, device=dev)[:, None]
        ones = _normalise(torch.ones(design.n_cases, 1, dtype=dtype, device=dev), design.n_outcomes)
        refit_full = self._refit(design, ones, full, self._lip) if self.ci_method == "refit" else full
        step = max(1, int(self.bootstrap_batch))
        batches = range(0, n_boot, step)
        # a split fit: this rank solves every world_size-th batch (the batches, and so every replicate's result, are
        # those of one process); the replicates are gathered by one all-reduce of a zero-filled array
        split = getattr(self, "_split_reducer", None)
        if split is not None:
            batches, boot = batches[split.rank::split.world_size], np.zeros((n_boot, full.shape[0]))
        reps = []
        for lo in progress_bar(batches, desc="ConvSCCS bootstrap", unit="batch"):
            chunk = counts[lo:lo + step]
            w = torch.zeros(design.n_cases, chunk.shape[0], dtype=dtype, device=dev)
            w[torch.as_tensor(active, device=dev)] = torch.as_tensor(chunk.T, dtype=dtype, device=dev)
            w = _normalise(w, design.n_outcomes)
            lip = self._lip.expand(chunk.shape[0]).clone()
            beta, _, lip = self._solve(design, w, full, self.C_tv_, self.C_group_l1_, lip)
            if self.ci_method == "refit":
                beta = self._refit(design, w, beta, lip)
            reps.append(beta.detach().cpu().numpy().T)
            if split is not None:
                boot[lo:lo + step] = reps.pop()
        boot = np.concatenate(reps) if split is None else split.sum(boot)[0].astype(
            np.float64 if dtype == torch.float64 else np.float32)
        alpha = 1.0 - float(self.ci_level)
        self.bootstrap_coef_ = boot
        self.refit_coef_ = refit_full[:, 0].detach().cpu().numpy()
        self.ci_low_ = np.quantile(boot, alpha / 2, axis=0)
        self.ci_high_ = np.quantile(boot, 1 - alpha / 2, axis=0)


def lag_status(design: LagDesign, curves: np.ndarray) -> np.ndarray:
    """Status of every coefficient of a lagged design: ``"estimated"``, ``"no exposed outcome"`` (no outcome at that
    lag), ``"separated"`` (every outcome of its informative cases at that lag, or within the lags of that curve:
    an infinite MLE) or ``"too few cases"`` (no case with an outcome has that lag in and out of its observation).
    ``curves`` marks the features whose lags are checked jointly (the exposures)."""
    y_col = np.asarray(design.X_scipy.T @ design.y_row.cpu().numpy()).reshape(-1)
    sign, identifiable = separation(design.X_scipy, design)
    sign = joint_separation(design.X_scipy, design, sign, [np.arange(design.offsets[j], design.offsets[j + 1])
                                                           for j in np.flatnonzero(curves)])
    return np.select([~identifiable, y_col == 0, sign != 0], ["too few cases", "no exposed outcome", "separated"],
                     "estimated").astype(object)


def _grid(values: Sequence[float | None] | None, default: np.ndarray, name: str) -> list[float | None]:
    grid = list(default) if values is None else list(values)
    if not grid:
        raise PathwaysInputError(f"{name} must hold at least one value")
    return [_check_penalty(name, v) for v in grid]


def _strength_order(c: float | None) -> float:
    """Strongest penalty (smallest C) first; None (no penalty) last."""
    return math.inf if c is None else c


class ConvSCCSCV(ConvSCCS):
    """:class:`ConvSCCS` whose ``fit`` selects ``(C_tv, C_group_l1)`` by cross-validation (see ``fit_kfold_cv``).

    Extra parameters: ``C_tv_grid``, ``C_group_l1_grid`` (None: tick's example ranges) and ``n_folds``.
    """

    def __init__(self, n_lags: int | Sequence[int] = 49, C_tv_grid: Sequence[float] | None = None,
                 C_group_l1_grid: Sequence[float] | None = None, n_folds: int = 3,
                 penalized_features: Sequence[int] | None = None, tol: float = 1e-5, max_iter: int = 2000,
                 n_bootstrap: int = 0, ci_level: float = 0.95, ci_method: str = "refit", bootstrap_batch: int = 16,
                 seed: int | None = 0, device: str = "cpu", dtype: str = "float64"):
        super().__init__(n_lags=n_lags, penalized_features=penalized_features, tol=tol, max_iter=max_iter,
                         n_bootstrap=n_bootstrap, ci_level=ci_level, ci_method=ci_method,
                         bootstrap_batch=bootstrap_batch, seed=seed, device=device, dtype=dtype)
        self.C_tv_grid = C_tv_grid
        self.C_group_l1_grid = C_group_l1_grid
        self.n_folds = n_folds

    @full_batch_fit
    def fit(self, data: Any, validation: Any | None = None, *, labels: Sequence[Any] | None = None,
            censoring: Any | None = None, **encode_kwargs: Any) -> ConvSCCSCV:
        """Cross-validate the penalties on the grids, then refit on all cases (``validation`` is ignored: the
        folds are drawn from ``data``)."""
        return self.fit_kfold_cv(data, labels=labels, censoring=censoring, C_tv_grid=self.C_tv_grid,
                                 C_group_l1_grid=self.C_group_l1_grid, n_folds=self.n_folds, **encode_kwargs)

