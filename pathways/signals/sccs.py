"""ConvSCCS and classic SCCS: self-controlled case series for lagged adverse-event detection.

``ConvSCCS`` (Morel, Bacry, Gaïffas, Guilloux, Leroy, Biostatistics 2020; tick's ``tick.survival.ConvSCCS``)
models the outcome intensity of a case as ``exp(sum_j sum_l beta[j, l] * start_j[t - l])``: every exposure start
raises the log-incidence by a step function of the lag. The case-specific baseline cancels in the likelihood
conditional on the case's number of outcomes (multinomial over its observed buckets). Coefficient curves are
penalised by total variation (piecewise-constant curves) and group lasso (whole curves set to zero).

``SCCS`` is the classic model with user-defined risk windows, fitted by Newton's method, with Wald intervals.

Numerics (all vectorised, torch on CPU or GPU):

* the lagged design keeps only *active* rows — (case, bucket) pairs where some lagged feature is non-zero; the other
  observed buckets of a case have linear predictor 0 and enter its normaliser as a count;
* the solver is FISTA with backtracking and adaptive restart on a *batch* of coefficient vectors (columns), each with
  its own case weights: cross-validation folds and bootstrap replicates are fitted together, one sparse
  matrix-matrix product per iteration;
* the TV prox is Condat's exact direct algorithm per coefficient block; the group-lasso prox is vectorised.

Differences from tick, on purpose: censored buckets are excluded from a case's normaliser (tick's C++ model counts
them as unexposed observed buckets); cross-validation uses a grid with warm starts along the penalty path and
patient-level folds (tick's random search breaks with current scikit-learn); intervals come from a case-resampling
bootstrap (tick uses a parametric bootstrap whose coverage is far below nominal) — see ``docs/sccs.md``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from scipy import stats

from pathways.encode.sccs import SCCSData, sccs_data
from pathways.device import resolve_device
from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.models.base import PathwaysEstimator
from pathways.utils import ragged_arange, rng as make_rng

__all__ = ["ConvSCCS", "ConvSCCSCV", "EXPOSURE_CODINGS", "SCCS", "as_sccs_data", "sccs_estimand"]

#: Exposure codings of the classic :class:`SCCS` (see its ``exposure_coding`` parameter).
EXPOSURE_CODINGS = ("exposed", "starts")


@dataclass
class LagDesign:
    """Lagged design of an SCCS data set (see module docstring)."""

    X: torch.Tensor  # sparse CSR (n_rows, n_coeffs)
    Xt: torch.Tensor  # sparse CSR (n_coeffs, n_rows)
    X_scipy: sp.csr_matrix  # same matrix, for the classic SCCS Newton solver
    X2t: torch.Tensor  # sparse CSR (n_coeffs, n_rows): squared entries, transposed (curvature)
    S: torch.Tensor  # sparse CSR (n_cases, n_rows): sums rows into their case
    Y: torch.Tensor  # sparse CSR (n_cases, n_rows): outcome counts of each row, in its case's row
    XtY: torch.Tensor  # sparse CSR (n_coeffs, n_cases): X' Y' (outcome-weighted features per case)
    row_case: torch.Tensor  # (n_rows,) long
    row_bucket: np.ndarray  # (n_rows,) bucket of every active row
    y_row: torch.Tensor  # (n_rows,) outcome counts at active rows
    n_outcomes: torch.Tensor  # (n_cases,) outcomes per case
    n_free: torch.Tensor  # (n_cases,) observed buckets with zero design row
    y_free: torch.Tensor  # (n_cases,) outcomes that fall in those buckets
    offsets: np.ndarray  # (n_features + 1,) coefficient offsets per feature
    n_cases: int

    @property
    def n_coeffs(self) -> int:
        return int(self.offsets[-1])


def _torch_csr(m: sp.csr_matrix, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta" is noise here
        return torch.sparse_csr_tensor(torch.from_numpy(m.indptr.astype(np.int64)),
                                       torch.from_numpy(m.indices.astype(np.int64)),
                                       torch.from_numpy(m.data), size=m.shape, dtype=dtype, device=device,
                                       check_invariants=False)


def lag_design(data: SCCSData, n_lags: np.ndarray, device: torch.device | str = "cpu",
               dtype: torch.dtype = torch.float64) -> LagDesign:
    """Expand exposure starts into lagged columns: start of feature j at bucket s sets column ``(j, l)`` at s + l."""
    n_lags = np.asarray(n_lags, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(n_lags + 1)])
    t = data.n_buckets
    case, bucket, feat = data.exposure_case, data.exposure_bucket, data.exposure_feature
    width = np.clip(np.minimum(n_lags[feat] + 1, data.censoring[case] - bucket), 0, None)
    rep = np.repeat(np.arange(case.size), width)
    lag = ragged_arange(width)
    flat = case[rep] * t + bucket[rep] + lag
    active, row = np.unique(flat, return_inverse=True)
    X = sp.csr_matrix((data.exposure_value[rep], (row.reshape(-1), offsets[feat[rep]] + lag)),
                      shape=(active.size, int(offsets[-1])))
    X.sum_duplicates()
    row_case = active // t
    # outcomes: at an active row, or in one of the case's zero rows
    o_flat = data.outcome_case * t + data.outcome_bucket
    pos = np.clip(np.searchsorted(active, o_flat), 0, max(active.size - 1, 0))
    hit = (active[pos] == o_flat) if active.size else np.zeros(o_flat.size, bool)
    y_row = np.bincount(pos[hit], weights=data.outcome_count[hit], minlength=active.size)
    y_free = np.bincount(data.outcome_case[~hit], weights=data.outcome_count[~hit], minlength=data.n_cases)
    n_free = data.censoring - np.bincount(row_case, minlength=data.n_cases)
    dev = torch.device(device)
    as_t = (lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype, device=dev))
    rows = np.arange(active.size)
    S = sp.csr_matrix((np.ones(active.size), (row_case, rows)), shape=(data.n_cases, active.size))
    Y = sp.csr_matrix((y_row, (row_case, rows)), shape=(data.n_cases, active.size))
    Y.eliminate_zeros()
    return LagDesign(X=_torch_csr(X, dev, dtype), Xt=_torch_csr(X.T.tocsr(), dev, dtype), X_scipy=X,
                     X2t=_torch_csr(X.multiply(X).T.tocsr(), dev, dtype),
                     S=_torch_csr(S, dev, dtype), Y=_torch_csr(Y, dev, dtype),
                     XtY=_torch_csr((Y @ X).T.tocsr(), dev, dtype),
                     row_case=torch.as_tensor(row_case, device=dev), row_bucket=active % t, y_row=as_t(y_row),
                     n_outcomes=as_t(data.outcomes_per_case()), n_free=as_t(n_free), y_free=as_t(y_free),
                     offsets=offsets, n_cases=data.n_cases)


def batched_loss(d: LagDesign, beta: torch.Tensor, weights: torch.Tensor,
                 grad: bool = True) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Weighted negative conditional log-likelihood of a batch of coefficient vectors.

    Parameters
    ----------
    d : LagDesign
    beta : tensor (n_coeffs, B)
    weights : tensor (n_cases, B)
        Case weights per column (already normalised: the loss is ``-sum_i w_i loglik_i``).
    grad : bool
        Also return the gradient.

    Returns
    -------
    loss : tensor (B,)
    grad : tensor (n_coeffs, B) or None
    loglik : tensor (n_cases, B)
        Per-case conditional log-likelihood ``sum_t y_it (eta_it - logsumexp_{s < c_i} eta_is)``.
    """
    eta = d.X @ beta  # (R, B)
    # one shift per column (the largest predictor, or 0 for the zero rows) keeps every exp() <= 1; only a case whose
    # terms all underflow needs its own shift, computed by the slower per-case path
    shift = eta.amax(0).clamp_min(0.0) if eta.shape[0] else torch.zeros_like(beta[0])
    e = torch.exp(eta - shift)
    s = d.S @ e + d.n_free[:, None] * torch.exp(-shift)
    if bool((s < 1e-250).any()):
        shift_case = _case_shift(d, eta)
        e = torch.exp(eta - shift_case[d.row_case])
        s = d.S @ e + d.n_free[:, None] * torch.exp(-shift_case)
        lse = shift_case + torch.log(s)
    else:
        lse = shift + torch.log(s)
    loglik = d.Y @ eta - d.n_outcomes[:, None] * lse
    loss = -(weights * loglik).sum(0)
    if not grad:
        return loss, None, loglik
    # d loss / d eta_r = w_i (N_i p_r - y_r), p_r = e_r / s_i: the y part is a fixed sparse product
    coef = weights * d.n_outcomes[:, None] / s
    g_eta = e * coef.index_select(0, d.row_case)
    return loss, d.Xt @ g_eta - d.XtY @ weights, loglik


