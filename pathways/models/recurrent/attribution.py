"""Model-side attributions of the outcome models -> factors table (which past codes, how long before, drove
the predictions); each model's ``to_factors(data)`` uses its exact method here.

Three exact methods, one output shape (:func:`pathways.data.tables.factors_frame`):

* :func:`retain_attributions` -- RETAIN's exact decomposition of the logit into per-(bin, code) contributions
  ``alpha_j x_jk W (beta_j * W_emb[:, k])`` (Choi et al. 2016).
* :func:`integrated_gradients` -- integrated gradients (Sundararajan et al. 2017) of the logit with respect to the
  binned inputs, from an all-zero history (static covariates kept), for :class:`GRUOutcome` (or RETAIN). The path
  integral uses Gauss-Legendre nodes, all of them evaluated in one batched forward/backward pass; the completeness
  gap (how much of the logit change the attributions miss) is measured and reported.
* :func:`logistic_attributions` -- the exact linear decomposition of :class:`CountsLogisticBaseline`'s logit.

Reading the table
-----------------
For the two gradient/attention methods, ``effect`` is the mean contribution to the **logit** (log-odds) of the
``target`` outcome among the patients who have the code (in that bin for lag rows, anywhere in the history for the
``lag_days = NaN`` rows), with a normal 95% interval over those patients; ``lag_days`` is the midpoint of the bin,
counted back from the index date. Extra columns: ``n`` (patients with the code) and ``mean_abs`` (mean absolute
contribution).
"""
from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from pathways.errors import PathwaysInputError
from pathways.data.tables import factors_frame
from pathways.encode.outcomes import OutcomeData
from pathways.models.recurrent.modules import RETAINNet, reverse_padded

__all__ = ["integrated_gradients", "logistic_attributions", "retain_attributions"]

_LAGS = ("bins", "total", "both")
# integrated gradients evaluate n_steps copies of each batch at once: cap that tensor at ~16 M floats (64 MB)
_IG_ELEMENTS = 2**24


