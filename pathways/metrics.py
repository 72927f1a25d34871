"""Evaluation metrics for point processes and outcome models (vectorised numpy).

Two families live here:

* **Next-event metrics** for temporal point processes: log-likelihood per event, next-time RMSE / MAE, next-type
  accuracy, top-k accuracy and macro-F1.
* **Outcome metrics** for binary or multi-label risk models: AUROC, AUPRC (average precision), Brier score, expected
  calibration error and the mean Bernoulli log-likelihood per sample (the ``score`` of the outcome models).

Conventions
-----------
``y_true`` for outcome metrics is ``(n,)`` (binary) or ``(n, K)`` (multi-label) with values in {0, 1}. ``y_score`` /
``y_prob`` is ``(n,)``, ``(n, K)``, or, for a binary ``y_true``, the ``(n, 2)`` array returned by scikit-learn style
``predict_proba`` (its second column is used). Multi-label results are macro averages over labels unless
``average=None``, which returns one value per label. scikit-learn is the reference implementation: the tests check
every metric against it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.stats import rankdata

from pathways.errors import PathwaysInputError

__all__ = [
    "loglik_per_event",
    "next_time_rmse",
    "next_time_mae",
    "next_type_accuracy",
    "top_k_accuracy",
    "macro_f1",
    "auroc",
    "auprc",
    "brier_score",
    "expected_calibration_error",
    "mean_log_likelihood",
    "outcome_metrics",
    "next_event_metrics",
]

Average = Literal["macro"] | None


# ----------------------------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------------------------
def _first_bad(mask: np.ndarray) -> int:
    """Position (flat) of the first True entry of ``mask``."""
    return int(np.flatnonzero(mask.ravel())[0])


def _finite(name: str, a: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(a)
    if bad.any():
        pos = _first_bad(bad)
        raise PathwaysInputError(
            f"{name}: {int(bad.sum())} non-finite value(s); first at flat position {pos} (value {a.ravel()[pos]!r})"
        )
    return a


def _same_length(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    if a.shape[0] != b.shape[0]:
        raise PathwaysInputError(
            f"{name_a} has {a.shape[0]} rows but {name_b} has {b.shape[0]}; they must describe the same samples"
        )
    if a.shape[0] == 0:
        raise PathwaysInputError(f"{name_a}: 0 samples given; metrics need at least one")


def _binary_labels(name: str, y: np.ndarray) -> np.ndarray:
    y = _finite(name, np.asarray(y, dtype=np.float64))
    bad = (y != 0) & (y != 1)
    if bad.any():
        pos = _first_bad(bad)
        raise PathwaysInputError(
            f"{name}: {int(bad.sum())} value(s) outside {{0, 1}}; first at flat position {pos} "
            f"(value {y.ravel()[pos]!r})"
        )
    return y


def _as_label_matrix(
    y_true: np.ndarray, y_score: np.ndarray, *, probabilities: bool, score_name: str = "y_score"
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(Y, S)`` as float64 ``(n, K)`` matrices after checking shapes and values."""
    y = _binary_labels("y_true", np.asarray(y_true))
    s = _finite(score_name, np.asarray(y_score, dtype=np.float64))
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim == 2 and y.shape[1] == 1 and s.ndim == 2 and s.shape[1] == 2:
        s = s[:, 1:]  # scikit-learn predict_proba of a binary target: P(y = 1) is the second column
    if s.ndim == 1:
        s = s[:, None]
    if y.ndim != 2 or s.ndim != 2:
        raise PathwaysInputError(f"y_true and {score_name} must be 1-D or 2-D; got shapes {y.shape} and {s.shape}")
    _same_length("y_true", y, score_name, s)
    if y.shape[1] != s.shape[1]:
        raise PathwaysInputError(
            f"y_true has {y.shape[1]} label column(s) but {score_name} has {s.shape[1]}; example shapes "
            f"{y.shape} vs {s.shape}"
        )
    if probabilities:
        bad = (s < 0) | (s > 1)
        if bad.any():
            pos = _first_bad(bad)
            raise PathwaysInputError(
                f"{score_name}: {int(bad.sum())} probability value(s) outside [0, 1]; first at flat position {pos} "
                f"(value {s.ravel()[pos]!r})"
            )
    return y, s


