"""The model face shared by :class:`~pathways.models.sccs.SCCS` and :class:`~pathways.models.sccs.ConvSCCS`.

Both are fitted by maximising the SCCS conditional log-likelihood: given its number of outcomes, a case's outcomes
follow a multinomial law over its observed buckets (the case-specific baseline cancels). ``score_samples`` is that
log-likelihood per case, ``score`` its sum divided by the number of outcomes (per case-outcome), and
``log_likelihood`` (from :class:`~pathways.models.base.PathwaysEstimator`) its sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from pathways.encode.sccs import SCCSData
from pathways.errors import PathwaysInputError
from pathways.models.base import PathwaysEstimator
from pathways.models.sccs.design import as_sccs_data

__all__ = ["SCCSEstimator"]


class SCCSEstimator(PathwaysEstimator):
    """Base of the SCCS models: checks scoring data against the fit and scores it per case and per case-outcome.

    Subclasses implement ``_case_scores(data)``, the conditional log-likelihood of every case of checked
    :class:`~pathways.encode.sccs.SCCSData` under the fitted coefficients.
    """

    input_kind: ClassVar[str] = "sccs"

    def score_samples(self, data: Any, *, labels: Sequence[Any] | None = None, censoring: Any | None = None,
                      **encode_kwargs: Any) -> np.ndarray:
        """Conditional log-likelihood of every case (0 for a case without outcome).

        Parameters
        ----------
        data : SCCSData, tick's list of per-case feature matrices (with ``labels``, ``censoring``) or an EventLog
            (with ``exposures``, ``outcome``, ``bucket_size`` and other :func:`~pathways.encode.sccs.sccs_data`
            arguments), carrying the features the model was fitted on.

        Returns
        -------
        ndarray of float64, shape (n_cases,)
        """
        return self._case_scores(self._scoring_data(data, labels, censoring, **encode_kwargs))

    def score(self, data: Any, *, labels: Sequence[Any] | None = None, censoring: Any | None = None,
              **encode_kwargs: Any) -> float:
        """Mean conditional log-likelihood per case-outcome (higher is better); inputs as :meth:`score_samples`."""
        sccs = self._scoring_data(data, labels, censoring, **encode_kwargs)
        total = float(sccs.outcomes_per_case().sum())
        if total <= 0:
            raise PathwaysInputError("data has no outcome: the conditional likelihood is undefined")
        return float(self._case_scores(sccs).sum()) / total

    def _scoring_data(self, data: Any, labels: Sequence[Any] | None, censoring: Any | None,
                      **encode_kwargs: Any) -> SCCSData:
        """SCCS data to score with the fitted model, checked to carry the features it was fitted on."""
        self.check_fitted()
        sccs = as_sccs_data(data, labels, censoring, **encode_kwargs)
        if sccs.n_features != self.feature_names_.size:
            raise PathwaysInputError(f"data has {sccs.n_features} features, the model was fitted on "
                                     f"{self.feature_names_.size}")
        return sccs