def _case_shift(d: LagDesign, eta: torch.Tensor) -> torch.Tensor:
    """Per-case max of the linear predictor over observed buckets (zero rows count as 0)."""
    n, b = d.n_cases, eta.shape[1]
    start = torch.where(d.n_free > 0, 0.0, -math.inf).to(eta.dtype)[:, None].expand(n, b).contiguous()
    m = start.scatter_reduce(0, d.row_case[:, None].expand(-1, b), eta, reduce="amax", include_self=True)
    return torch.where(torch.isfinite(m), m, torch.zeros_like(m))


# ----------------------------------------------------------------------------------------------------------------
# Proximal operators
# ----------------------------------------------------------------------------------------------------------------
def tv1d(y: list[float], lam: float) -> list[float]:
    """Exact proximal operator of ``lam * sum |x[k+1] - x[k]|`` (Condat's direct algorithm, 2013/2017 version).

    Condat's algorithm is inherently sequential (it scans the signal once, occasionally restarting at the last
    segment start) and linear in the length, so it runs over the coefficients of one block — never over events or
    patients; blocks hold ``n_lags + 1`` values.
    """
    n = len(y)
    if n == 0 or lam <= 0.0:
        return list(y)
    out = [0.0] * n
    k = k0 = kplus = kminus = 0
    umin, umax = lam, -lam
    vmin, vmax = y[0] - lam, y[0] + lam
    twolam, minlam = 2.0 * lam, -lam
    while True:
        while k == n - 1:  # right boundary
            if umin < 0.0:  # vmin too high: negative jump
                while k0 <= kminus:
                    out[k0] = vmin
                    k0 += 1
                k = kminus = k0
                vmin = y[k]
                umin = lam
                umax = vmin + umin - vmax
            elif umax > 0.0:  # vmax too low: positive jump
                while k0 <= kplus:
                    out[k0] = vmax
                    k0 += 1
                k = kplus = k0
                vmax = y[k]
                umax = minlam
                umin = vmax + umax - vmin
            else:
                vmin += umin / (k - k0 + 1)
                while k0 <= k:
                    out[k0] = vmin
                    k0 += 1
                return out
        umin += y[k + 1] - vmin
        if umin < minlam:  # negative jump
            while k0 <= kminus:
                out[k0] = vmin
                k0 += 1
            k = kplus = kminus = k0
            vmin = y[k]
            vmax = vmin + twolam
            umin, umax = lam, minlam
            continue
        umax += y[k + 1] - vmax
        if umax > lam:  # positive jump
            while k0 <= kplus:
                out[k0] = vmax
                k0 += 1
            k = kplus = kminus = k0
            vmax = y[k]
            vmin = vmax - twolam
            umin, umax = lam, minlam
            continue
        k += 1  # no jump
        if umin >= lam:
            kminus = k
            vmin += (umin - lam) / (kminus - k0 + 1)
            umin = lam
        if umax <= minlam:
            kplus = k
            vmax += (umax + lam) / (kplus - k0 + 1)
            umax = minlam