def _reduce(values: np.ndarray, average: Average, name: str) -> float | np.ndarray:
    """Macro-average per-label values, ignoring labels where the metric is undefined (NaN)."""
    if average is None:
        return values
    if average != "macro":
        raise PathwaysInputError(f"average: expected 'macro' or None, got {average!r}")
    if np.isnan(values).all():
        raise PathwaysInputError(
            f"{name} is undefined for all {values.size} label(s): each needs both positive and negative samples"
        )
    if values.size == 1:
        return float(values[0])
    return float(np.nanmean(values))


# ----------------------------------------------------------------------------------------------------------------
# next-event metrics (point processes)
# ----------------------------------------------------------------------------------------------------------------
def loglik_per_event(loglik: np.ndarray | float, n_events: np.ndarray | int) -> float:
    """Pool log-likelihoods into nats per event.

    Parameters
    ----------
    loglik : array-like or float
        Total log-likelihood of each sequence (or one total).
    n_events : array-like or int
        Number of events of each sequence (or one total), same shape as ``loglik``.

    Returns
    -------
    float
        ``sum(loglik) / sum(n_events)``: sequences weigh by their number of events, the convention of
        ``score`` for every point-process model.
    """
    ll = _finite("loglik", np.atleast_1d(np.asarray(loglik, dtype=np.float64)))
    n = _finite("n_events", np.atleast_1d(np.asarray(n_events, dtype=np.float64)))
    if ll.shape != n.shape:
        raise PathwaysInputError(f"loglik has shape {ll.shape} but n_events has shape {n.shape}")
    if (n < 0).any():
        raise PathwaysInputError(f"n_events: {int((n < 0).sum())} negative count(s); example {n[n < 0][0]!r}")
    total = n.sum()
    if total <= 0:
        raise PathwaysInputError("n_events: total number of events is 0; log-likelihood per event is undefined")
    return float(ll.sum() / total)