# ----------------------------------------------------------------------------------------------------------------
# accumulation of per-(sample, lag, code, label) contributions into per-(lag, code, label) summaries
# ----------------------------------------------------------------------------------------------------------------
class _Summary:
    """Running sums for means and normal intervals, without keeping per-sample arrays."""

    def __init__(self, n_lags: int, n_codes: int, n_labels: int) -> None:
        self.lag_sum = torch.zeros(n_lags, n_codes, n_labels, dtype=torch.float64)
        self.lag_sq = torch.zeros_like(self.lag_sum)
        self.lag_abs = torch.zeros_like(self.lag_sum)
        self.lag_n = torch.zeros(n_lags, n_codes, dtype=torch.float64)
        self.tot_sum = torch.zeros(n_codes, n_labels, dtype=torch.float64)
        self.tot_sq = torch.zeros_like(self.tot_sum)
        self.tot_abs = torch.zeros_like(self.tot_sum)
        self.tot_n = torch.zeros(n_codes, dtype=torch.float64)

    def add(self, contrib: torch.Tensor, x_lag: torch.Tensor) -> None:
        """``contrib`` (B, L, C, K) and inputs ``x_lag`` (B, L, C), both in lag order (0 = most recent bin)."""
        c = contrib.detach().to("cpu", torch.float64)
        present = (x_lag.detach().to("cpu") > 0).to(torch.float64)
        lags = c.shape[1]
        self.lag_sum[:lags] += c.sum(0)
        self.lag_sq[:lags] += (c * c).sum(0)
        self.lag_abs[:lags] += c.abs().sum(0)
        self.lag_n[:lags] += present.sum(0)
        total = c.sum(1)  # (B, C, K): whole-history contribution of each code for each patient
        self.tot_sum += total.sum(0)
        self.tot_sq += (total * total).sum(0)
        self.tot_abs += total.abs().sum(0)
        self.tot_n += (present.sum(1) > 0).to(torch.float64).sum(0)

    def frame(self, codes: Sequence[str], labels: Sequence[str], bin_width: float, method: str, lags: str,
              z: float) -> pd.DataFrame:
        parts = []
        if lags in ("bins", "both"):
            n_lags, n_codes, n_labels = self.lag_sum.shape
            lag_days = (np.arange(n_lags) + 0.5) * bin_width
            grid = np.meshgrid(np.arange(n_lags), np.arange(n_codes), np.arange(n_labels), indexing="ij")
            parts.append(self._rows(self.lag_sum, self.lag_sq, self.lag_abs,
                                    self.lag_n[..., None].expand_as(self.lag_sum), grid[1], grid[2],
                                    lag_days[grid[0]]))
        if lags in ("total", "both"):
            n_codes, n_labels = self.tot_sum.shape
            grid = np.meshgrid(np.arange(n_codes), np.arange(n_labels), indexing="ij")
            parts.append(self._rows(self.tot_sum, self.tot_sq, self.tot_abs,
                                    self.tot_n[:, None].expand_as(self.tot_sum), grid[0], grid[1],
                                    np.full(grid[0].shape, np.nan)))
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        se = cols["sd"] / np.sqrt(np.maximum(cols["n"], 1))
        se = np.where(cols["n"] >= 2, se, np.nan)
        out = factors_frame(
            np.asarray(codes, dtype=object)[cols["code"]], np.asarray(labels, dtype=object)[cols["label"]],
            cols["effect"], method=method, lag_days=cols["lag"], ci_low=cols["effect"] - z * se,
            ci_high=cols["effect"] + z * se, n=cols["n"].astype(np.int64), mean_abs=cols["mean_abs"],
        )
        return out.sort_values(["target", "lag_days", "effect"], ascending=[True, True, False],
                               na_position="first", key=_abs_key).reset_index(drop=True)

    @staticmethod
    def _rows(s: torch.Tensor, sq: torch.Tensor, ab: torch.Tensor, n: torch.Tensor, code: np.ndarray,
              label: np.ndarray, lag: np.ndarray) -> dict[str, np.ndarray]:
        s, sq, ab, n = (t.numpy().ravel() for t in (s, sq, ab, n))
        keep = n > 0  # codes never seen at that lag carry no attribution
        m = np.divide(s, n, out=np.zeros_like(s), where=keep)
        var = np.divide(sq - n * m * m, n - 1, out=np.full_like(s, np.nan), where=n > 1)
        return {"code": code.ravel()[keep], "label": label.ravel()[keep], "lag": lag.ravel()[keep],
                "effect": m[keep], "sd": np.sqrt(np.maximum(var[keep], 0.0)), "n": n[keep],
                "mean_abs": np.divide(ab, n, out=np.zeros_like(ab), where=keep)[keep]}


def _abs_key(col: pd.Series) -> pd.Series:
    """Sort effects by decreasing magnitude (other columns as they are)."""
    return col.abs() if col.name == "effect" else col


def _check_common(model: Any, lags: str, batch_size: int) -> None:
    if lags not in _LAGS:
        raise PathwaysInputError(f"lags: expected one of {_LAGS}, got {lags!r}")
    if int(batch_size) < 1:
        raise PathwaysInputError(f"batch_size: expected a positive integer, got {batch_size!r}")
    if not hasattr(model, "module_"):
        raise PathwaysInputError(f"model: expected a fitted GRUOutcome or RETAIN, got {type(model).__name__}")


def _n_lags(model: Any, data: OutcomeData) -> int:
    lengths = np.maximum(data.lengths, 1)
    if getattr(model, "max_bins", None) is not None:
        lengths = np.minimum(lengths, int(model.max_bins))
    return int(lengths.max())


# ----------------------------------------------------------------------------------------------------------------
# RETAIN
# ----------------------------------------------------------------------------------------------------------------
def retain_attributions(
    model: Any, X: Any, static: Any = None, *, lags: str = "both", batch_size: int = 128, z: float = 1.96,
) -> pd.DataFrame:
    """Factors table from a fitted RETAIN's exact logit contributions.

    Parameters
    ----------
    model : RETAIN
        Fitted model.
    X : OutcomeData or SparseSeries
        Histories to explain (typically a test set).
    static : array-like, optional
        Static covariates when ``X`` does not carry them.
    lags : {"both", "bins", "total"}
        Rows per (code, lag bin), per code over the whole history (``lag_days`` NaN), or both.
    batch_size : int
    z : float
        Normal quantile of the intervals.

    Returns
    -------
    DataFrame
        Factors table, ``method="retain"`` (see the module docstring for the columns).
    """
    _check_common(model, lags, batch_size)
    if not isinstance(model.module_, RETAINNet):
        raise PathwaysInputError(f"model: retain_attributions needs a fitted RETAIN, got {type(model).__name__}")
    data = model._check_input(X, static=static)
    summary = _Summary(_n_lags(model, data), model.n_codes_, model.n_labels_)
    model.module_.eval()
    with torch.no_grad():
        for batch in model._iterate_eval(data, batch_size):
            omega, x_rev = model.module_.contributions(batch["x"], batch["lengths"])
            summary.add(omega, x_rev)
    return summary.frame(model.codes_, model.labels_, model.bin_width_, "retain", lags, z)