def penalty_prox(beta: torch.Tensor, precision: torch.Tensor, offsets: np.ndarray, penalized: np.ndarray,
                 C_tv: float | None, C_group_l1: float | None) -> torch.Tensor:
    """Prox of ``TV / C_tv + sqrt(block size) * ||block||_2 / C_group_l1`` over penalised blocks.

    ``precision`` (n_coeffs, B) is the inverse step, constant within a penalised block (the block's step scales
    both penalties). Applies the TV prox then the group soft-threshold: this composition is the exact prox of the
    sum, because the group shrinkage rescales a block uniformly and so preserves the TV solution's level sets (as in
    tick's ``ProxMulti((ProxTV, ProxGroupL1))``).
    """
    if C_tv is None and C_group_l1 is None:
        return beta
    out = beta.detach().cpu().numpy().copy()
    blocks = np.array([(int(offsets[j]), int(offsets[j + 1])) for j in np.flatnonzero(penalized)],
                      dtype=np.int64).reshape(-1, 2)
    if blocks.size == 0:
        return beta
    steps = 1.0 / precision[torch.as_tensor(blocks[:, 0], device=precision.device)].detach().cpu().numpy()
    if C_tv is not None:
        for col in range(out.shape[1]):
            for g, (lo, hi) in enumerate(blocks):
                if hi - lo > 1:
                    out[lo:hi, col] = tv1d(out[lo:hi, col].tolist(), float(steps[g, col]) / C_tv)
    if C_group_l1 is not None:
        block_id = np.repeat(np.arange(len(blocks)), blocks[:, 1] - blocks[:, 0])
        rows = np.concatenate([np.arange(lo, hi) for lo, hi in blocks])
        norms = np.sqrt(np.add.reduceat(out[rows] ** 2, np.searchsorted(block_id, np.arange(len(blocks))),
                                        axis=0))  # (n_blocks, B)
        thr = np.sqrt(blocks[:, 1] - blocks[:, 0])[:, None] * steps / C_group_l1
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(norms > thr, 1.0 - thr / norms, 0.0)
        out[rows] *= scale[block_id]
    return torch.as_tensor(out, dtype=beta.dtype, device=beta.device)


def penalty_value(beta: torch.Tensor, offsets: np.ndarray, penalized: np.ndarray, C_tv: float | None,
                  C_group_l1: float | None) -> torch.Tensor:
    """Penalty of every column, shape (B,)."""
    total = torch.zeros(beta.shape[1], dtype=beta.dtype, device=beta.device)
    for j in np.flatnonzero(penalized):
        block = beta[int(offsets[j]):int(offsets[j + 1])]
        if C_tv is not None and block.shape[0] > 1:
            total = total + (block[1:] - block[:-1]).abs().sum(0) / C_tv
        if C_group_l1 is not None:
            total = total + math.sqrt(block.shape[0]) * torch.linalg.vector_norm(block, dim=0) / C_group_l1
    return total


def support_projection(beta: torch.Tensor, offsets: np.ndarray, penalized: np.ndarray,
                       atol: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor]:
    """Support of penalised solutions, as a projection: (segment id per coefficient and column, keep mask).

    Within a penalised block, consecutive equal coefficients form one segment (TV); an all-zero block is dropped
    (group lasso). Unpenalised coefficients are their own segments. Projecting onto the support = replacing each
    coefficient by its segment mean (0 when dropped) — used for the debiased refit.
    """
    p, b = beta.shape
    x = beta.detach().cpu().numpy()
    pen = np.zeros(p, dtype=bool)
    same_block = np.zeros(p, dtype=bool)  # coefficient k continues the block of k-1
    for j in np.flatnonzero(penalized):
        lo, hi = int(offsets[j]), int(offsets[j + 1])
        pen[lo:hi] = True
        same_block[lo + 1:hi] = True
    new_seg = np.ones((p, b), dtype=bool)
    new_seg[1:] = ~(same_block[1:, None] & (np.abs(np.diff(x, axis=0)) <= atol * np.maximum(1.0, np.abs(x[1:]))))
    seg = np.cumsum(new_seg, axis=0) - 1 + np.arange(b)[None, :] * p  # unique ids across columns
    keep = ~(pen[:, None] & (np.abs(x) <= atol))
    return torch.as_tensor(seg, device=beta.device), torch.as_tensor(keep, device=beta.device)