def _time_pair(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    t = _finite("y_true", np.asarray(y_true, dtype=np.float64).ravel())
    p = _finite("y_pred", np.asarray(y_pred, dtype=np.float64).ravel())
    _same_length("y_true", t, "y_pred", p)
    return p - t


def next_time_rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error of predicted next-event times (or gaps), in the log's time unit."""
    err = _time_pair(y_true, y_pred)
    return float(np.sqrt(np.mean(err * err)))


def next_time_mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error of predicted next-event times (or gaps), in the log's time unit."""
    return float(np.mean(np.abs(_time_pair(y_true, y_pred))))


def _class_labels(name: str, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise PathwaysInputError(f"{name}: expected a 1-D array of class indices, got shape {y.shape}")
    yf = _finite(name, y.astype(np.float64))
    bad = (yf < 0) | (yf != np.round(yf))
    if bad.any():
        pos = _first_bad(bad)
        raise PathwaysInputError(
            f"{name}: {int(bad.sum())} value(s) are not non-negative integers; first at position {pos} "
            f"(value {y[pos]!r})"
        )
    return yf.astype(np.int64)


def next_type_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of next-event types predicted exactly.

    ``y_pred`` is either class indices ``(n,)`` or scores ``(n, K)`` (their arg-max is the prediction).
    """
    yt = _class_labels("y_true", y_true)
    yp = np.asarray(y_pred)
    if yp.ndim == 2:
        _finite("y_pred", yp.astype(np.float64))
        yp = yp.argmax(axis=1)
    yp = _class_labels("y_pred", yp)
    _same_length("y_true", yt, "y_pred", yp)
    return float(np.mean(yt == yp))


def top_k_accuracy(y_true: np.ndarray, y_score: np.ndarray, k: int = 3) -> float:
    """Fraction of samples whose true type is among the ``k`` highest scores of ``y_score`` (``(n, K)``).

    A true type tied with others at the k-th place counts as a hit.
    """
    yt = _class_labels("y_true", y_true)
    s = _finite("y_score", np.asarray(y_score, dtype=np.float64))
    if s.ndim != 2:
        raise PathwaysInputError(f"y_score: expected shape (n, n_types), got {s.shape}")
    _same_length("y_true", yt, "y_score", s)
    n_types = s.shape[1]
    if not 1 <= int(k) <= n_types:
        raise PathwaysInputError(f"k: expected 1 <= k <= {n_types} (number of types), got {k!r}")
    if (yt >= n_types).any():
        bad = yt >= n_types
        raise PathwaysInputError(
            f"y_true: {int(bad.sum())} class index(es) >= n_types={n_types}; example {int(yt[bad][0])}"
        )
    # Rank of the true class = number of classes with a strictly larger score: ties count in its favour
    # (scikit-learn breaks ties by class index instead; both agree without ties).
    true_score = s[np.arange(s.shape[0]), yt]
    rank = (s > true_score[:, None]).sum(axis=1)
    return float(np.mean(rank < k))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None = None) -> float:
    """Unweighted mean of per-class F1 scores.

    Parameters
    ----------
    y_true, y_pred : ndarray of int, shape (n,)
        True and predicted class indices (``y_pred`` may be ``(n, K)`` scores; their arg-max is used).
    n_classes : int, optional
        When given, all classes ``0..n_classes-1`` are averaged (absent ones count F1 = 0, as scikit-learn with
        ``labels=range(n_classes)``); otherwise the classes present in ``y_true`` or ``y_pred``.
    """
    yt = _class_labels("y_true", y_true)
    yp = np.asarray(y_pred)
    if yp.ndim == 2:
        yp = _finite("y_pred", yp.astype(np.float64)).argmax(axis=1)
    yp = _class_labels("y_pred", yp)
    _same_length("y_true", yt, "y_pred", yp)
    size = int(max(yt.max(), yp.max())) + 1 if n_classes is None else int(n_classes)
    if n_classes is not None and (yt.max() >= size or yp.max() >= size):
        raise PathwaysInputError(f"n_classes={size} but labels go up to {int(max(yt.max(), yp.max()))}")
    tp = np.bincount(yt[yt == yp], minlength=size).astype(np.float64)
    support = np.bincount(yt, minlength=size).astype(np.float64)
    predicted = np.bincount(yp, minlength=size).astype(np.float64)
    denom = support + predicted  # = 2 tp + fp + fn
    f1 = np.divide(2.0 * tp, denom, out=np.zeros(size), where=denom > 0)
    keep = np.ones(size, dtype=bool) if n_classes is not None else denom > 0
    return float(f1[keep].mean())


# ----------------------------------------------------------------------------------------------------------------
# outcome metrics (binary / multi-label risk models)
# ----------------------------------------------------------------------------------------------------------------
def auroc(y_true: np.ndarray, y_score: np.ndarray, average: Average = "macro") -> float | np.ndarray:
    """Area under the ROC curve (Mann-Whitney U statistic with mid-ranks for ties).

    Labels with only one class are undefined (NaN when ``average=None``) and left out of the macro average.
    """
    y, s = _as_label_matrix(y_true, y_score, probabilities=False)
    ranks = rankdata(s, axis=0, method="average")
    n_pos = y.sum(axis=0)
    n_neg = y.shape[0] - n_pos
    u = (ranks * y).sum(axis=0) - n_pos * (n_pos + 1) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)
    return _reduce(auc, average, "AUROC")


def _average_precision_1d(y: np.ndarray, s: np.ndarray) -> float:
    """Average precision of one label: sum over distinct thresholds of (R_i - R_{i-1}) P_i (no interpolation)."""
    n_pos = y.sum()
    if n_pos == 0:
        return np.nan
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # last position of each block of tied scores: thresholds are distinct score values
    last = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), s_sorted.size - 1]
    tps = np.cumsum(y_sorted)[last]
    precision = tps / (last + 1.0)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def auprc(y_true: np.ndarray, y_score: np.ndarray, average: Average = "macro") -> float | np.ndarray:
    """Area under the precision-recall curve as average precision (scikit-learn's ``average_precision_score``).

    Labels without positives are undefined (NaN when ``average=None``) and left out of the macro average.
    """
    y, s = _as_label_matrix(y_true, y_score, probabilities=False)
    values = np.array([_average_precision_1d(y[:, k], s[:, k]) for k in range(y.shape[1])])  # loop over labels only
    return _reduce(values, average, "AUPRC")


def brier_score(y_true: np.ndarray, y_prob: np.ndarray, average: Average = "macro") -> float | np.ndarray:
    """Mean squared difference between predicted probabilities and outcomes (lower is better)."""
    y, p = _as_label_matrix(y_true, y_prob, probabilities=True, score_name="y_prob")
    return _reduce(np.mean((p - y) ** 2, axis=0), average, "Brier score")


def expected_calibration_error(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    n_bins: int = 10,
    strategy: Literal["uniform", "quantile"] = "uniform",
    average: Average = "macro",
) -> float | np.ndarray:
    """Expected calibration error: ``sum_b (n_b / n) |mean(y_b) - mean(p_b)|`` over probability bins.

    Parameters
    ----------
    n_bins : int
        Number of bins.
    strategy : {"uniform", "quantile"}
        Equal-width bins on [0, 1] (as ``sklearn.calibration.calibration_curve``) or bins with equal counts.
    """
    y, p = _as_label_matrix(y_true, y_prob, probabilities=True, score_name="y_prob")
    if int(n_bins) < 1:
        raise PathwaysInputError(f"n_bins: expected a positive integer, got {n_bins!r}")
    n, n_labels = p.shape
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
        bins = np.searchsorted(edges[1:-1], p, side="left")  # right-closed bins, as calibration_curve
    elif strategy == "quantile":
        q = np.quantile(p, np.linspace(0.0, 1.0, int(n_bins) + 1)[1:-1], axis=0)  # (n_bins - 1, K)
        bins = np.stack([np.searchsorted(q[:, k], p[:, k], side="right") for k in range(n_labels)], axis=1)
    else:
        raise PathwaysInputError(f"strategy: expected 'uniform' or 'quantile', got {strategy!r}")
    # one flat bincount over (label, bin) cells
    cell = (np.arange(n_labels)[None, :] * n_bins + bins).ravel()
    size = n_labels * int(n_bins)
    gap = np.abs(np.bincount(cell, weights=y.ravel(), minlength=size) - np.bincount(cell, p.ravel(), minlength=size))
    ece = gap.reshape(n_labels, n_bins).sum(axis=1) / n  # sum_b |sum y - sum p| / n = sum_b n_b/n |mean gap|
    return _reduce(ece, average, "ECE")


def mean_log_likelihood(y_true: np.ndarray, y_prob: np.ndarray, eps: float = 1e-12) -> float:
    """Mean Bernoulli log-likelihood per sample, summed over labels (higher is better).

    For a binary outcome this is minus scikit-learn's ``log_loss``; for ``K`` labels it is the mean over samples of
    ``sum_k [y_k log p_k + (1 - y_k) log(1 - p_k)]``. Probabilities are clipped to ``[eps, 1 - eps]``.
    This is the ``score`` of :class:`pathways.models.recurrent.GRUOutcome`, ``RETAIN`` and
    ``CountsLogisticBaseline``.
    """
    return float(sample_log_likelihood(y_true, y_prob, eps).mean())


def sample_log_likelihood(y_true: np.ndarray, y_prob: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Bernoulli log-likelihood of each sample, summed over labels (float64, one value per sample).

    Probabilities are clipped to ``[eps, 1 - eps]``; :func:`mean_log_likelihood` is the mean of these values.
    """
    y, p = _as_label_matrix(y_true, y_prob, probabilities=True, score_name="y_prob")
    p = np.clip(p, eps, 1.0 - eps)
    return (y * np.log(p) + (1.0 - y) * np.log1p(-p)).sum(axis=1)


def outcome_metrics(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int = 10) -> dict[str, float]:
    """All outcome metrics at once (macro averages over labels).

    Returns
    -------
    dict
        ``auroc``, ``auprc``, ``brier``, ``ece``, ``log_likelihood`` (mean per sample), ``prevalence`` and ``n``.
        ``auroc``/``auprc`` are NaN when no label has both classes.
    """
    y, p = _as_label_matrix(y_true, y_prob, probabilities=True, score_name="y_prob")
    out: dict[str, float] = {}
    for name, fn in (("auroc", auroc), ("auprc", auprc)):
        try:
            out[name] = float(fn(y, p))
        except PathwaysInputError:
            out[name] = float("nan")
    out["brier"] = float(brier_score(y, p))
    out["ece"] = float(expected_calibration_error(y, p, n_bins=n_bins))
    out["log_likelihood"] = mean_log_likelihood(y, p)
    out["prevalence"] = float(y.mean())
    out["n"] = float(y.shape[0])
    return out


def next_event_metrics(
    time_true: np.ndarray,
    time_pred: np.ndarray,
    type_true: np.ndarray,
    type_score: np.ndarray,
    k: int = 3,
) -> dict[str, float]:
    """Next-event prediction metrics at once.

    Returns
    -------
    dict
        ``rmse``, ``mae`` (times), ``accuracy``, ``top_k`` (``k`` capped at the number of types) and ``macro_f1``.
    """
    scores = np.asarray(type_score, dtype=np.float64)
    return {
        "rmse": next_time_rmse(time_true, time_pred),
        "mae": next_time_mae(time_true, time_pred),
        "accuracy": next_type_accuracy(type_true, scores),
        "top_k": top_k_accuracy(type_true, scores, k=min(int(k), scores.shape[1])),
        "macro_f1": macro_f1(type_true, scores, n_classes=scores.shape[1]),
    }
