"""CountsLogisticBaseline: scikit-learn logistic regression on aggregated code counts (the comparison baseline)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from pathways.errors import PathwaysInputError
from pathways.models.params import check_counts, check_real
from pathways.models.recurrent.attribution import logistic_attributions
from pathways.models.base import full_batch_fit
from pathways.models.recurrent.base import OutcomeModelBase
from pathways.encode.outcomes import OutcomeData, as_outcome_data

__all__ = ["CountsLogisticBaseline"]


class CountsLogisticBaseline(OutcomeModelBase):
    """L2-penalised logistic regression on ``log1p`` code counts, whole history and recent windows.

    Features per code: the ``log1p`` of its count over the whole history and, for each ``w`` in ``windows_days``,
    over the bins of the last ``w`` days; then the standardised static covariates. Columns are scaled to unit
    variance (no centring, so the design stays sparse). One :class:`sklearn.linear_model.LogisticRegression` is fit
    per outcome label; only its coefficients are kept (``coef_``, ``intercept_``), so the model exports to a
    checkpoint without pickling.

    Parameters
    ----------
    windows_days : tuple of float
        Recent windows (in the log's time unit) counted besides the whole history; ``()`` for the whole history only.
    C : float
        Inverse L2 penalty strength (scikit-learn's ``C``).
    class_weight : None or "balanced"
        scikit-learn's ``class_weight``.
    max_iter : int
        L-BFGS iterations.
    threshold : float
        Probability cut-off of :meth:`predict`.

    Attributes
    ----------
    coef_ : ndarray (K, F)
        Coefficients on the scaled features, per outcome label.
    intercept_ : ndarray (K,)
    feature_names_ : list of str
        ``"<code>@all"``, ``"<code>@<w>d"`` then static names.
    feature_scale_ : ndarray (F,)
        Column scales applied before the regression.
    window_bins_ : list of int
        Each window in bins.
    n_iter_ : list of int

    Notes
    -----
    ``score`` is the mean Bernoulli log-likelihood per sample (see :mod:`pathways.models.recurrent.base`).
    """

    def __init__(
        self,
        windows_days: tuple[float, ...] = (),
        C: float = 1.0,
        class_weight: str | None = None,
        max_iter: int = 1000,
        threshold: float = 0.5,
    ) -> None:
        self.windows_days = windows_days
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.threshold = threshold

    def _raw_features(self, data: OutcomeData) -> sp.csr_matrix:
        """Unscaled features: log1p counts per window, then standardised static covariates."""
        blocks = [data.counts()] + [data.counts(last_bins=b) for b in self.window_bins_]
        feats = [sp.csr_matrix(b, dtype=np.float64) for b in blocks]
        for f in feats:
            f.data = np.log1p(f.data)
        if data.static is not None:
            feats.append(sp.csr_matrix((data.static - self.static_mean_) / self.static_scale_))
        return sp.hstack(feats, format="csr")

    @full_batch_fit
    def fit(self, data: Any, y: Any = None, *, validation: Any = None, static: Any = None) -> "CountsLogisticBaseline":
        """Fit one logistic regression per outcome label.

        Parameters
        ----------
        data : OutcomeData or SparseSeries
        y : array-like (n,) or (n, K), optional
        validation : ignored
            Accepted for a uniform ``fit`` face; the penalty ``C`` is the only regularisation.
        static : array-like (n, S), optional

        Returns
        -------
        self
        """
        check_real("C", self.C, lambda v: v > 0, "a number > 0")
        check_real("threshold", self.threshold, lambda v: 0 <= v <= 1, "a probability in [0, 1]")
        check_counts(self, ("max_iter",))
        train = as_outcome_data(data, y, static, require_y=True)
        self._learn_layout(train)
        windows = np.asarray(tuple(self.windows_days), dtype=np.float64)
        if windows.size and (~np.isfinite(windows) | (windows <= 0)).any():
            raise PathwaysInputError(f"windows_days: expected positive finite windows, got {tuple(self.windows_days)}")
        self.window_bins_ = [int(np.ceil(w / self.bin_width_ - 1e-9)) for w in windows]
        features = self._raw_features(train)
        sq_mean = np.asarray(features.multiply(features).mean(axis=0)).ravel()
        mean = np.asarray(features.mean(axis=0)).ravel()
        sd = np.sqrt(np.maximum(sq_mean - mean**2, 0.0))
        self.feature_scale_ = np.where(sd > 0, sd, 1.0)
        xs = features @ sp.diags(1.0 / self.feature_scale_)
        coefs, intercepts, n_iter = [], [], []
        for k in range(self.n_labels_):  # one regression per label (a handful), not per sample
            lr = LogisticRegression(C=float(self.C), class_weight=self.class_weight, max_iter=int(self.max_iter))
            lr.fit(xs, train.y[:, k].astype(np.int64))
            coefs.append(lr.coef_[0])
            intercepts.append(lr.intercept_[0])
            n_iter.append(int(lr.n_iter_[0]))
        self.coef_ = np.vstack(coefs)
        self.intercept_ = np.asarray(intercepts)
        self.n_iter_ = n_iter
        suffixes = ["all"] + [f"{w:g}d" for w in windows]
        self.feature_names_ = [f"{c}@{s}" for s in suffixes for c in self.codes_] + list(self.static_names_)
        return self

    def decision_function(self, X: Any, static: Any = None) -> np.ndarray:
        """Logits ``(n, K)``."""
        return self._logits(self._check_input(X, static=static))

    def _logits(self, data: OutcomeData) -> np.ndarray:
        xs = self._raw_features(data) @ sp.diags(1.0 / self.feature_scale_)
        return np.asarray(xs @ self.coef_.T) + self.intercept_

    def _positive_proba(self, data: OutcomeData) -> np.ndarray:
        z = self._logits(data)
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic

    def _attributions(self, data: OutcomeData, **kwargs: Any) -> pd.DataFrame:
        """The exact linear decomposition of the logit (one ``lag_days = NaN`` row per code and label)."""
        return logistic_attributions(self, data, **kwargs)