def project(beta: torch.Tensor, seg: torch.Tensor, keep: torch.Tensor,
            precision: torch.Tensor | None = None) -> torch.Tensor:
    """Segment means of ``beta`` weighted by ``precision`` (the projection in that metric); zero where not kept."""
    flat_seg = seg.reshape(-1)
    size = beta.shape[0] * beta.shape[1]
    weight = torch.ones_like(beta) if precision is None else precision
    sums = torch.zeros(size, dtype=beta.dtype, device=beta.device).index_add_(0, flat_seg,
                                                                              (weight * beta).reshape(-1))
    total = torch.zeros(size, dtype=beta.dtype, device=beta.device).index_add_(0, flat_seg, weight.reshape(-1))
    mean = (sums / total.clamp_min(1e-300))[flat_seg].reshape(beta.shape)
    return torch.where(keep, mean, torch.zeros_like(mean))


# ----------------------------------------------------------------------------------------------------------------
# Batched FISTA with backtracking and adaptive restart
# ----------------------------------------------------------------------------------------------------------------
def fista(d: LagDesign, weights: torch.Tensor, beta0: torch.Tensor, prox, penalty, *, lipschitz: torch.Tensor,
          metric: torch.Tensor | None = None, tol: float = 1e-6,
          max_iter: int = 500) -> tuple[torch.Tensor, int, torch.Tensor]:
    """Minimise ``loss + penalty`` for every column, all columns in one sparse product per iteration.

    ``prox(beta, precision)`` and ``penalty(beta)`` act column-wise; ``precision`` (n_coeffs, B) is the inverse
    step of every coefficient, ``lipschitz * metric``. The diagonal ``metric`` (default: ones) preconditions the
    gradient steps — the loss curvature differs by orders of magnitude between a drug taken by most cases and a rare
    one. Each column keeps its own Lipschitz estimate (backtracking in the metric's norm, slowly relaxed so steps grow
    back), momentum, restart (objective increase) and stopping test (``||x_k - x_{k-1}||_2 / max(1, ||x_{k-1}||_2)``
    below ``tol``, tick's criterion, or a relative objective change below ``tol**2``); converged columns are
    frozen.

    Returns
    -------
    beta : tensor (n_coeffs, B)
    n_iter : int
    lipschitz : tensor (B,), reusable as a warm start
    """
    metric = torch.ones_like(beta0) if metric is None else metric
    lip = lipschitz.clone()
    x = prox(beta0, lip * metric)
    z, t_mom = x.clone(), torch.ones_like(lipschitz)
    f_x = batched_loss(d, x, weights, grad=False)[0] + penalty(x)
    active = torch.ones_like(lip, dtype=torch.bool)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        f_z, g_z, _ = batched_loss(d, z, weights)
        lip = lip * 0.9  # let the step grow back when the curvature is lower here
        while True:  # backtracking: quadratic upper bound must hold for every column
            precision = lip * metric
            x_new = prox(z - g_z / precision, precision)
            diff = x_new - z
            f_new = batched_loss(d, x_new, weights, grad=False)[0]
            bound = f_z + (g_z * diff).sum(0) + 0.5 * (precision * diff * diff).sum(0)
            bad = (f_new > bound + 1e-12 * f_z.abs().clamp_min(1.0)) & active
            if not bool(bad.any()):
                break
            lip = torch.where(bad, lip * 2.0, lip)
        obj_new = f_new + penalty(x_new)
        f_prev = f_x
        restart = obj_new > f_x
        change = torch.linalg.vector_norm(x_new - x, dim=0) / torch.linalg.vector_norm(x, dim=0).clamp_min(1.0)
        t_next = (1.0 + torch.sqrt(1.0 + 4.0 * t_mom * t_mom)) / 2.0
        momentum = torch.where(restart, torch.zeros_like(t_mom), (t_mom - 1.0) / t_next)
        z_new = x_new + momentum * (x_new - x)
        # frozen columns keep their iterate
        x = torch.where(active, x_new, x)
        z = torch.where(active, z_new, z)
        f_x = torch.where(active, obj_new, f_x)
        t_mom = torch.where(restart, torch.ones_like(t_next), t_next)
        # converged: iterates settled, or the objective no longer moves (flat directions — coefficients that no
        # case informs — can keep the iterates drifting without any effect on the fit)
        stalled = (obj_new - f_prev).abs() <= tol * tol * f_prev.abs().clamp_min(1.0)
        active = active & (change > tol) & ~stalled
        if not bool(active.any()):
            break
    return x, n_iter, lip


def curvature(d: LagDesign, beta: torch.Tensor, weights: torch.Tensor, offsets: np.ndarray,
              blockwise: np.ndarray | None = None) -> torch.Tensor:
    """Diagonal preconditioner: ``sum_i w_i N_i E_{p_i}[x_j^2]``, an upper bound of the loss Hessian's diagonal.

    Coefficients of features in ``blockwise`` share their block's mean (so the TV and group proxes stay exact with
    one step per block). Floored at 1e-3 of the column's largest value, since coefficients no case reaches have
    zero curvature.
    """
    eta = d.X @ beta
    shift = _case_shift(d, eta)
    e = torch.exp(eta - shift[d.row_case])
    s = d.S @ e + d.n_free[:, None] * torch.exp(-shift)
    diag = d.X2t @ (e * (weights * d.n_outcomes[:, None] / s).index_select(0, d.row_case))
    if blockwise is not None:
        for j in np.flatnonzero(blockwise):
            lo, hi = int(offsets[j]), int(offsets[j + 1])
            diag[lo:hi] = diag[lo:hi].mean(0, keepdim=True)
    return diag.clamp_min(1e-3 * float(diag.max().clamp_min(1e-12)))