# ----------------------------------------------------------------------------------------------------------------
# integrated gradients
# ----------------------------------------------------------------------------------------------------------------
def _ig_batch(module: torch.nn.Module, batch: dict[str, torch.Tensor], n_steps: int) -> torch.Tensor:
    """Integrated gradients (B, L, C, K) of every logit w.r.t. the inputs, zero-history baseline."""
    x, lengths, static = batch["x"], batch["lengths"], batch.get("static")
    nodes, weights = np.polynomial.legendre.leggauss(int(n_steps))
    alphas = torch.as_tensor((nodes + 1.0) / 2.0, dtype=x.dtype, device=x.device)
    w = torch.as_tensor(weights / 2.0, dtype=x.dtype, device=x.device)
    steps = alphas.shape[0]
    path = (alphas[:, None, None, None] * x[None]).reshape(steps * x.shape[0], *x.shape[1:])
    path.requires_grad_(True)
    st = None if static is None else static.repeat(steps, 1)
    logits = module.logits(path, lengths.repeat(steps), st)
    out = []
    for k in range(logits.shape[1]):  # one backward pass per outcome label (a handful)
        (grad,) = torch.autograd.grad(logits[:, k].sum(), path, retain_graph=k + 1 < logits.shape[1])
        avg = (w[:, None, None, None] * grad.view(steps, *x.shape)).sum(0)
        out.append(x * avg)
    return torch.stack(out, dim=-1)