# ----------------------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------------------
def as_sccs_data(X: Any, labels: Sequence[Any] | None = None, censoring: Any | None = None,
                 **encode_kwargs: Any) -> SCCSData:
    """Coerce pathways' :class:`SCCSData`, tick's lists or an EventLog (with encoder arguments) into SCCSData."""
    from pathways.data.eventlog import EventLog

    if isinstance(X, SCCSData):
        if labels is not None or censoring is not None or encode_kwargs:
            raise PathwaysInputError("labels/censoring/encoder arguments must not be given with SCCSData")
        return X
    if isinstance(X, EventLog) or hasattr(X, "to_eventlog"):  # an EventLog or a pathways.cohort.Cohort
        if labels is not None or censoring is not None:
            raise PathwaysInputError("labels/censoring must not be given with an EventLog: pass exposures=, "
                                     "outcome=, bucket_size= to encode it")
        missing = [k for k in ("exposures", "outcome", "bucket_size") if k not in encode_kwargs]
        if missing:
            raise PathwaysInputError(f"fitting on an EventLog needs encoder arguments {missing}")
        return sccs_data(X, **encode_kwargs)
    if isinstance(X, (list, tuple)):
        if labels is None:
            raise PathwaysInputError("labels: required with tick-format features (a list of per-case arrays)")
        if encode_kwargs:
            raise PathwaysInputError(f"unexpected arguments with tick-format input: {sorted(encode_kwargs)}")
        return SCCSData.from_tick(X, labels, censoring)
    raise PathwaysInputError(f"X: expected SCCSData, an EventLog or tick's list of feature matrices, got "
                             f"{type(X).__name__}")


def _resolve_lags(n_lags: Any, data: SCCSData) -> np.ndarray:
    """Per-feature lags: an int applies to exposures (age features get 0); an array gives one per feature."""
    if np.ndim(n_lags) == 0:
        lags = np.where(data.feature_kind == "exposure", int(n_lags), 0).astype(np.int64)
    else:
        lags = np.asarray(n_lags).astype(np.int64).reshape(-1)
        if lags.size != data.n_features:
            raise PathwaysInputError(f"n_lags has {lags.size} entries for {data.n_features} features")
    bad = np.flatnonzero((lags < 0) | (lags >= data.n_buckets))
    if bad.size:
        raise PathwaysInputError(f"n_lags must lie in [0, n_buckets - 1 = {data.n_buckets - 1}]: {bad.size} "
                                 f"features outside, e.g. feature {bad[0]} with {lags[bad[0]]}")
    return lags


def _resolve_penalized(penalized: Any, data: SCCSData) -> np.ndarray:
    if penalized is None:
        return np.asarray(data.feature_kind == "exposure")
    arr = np.asarray(penalized)
    if arr.dtype == bool:
        if arr.size != data.n_features:
            raise PathwaysInputError(f"penalized_features mask has {arr.size} entries for {data.n_features}")
        return arr.copy()
    mask = np.zeros(data.n_features, dtype=bool)
    idx = arr.astype(np.int64).reshape(-1)
    bad = np.flatnonzero((idx < 0) | (idx >= data.n_features))
    if bad.size:
        raise PathwaysInputError(f"penalized_features: {bad.size} indices outside [0, {data.n_features}), "
                                 f"e.g. {idx[bad[0]]}")
    mask[idx] = True
    return mask


def _fitted_data(model: PathwaysEstimator, X: Any, labels: Sequence[Any] | None, censoring: Any | None,
                 **encode_kwargs: Any) -> SCCSData:
    """SCCS data to score with a fitted model, checked to carry the features it was fitted on."""
    model._check_fitted()
    data = as_sccs_data(X, labels, censoring, **encode_kwargs)
    if data.n_features != model.feature_names_.size:
        raise PathwaysInputError(f"X has {data.n_features} features, the model was fitted on "
                                 f"{model.feature_names_.size}")
    return data