def _ig_batch_size(model: Any, data: OutcomeData, n_steps: int, batch_size: int) -> int:
    """Largest batch (up to ``batch_size``) whose ``n_steps`` path copies stay under ``_IG_ELEMENTS`` floats."""
    per_sample = int(n_steps) * _n_lags(model, data) * model.n_codes_
    return max(1, min(int(batch_size), _IG_ELEMENTS // max(per_sample, 1)))


def _logit_change(module: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``logit(x) - logit(empty history)`` (B, K): what integrated gradients must add up to."""
    with torch.no_grad():
        full = module.logits(batch["x"], batch["lengths"], batch.get("static"))
        empty = module.logits(torch.zeros_like(batch["x"]), batch["lengths"], batch.get("static"))
    return full - empty


def integrated_gradients(
    model: Any, X: Any, static: Any = None, *, n_steps: int = 32, lags: str = "both", batch_size: int = 64,
    z: float = 1.96, max_gap: float = 0.05,
) -> pd.DataFrame:
    """Factors table from integrated gradients of a fitted GRUOutcome (or RETAIN).

    Attributions are on the model's input scale (``log1p`` counts by default) with an all-zero history as baseline;
    per patient they sum, over bins and codes, to ``logit(x) - logit(empty history)`` up to the quadrature error of
    the ``n_steps``-point Gauss-Legendre rule. That error is measured on every batch: the returned frame's
    ``attrs["completeness_gap"]`` is ``sum |sum(attributions) - logit change| / sum |logit change|``, and a
    ``UserWarning`` asks for more ``n_steps`` when it exceeds ``max_gap`` (sharp, saturated networks need more).

    Parameters
    ----------
    model : GRUOutcome or RETAIN
    X : OutcomeData or SparseSeries
    static : array-like, optional
    n_steps : int
        Quadrature nodes along the path (all evaluated in one batched pass).
    lags, z : as in :func:`retain_attributions`.
    batch_size : int
        Samples per pass, lowered automatically so that the ``n_steps`` copies hold at most 2**24 floats.
    max_gap : float
        Relative completeness gap above which a warning is issued.

    Returns
    -------
    DataFrame
        Factors table, ``method="integrated_gradients"``.
    """
    _check_common(model, lags, batch_size)
    if int(n_steps) < 1:
        raise PathwaysInputError(f"n_steps: expected a positive integer, got {n_steps!r}")
    data = model._check_input(X, static=static)
    summary = _Summary(_n_lags(model, data), model.n_codes_, model.n_labels_)
    module = model.module_.eval()
    gap, scale = 0.0, 0.0
    # cuDNN's RNN backward refuses eval mode; the native kernels give the same gradients
    with torch.backends.cudnn.flags(enabled=False):
        for batch in model._iterate_eval(data, _ig_batch_size(model, data, n_steps, batch_size)):
            attr = _ig_batch(module, batch, n_steps)
            delta = _logit_change(module, batch)
            gap += float((attr.sum(dim=(1, 2)) - delta).abs().sum())
            scale += float(delta.abs().sum())
            summary.add(reverse_padded(attr, batch["lengths"]), reverse_padded(batch["x"], batch["lengths"]))
    ratio = gap / scale if scale > 0 else 0.0
    if ratio > max_gap:
        warnings.warn(
            f"integrated_gradients: attributions miss {ratio:.1%} of the logit change with n_steps={n_steps}; "
            "raise n_steps for exact completeness", UserWarning, stacklevel=2,
        )
    frame = summary.frame(model.codes_, model.labels_, model.bin_width_, "integrated_gradients", lags, z)
    frame.attrs["completeness_gap"] = ratio
    return frame


def _ig_completeness(model: Any, X: Any, static: Any = None, *, n_steps: int = 32,
                     batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample sum of integrated gradients (n, K) and ``logit(x) - logit(empty history)`` (n, K).

    The two agree up to quadrature error (the completeness axiom); used to check the implementation.
    """
    data = model._check_input(X, static=static)
    module = model.module_.eval()
    total = np.zeros((len(data), model.n_labels_))
    delta = np.zeros((len(data), model.n_labels_))
    with torch.backends.cudnn.flags(enabled=False):
        for batch in model._iterate_eval(data, _ig_batch_size(model, data, n_steps, batch_size)):
            idx = batch["index"].numpy()
            total[idx] = _ig_batch(module, batch, n_steps).sum(dim=(1, 2)).detach().cpu().numpy()
            delta[idx] = _logit_change(module, batch).cpu().numpy()
    return total, delta


def logistic_attributions(model: Any, X: Any, static: Any = None, *, z: float = 1.96) -> pd.DataFrame:
    """Factors table from a fitted CountsLogisticBaseline's exact linear decomposition of the logit.

    A code's contribution for a patient is the sum over its count features (whole history and recent windows) of
    ``coef * feature``; ``effect`` is its mean over patients who have the code (``lag_days`` NaN), as for RETAIN.
    """
    if not hasattr(model, "coef_") or not hasattr(model, "feature_scale_"):
        raise PathwaysInputError(f"model: expected a fitted CountsLogisticBaseline, got {type(model).__name__}")
    data = model._check_input(X, static=static)
    feats = model._raw_features(data) @ sp.diags(1.0 / model.feature_scale_)
    n_codes = model.n_codes_
    n_blocks = 1 + len(model.window_bins_)
    # (F_codes, C) matrix summing each code's window features
    fold = sp.csr_matrix((np.ones(n_blocks * n_codes), (np.arange(n_blocks * n_codes),
                                                         np.tile(np.arange(n_codes), n_blocks))))
    code_feats = feats[:, : n_blocks * n_codes]
    present = np.asarray((data.counts() > 0).sum(axis=0)).ravel().astype(np.float64)
    summary = _Summary(1, n_codes, model.n_labels_)
    for k in range(model.n_labels_):  # loop over outcome labels
        contrib = (code_feats @ sp.diags(model.coef_[k, : n_blocks * n_codes]) @ fold).tocsc()
        summary.tot_sum[:, k] = torch.from_numpy(np.asarray(contrib.sum(axis=0)).ravel())
        summary.tot_sq[:, k] = torch.from_numpy(np.asarray(contrib.multiply(contrib).sum(axis=0)).ravel())
        summary.tot_abs[:, k] = torch.from_numpy(np.asarray(abs(contrib).sum(axis=0)).ravel())
    summary.tot_n = torch.from_numpy(present)
    return summary.frame(model.codes_, model.labels_, model.bin_width_, "logistic", "total", z)