def _check_penalty(name: str, value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise PathwaysInputError(f"{name} must be None or a positive number, got {value!r}")
    return value


def _normalise(counts: torch.Tensor, n_outcomes: torch.Tensor) -> torch.Tensor:
    """Case weights (n_cases, B): cases without outcome carry nothing; each column sums to 1 (tick's 1/n_cases)."""
    w = counts * (n_outcomes > 0)[:, None]
    total = w.sum(0, keepdim=True)
    if bool((total <= 0).any()):
        raise PathwaysInputError("no case with an outcome in the data (or in a cross-validation fold)")
    return w / total


# ----------------------------------------------------------------------------------------------------------------
# ConvSCCS
# ----------------------------------------------------------------------------------------------------------------
class ConvSCCS(PathwaysEstimator):
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
    coeffs_ : ndarray (n_features, max_lags + 1)
        Log relative incidence per feature and lag, NaN beyond a feature's lags.
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

    input_kind: ClassVar[str] = "sccs"

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
    def fit(self, X: Any, labels: Sequence[Any] | None = None, censoring: Any | None = None,
            **encode_kwargs: Any) -> ConvSCCS:
        """Fit on SCCSData, tick's ``(features, labels, censoring)`` or an EventLog (+ ``exposures``, ``outcome``,
        ``bucket_size`` and other :func:`~pathways.encode.sccs.sccs_data` arguments)."""
        data = as_sccs_data(X, labels, censoring, **encode_kwargs)
        design = self._prepare(data)
        self.C_tv_ = _check_penalty("C_tv", self.C_tv)
        self.C_group_l1_ = _check_penalty("C_group_l1", self.C_group_l1)
        weights = _normalise(torch.ones(data.n_cases, 1, dtype=self._dtype(), device=design.X.device),
                             design.n_outcomes)
        beta, self.n_iter_, self._lip = self._solve(design, weights, None, self.C_tv_, self.C_group_l1_)
        self._store(beta[:, 0])
        self._maybe_bootstrap(design)
        return self

    def fit_kfold_cv(self, X: Any, labels: Sequence[Any] | None = None, censoring: Any | None = None, *,
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
        data = as_sccs_data(X, labels, censoring, **encode_kwargs)
        design = self._prepare(data)
        tv_grid = sorted(_grid(C_tv_grid, np.logspace(1, 4, 7), "C_tv_grid"), key=_strength_order)
        gl_grid = sorted(_grid(C_group_l1_grid, np.logspace(2, 5, 7), "C_group_l1_grid"), key=_strength_order)
        folds = self._folds(data, n_folds)
        dtype, dev = self._dtype(), design.X.device
        fold_t = torch.as_tensor(folds, device=dev)
        test = (fold_t[:, None] == torch.arange(n_folds, device=dev)[None, :]).to(dtype)
        train = _normalise(1.0 - test, design.n_outcomes)
        test_outcomes = (test * design.n_outcomes[:, None]).sum(0)
        rows, beta, lip, best = [], None, None, (-math.inf, None, None)
        for a, c_gl in enumerate(gl_grid):
            for c_tv in (tv_grid if a % 2 == 0 else tv_grid[::-1]):
                beta, n_iter, lip = self._solve(design, train, beta, c_tv, c_gl, lip)
                ll = batched_loss(design, beta, train, grad=False)[2]
                test_scores = ((ll * test).sum(0) / test_outcomes).cpu().numpy()
                train_scores = ((ll * (1 - test)).sum(0) / (design.n_outcomes.sum() - test_outcomes)).cpu().numpy()
                rows.append({"C_tv": c_tv, "C_group_l1": c_gl, "mean_test_score": float(test_scores.mean()),
                             "std_test_score": float(test_scores.std()),
                             "mean_train_score": float(train_scores.mean()), "n_iter": n_iter})
                if rows[-1]["mean_test_score"] > best[0]:
                    best = (rows[-1]["mean_test_score"], (c_tv, c_gl), beta.mean(1, keepdim=True))
        self.cv_results_ = pd.DataFrame(rows)
        self.best_params_ = {"C_tv": best[1][0], "C_group_l1": best[1][1]}
        self.C_tv_, self.C_group_l1_ = best[1]
        weights = _normalise(torch.ones(data.n_cases, 1, dtype=dtype, device=dev), design.n_outcomes)
        beta, self.n_iter_, self._lip = self._solve(design, weights, best[2], self.C_tv_, self.C_group_l1_)
        self._store(beta[:, 0])
        self._maybe_bootstrap(design)
        return self

    def score(self, X: Any, labels: Sequence[Any] | None = None, censoring: Any | None = None,
              **encode_kwargs: Any) -> float:
        """Mean conditional log-likelihood per case-outcome of the fitted coefficients (higher is better)."""
        data = _fitted_data(self, X, labels, censoring, **encode_kwargs)
        design = lag_design(data, self.n_lags_, resolve_device(self.device), self._dtype())
        beta = torch.as_tensor(self.coef_, dtype=self._dtype(), device=design.X.device)[:, None]
        ll = batched_loss(design, beta, torch.zeros(data.n_cases, 1, dtype=beta.dtype, device=beta.device),
                          grad=False)[2]
        total = float(design.n_outcomes.sum())
        if total <= 0:
            raise PathwaysInputError("X has no outcome: the conditional likelihood is undefined")
        return float(ll.sum()) / total

    def relative_incidence(self) -> pd.DataFrame:
        """Long table of the fitted curves: one row per (feature, lag).

        Columns: ``feature``, ``kind``, ``lag`` (buckets after the start), ``lag_time`` (lag x bucket size, in the
        data's time unit), ``log_ri``, ``ri`` (penalised estimate), and after a bootstrap ``ri_refit``,
        ``ci_low``, ``ci_high`` (relative-incidence scale).
        """
        self._check_fitted()
        feat = np.repeat(np.arange(self.n_lags_.size), self.n_lags_ + 1)
        lag = ragged_arange(self.n_lags_ + 1)
        frame = pd.DataFrame({"feature": self.feature_names_[feat], "kind": self.feature_kind_[feat], "lag": lag,
                              "lag_time": lag * self.bucket_size_, "log_ri": self.coef_, "ri": np.exp(self.coef_)})
        if hasattr(self, "ci_low_"):
            frame["ri_refit"] = np.exp(self.refit_coef_)
            frame["ci_low"] = np.exp(self.ci_low_)
            frame["ci_high"] = np.exp(self.ci_high_)
        return frame

    def to_factors(self) -> pd.DataFrame:
        """The fitted curves as a factors table (source = exposure, target = outcome, effect = relative incidence).

        ``lag_days`` is the lag in the data's time unit (days when the log was built from dates).
        """
        from pathways.data.tables import factors_frame

        ri = self.relative_incidence()
        ri = ri[ri["kind"] == "exposure"]
        has_ci = "ci_low" in ri
        return factors_frame(ri["feature"], [self.outcome_name_] * len(ri), ri["ri"], method="convsccs",
                             lag_days=ri["lag_time"], ci_low=ri["ci_low"] if has_ci else None,
                             ci_high=ri["ci_high"] if has_ci else None, lag=ri["lag"])

    # -- internals ------------------------------------------------------------------------------------------------
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
        self.n_lags_ = _resolve_lags(self.n_lags, data)
        self.penalized_ = _resolve_penalized(self.penalized_features, data)
        self.offsets_ = np.concatenate([[0], np.cumsum(self.n_lags_ + 1)]).astype(np.int64)
        self.feature_names_ = np.asarray(data.feature_names, dtype=object)
        self.feature_kind_ = np.asarray(data.feature_kind, dtype=object)
        self.n_cases_ = int(np.sum(data.outcomes_per_case() > 0))
        self.n_buckets_ = data.n_buckets
        self.bucket_size_ = float(data.bucket_size)
        self.outcome_name_ = data.outcome_name if data.outcome_name is not None else "outcome"
        if self.n_cases_ == 0:
            raise PathwaysInputError("X has no case with an outcome: nothing to fit")
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
        metric = curvature(design, beta0, weights, offsets, blockwise=pen)
        return fista(design, weights, beta0, prox, penalty, lipschitz=lip, metric=metric, tol=float(self.tol),
                     max_iter=int(self.max_iter))

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

    def _store(self, beta: torch.Tensor) -> None:
        coef = beta.detach().cpu().numpy().astype(np.float64)
        self.coef_ = coef
        width = int(self.n_lags_.max()) + 1
        curves = np.full((self.n_lags_.size, width), np.nan)
        feat = np.repeat(np.arange(self.n_lags_.size), self.n_lags_ + 1)
        curves[feat, ragged_arange(self.n_lags_ + 1)] = coef
        self.coeffs_ = curves

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
        reps = []
        for lo in range(0, n_boot, max(1, int(self.bootstrap_batch))):
            chunk = counts[lo:lo + max(1, int(self.bootstrap_batch))]
            w = torch.zeros(design.n_cases, chunk.shape[0], dtype=dtype, device=dev)
            w[torch.as_tensor(active, device=dev)] = torch.as_tensor(chunk.T, dtype=dtype, device=dev)
            w = _normalise(w, design.n_outcomes)
            lip = self._lip.expand(chunk.shape[0]).clone()
            beta, _, lip = self._solve(design, w, full, self.C_tv_, self.C_group_l1_, lip)
            if self.ci_method == "refit":
                beta = self._refit(design, w, beta, lip)
            reps.append(beta.detach().cpu().numpy().T)
        boot = np.concatenate(reps)
        alpha = 1.0 - float(self.ci_level)
        self.bootstrap_coef_ = boot
        self.refit_coef_ = refit_full[:, 0].detach().cpu().numpy()
        self.ci_low_ = np.quantile(boot, alpha / 2, axis=0)
        self.ci_high_ = np.quantile(boot, 1 - alpha / 2, axis=0)


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

    def fit(self, X: Any, labels: Sequence[Any] | None = None, censoring: Any | None = None,
            **encode_kwargs: Any) -> ConvSCCSCV:
        """Cross-validate the penalties on the grids, then refit on all cases."""
        return self.fit_kfold_cv(X, labels, censoring, C_tv_grid=self.C_tv_grid,
                                 C_group_l1_grid=self.C_group_l1_grid, n_folds=self.n_folds, **encode_kwargs)


# ----------------------------------------------------------------------------------------------------------------
# Classic SCCS with risk windows
# ----------------------------------------------------------------------------------------------------------------
class SCCS(PathwaysEstimator):
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
        Level of the Wald intervals.
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
        ``std_err``, ``ri``, ``ci_low``, ``ci_high``, ``p`` (Wald test of RI = 1), ``n_outcomes`` (outcomes in the
        window).

    Notes
    -----
    ``score`` is the mean conditional log-likelihood per case-outcome, as for :class:`ConvSCCS`.
    A window without any outcome has no finite estimate: it is reported as NaN with a warning.
    :func:`sccs_estimand` gives the value the estimates converge to under a known outcome intensity.
    """

    input_kind: ClassVar[str] = "sccs"

    def __init__(self, risk_windows: Sequence[Sequence[int]] | Mapping[str, Sequence[Sequence[int]]] = ((0, 0),),
                 exposure_coding: str = "exposed", ci_level: float = 0.95, tol: float = 1e-8, max_iter: int = 100):
        self.risk_windows = risk_windows
        self.exposure_coding = exposure_coding
        self.ci_level = ci_level
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X: Any, labels: Sequence[Any] | None = None, censoring: Any | None = None,
            **encode_kwargs: Any) -> SCCS:
        """Fit by Newton's method on SCCSData, tick's format or an EventLog (+ encoder arguments)."""
        if not 0.0 < float(self.ci_level) < 1.0:
            raise PathwaysInputError(f"ci_level must lie in (0, 1), got {self.ci_level!r}")
        data = as_sccs_data(X, labels, censoring, **encode_kwargs)
        if not np.any(data.outcomes_per_case() > 0):
            raise PathwaysInputError("X has no case with an outcome: nothing to fit")
        self._structure(data)
        X_s, design = self._design(data)
        y_col = np.asarray(X_s.multiply(design.y_row.cpu().numpy()[:, None]).sum(0)).reshape(-1)
        free = y_col > 0
        if not free.all():
            warnings.warn(f"SCCS: {int((~free).sum())} windows hold no outcome and get no estimate, e.g. "
                          f"{self.param_names_[np.flatnonzero(~free)[0]]}", PathwaysDataWarning, stacklevel=2)
        theta = np.zeros(X_s.shape[1])
        theta[free], info, self.n_iter_ = _newton(X_s[:, free], design, float(self.tol), int(self.max_iter))
        cov = np.linalg.pinv(info)
        se = np.full(theta.size, np.nan)
        se[free] = np.sqrt(np.clip(np.diag(cov), 0, None))
        theta[~free] = np.nan
        self.coef_, self.std_err_ = theta, se
        z = stats.norm.ppf(0.5 + float(self.ci_level) / 2)
        self.results_ = pd.DataFrame({
            "feature": self.param_feature_, "kind": self.param_kind_, "window_start": self.param_window_[:, 0],
            "window_end": self.param_window_[:, 1], "log_ri": theta, "std_err": se, "ri": np.exp(theta),
            "ci_low": np.exp(theta - z * se), "ci_high": np.exp(theta + z * se),
            "p": 2 * stats.norm.sf(np.abs(theta / se)), "n_outcomes": y_col})
        return self

    def score(self, X: Any, labels: Sequence[Any] | None = None, censoring: Any | None = None,
              **encode_kwargs: Any) -> float:
        """Mean conditional log-likelihood per case-outcome (windows without estimate count as reference)."""
        data = _fitted_data(self, X, labels, censoring, **encode_kwargs)
        X_s, design = self._design(data)
        ll = _case_loglik(X_s @ np.nan_to_num(self.coef_), design)[0]
        return float(ll.sum() / design.n_outcomes.sum().item())

    def to_factors(self) -> pd.DataFrame:
        """Risk-window estimates as a factors table (``lag_days`` = window start in the data's time unit)."""
        from pathways.data.tables import factors_frame

        r = self.results_[self.results_["kind"] == "exposure"]
        return factors_frame(r["feature"], [self.outcome_name_] * len(r), r["ri"], method="sccs",
                             lag_days=r["window_start"] * self.bucket_size_, ci_low=r["ci_low"],
                             ci_high=r["ci_high"], lag_end_days=(r["window_end"] + 1) * self.bucket_size_, p=r["p"])

    # -- internals ------------------------------------------------------------------------------------------------
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
        theta[free] = _newton(X_s[:, free], design, float(tol), int(max_iter))[0]
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


def _case_loglik(eta: np.ndarray, d: LagDesign) -> tuple[np.ndarray, np.ndarray]:
    """Per-case conditional log-likelihood and per-row probabilities for a linear predictor on active rows."""
    row_case = d.row_case.cpu().numpy()
    n_free = d.n_free.cpu().numpy()
    m = np.where(n_free > 0, 0.0, -np.inf)
    np.maximum.at(m, row_case, eta)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(eta - m[row_case])
    s = np.bincount(row_case, weights=e, minlength=d.n_cases) + n_free * np.exp(-m)
    lse = m + np.log(s)
    y_row, n_out = d.y_row.cpu().numpy(), d.n_outcomes.cpu().numpy()
    ll = np.bincount(row_case, weights=y_row * eta, minlength=d.n_cases) - n_out * lse
    return ll, e / s[row_case]


def _newton(X_s: sp.csr_matrix, d: LagDesign, tol: float, max_iter: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Maximise the conditional log-likelihood; return estimate, Fisher information and iterations."""
    q = X_s.shape[1]
    row_case = d.row_case.cpu().numpy()
    y_row, n_out = d.y_row.cpu().numpy(), d.n_outcomes.cpu().numpy()
    case_of = sp.csr_matrix((np.ones(row_case.size), (row_case, np.arange(row_case.size))),
                            shape=(d.n_cases, row_case.size))
    theta = np.zeros(q)
    if q == 0:
        return theta, np.zeros((0, 0)), 0
    ll, p = _case_loglik(X_s @ theta, d)
    for it in range(1, max_iter + 1):
        w_row = n_out[row_case] * p
        grad = X_s.T @ (y_row - w_row)
        v = case_of @ X_s.multiply(p[:, None]).tocsr()  # (n_cases, q): E_p[x] per case
        info = (X_s.T @ X_s.multiply(w_row[:, None])).toarray() - (v.T @ v.multiply(n_out[:, None])).toarray()
        step = np.linalg.lstsq(info, grad, rcond=None)[0]
        for _ in range(30):  # halve until the log-likelihood does not decrease
            cand_ll, cand_p = _case_loglik(X_s @ (theta + step), d)
            if cand_ll.sum() >= ll.sum() - 1e-12 * abs(ll.sum()):
                break
            step = step / 2
        theta, ll, p = theta + step, cand_ll, cand_p
        if np.max(np.abs(step)) < tol:
            break
    w_row = n_out[row_case] * p
    v = case_of @ X_s.multiply(p[:, None]).tocsr()
    info = (X_s.T @ X_s.multiply(w_row[:, None])).toarray() - (v.T @ v.multiply(n_out[:, None])).toarray()
    return theta, info, it
