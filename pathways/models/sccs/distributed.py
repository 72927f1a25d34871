"""SCCS and ConvSCCS fits that span processes: each rank holds its own cases, the objective is summed over ranks.

The SCCS objectives are sums over cases of the conditional log-likelihood, plus a penalty on the coefficients.

*ConvSCCS* (weighted by 1 / number of cases with an outcome): in a sharded fit each rank builds the lagged design of
its own cases; the case-weight total, the diagonal preconditioner and, at every FISTA evaluation, the loss and
gradient are summed over the ranks (:class:`~pathways.training.distributed.Reducer`), so every rank runs the same
FISTA path as one process over all cases and ends with the same coefficients.

*Classic SCCS* (:class:`~pathways.models.sccs.SCCS`): the separation tests (counts of informative cases), the
outcomes per window and, inside every Newton step, the packed (log-likelihood, gradient, information) are summed
over the ranks (one all-reduce per evaluation), so every rank takes the same damped steps; the profile-likelihood
intervals run the same batched search on the summed profile objective. Estimates, intervals, p-values and status
equal the one-process fit's.

*Work split* (:func:`fit_split`): every rank holds all the cases, and the ConvSCCS cross-validation folds (each
fold's warm-started walk over the penalty grid) and bootstrap replicate batches are spread over the ranks; the
scores, fold coefficients and replicates are gathered by an all-reduce of zero-filled arrays. Folds and replicate
draws come from ``seed`` alone, so the selected penalties and intervals are those of one process, whatever the number
of ranks.

Examples
--------
>>> from pathways.synthetic.sccs import simulate_sccs
>>> from pathways.models.sccs import SCCS, ConvSCCS
>>> data = simulate_sccs(200, 20, np.zeros((1, 4)), seed=0)
>>> model = fit_sharded(ConvSCCS(n_lags=3, C_tv=100.0), data)   # one process: the plain fit
>>> model.coef_.shape
(4,)
>>> fit_sharded(SCCS(risk_windows=[[0, 3]]), data).coef_.shape
(1,)
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from pathways.encode.sccs import SCCSData
from pathways.errors import PathwaysInputError
from pathways.models.sccs.classic import SCCS
from pathways.models.sccs.convsccs import ConvSCCS, _normalise
from pathways.models.sccs.design import lag_design
from pathways.models.sccs.solver import batched_loss, penalty_value
from pathways.training.distributed import Reducer, sharded_fit

__all__ = ["fit_sharded", "fit_split", "objective"]


def fit_sharded(model: ConvSCCS | SCCS, shard: SCCSData, reducer: Reducer | None = None) -> ConvSCCS | SCCS:
    """Fit ``model`` on this rank's cases with the objective summed over the ranks of ``reducer``'s group.

    Parameters
    ----------
    model : ConvSCCS (penalised or not, without bootstrap: replicates resample cases across every rank) or classic
        SCCS (without ``event_dependent_observation``).
    shard : this rank's cases (:meth:`SCCSData.subset`), with the features and buckets shared by every rank.
    reducer : sums across the ranks; default: the default process group (identity on one process).

    Returns
    -------
    model, fitted; its coefficients (and, for SCCS, ``results_``) are the same on every rank; ``n_cases_``
    (ConvSCCS) counts the cases of all ranks.
    """
    reducer = reducer or Reducer()
    if type(model) not in (ConvSCCS, SCCS):
        raise PathwaysInputError(f"fit_sharded: expected a ConvSCCS or an SCCS, got {type(model).__name__}")
    if not isinstance(shard, SCCSData):
        raise PathwaysInputError(f"fit_sharded: 'shard' must be SCCSData, got {type(shard).__name__}")
    if isinstance(model, ConvSCCS) and int(model.n_bootstrap) > 0:
        raise PathwaysInputError("fit_sharded: n_bootstrap must be 0 (bootstrap intervals run in one process)")
    reducer.same("n_features", int(shard.n_features))
    reducer.same("n_buckets", int(shard.n_buckets))
    with sharded_fit(model, reducer):
        model.fit(shard)
    if isinstance(model, ConvSCCS):
        model.n_cases_ = reducer.sum(int(model.n_cases_))[0]
    return model


def fit_split(model: ConvSCCS, data: Any, reducer: Reducer | None = None, **fit_kwargs: Any) -> ConvSCCS:
    """Fit ``model`` (a ConvSCCS or ConvSCCSCV) on all of ``data`` on every rank, its cross-validation folds and
    bootstrap replicates spread over the ranks of ``reducer``'s group.

    Parameters
    ----------
    model : ConvSCCS (``fit``, with its bootstrap when ``n_bootstrap > 0``) or ConvSCCSCV (``fit_kfold_cv``).
    data : the same cases on every rank (anything ``fit`` takes).
    reducer : sums across the ranks; default: the default process group (identity on one process).
    fit_kwargs : passed to ``fit`` (for a ConvSCCS: ``fit_kfold_cv`` when ``n_folds`` is given, with its grids).

    Returns
    -------
    model, fitted, identical on every rank and to the one-process fit (``cv_results_``, ``best_params_``,
    ``coef_``, ``bootstrap_coef_``, ``ci_low_``, ``ci_high_``).

    Examples
    --------
    >>> from pathways.synthetic.sccs import simulate_sccs
    >>> data = simulate_sccs(120, 12, np.zeros((1, 3)), seed=0)
    >>> model = fit_split(ConvSCCS(n_lags=2, C_tv=100.0, n_bootstrap=4, bootstrap_batch=2), data)
    >>> model.bootstrap_coef_.shape
    (4, 3)
    """
    if not isinstance(model, ConvSCCS):
        raise PathwaysInputError(f"fit_split: expected a ConvSCCS, got {type(model).__name__}")
    reducer = reducer or Reducer()
    with _split(model, reducer):
        if "n_folds" in fit_kwargs and type(model) is ConvSCCS:
            model.fit_kfold_cv(data, **fit_kwargs)
        else:
            model.fit(data, **fit_kwargs)
    return model


@contextmanager
def _split(model: ConvSCCS, reducer: Reducer) -> Iterator[ConvSCCS]:
    """Inside the block the model spreads its folds and replicates over the ranks (it reads ``_split_reducer``)."""
    model._split_reducer = reducer
    try:
        yield model
    finally:
        del model._split_reducer


def objective(model: ConvSCCS | SCCS, data: SCCSData) -> float:
    """Penalised objective of a fitted model over all of ``data``'s cases, what a sharded and a one-process fit
    both minimise: ConvSCCS: weighted negative conditional log-likelihood + penalty; SCCS: negative conditional
    log-likelihood + the weak prior of the separated windows (``prior_sd``)."""
    if isinstance(model, SCCS):
        theta = np.nan_to_num(np.asarray(model.coef_, dtype=np.float64))
        separated = np.asarray(model.results_["separation"] != "none")
        return float(-model._case_scores(data).sum() + 0.5 * np.sum(theta[separated] ** 2) / model.prior_sd ** 2)
    design = lag_design(data, model.n_lags_, torch.device("cpu"), torch.float64)
    beta = torch.as_tensor(np.asarray(model.coef_), dtype=torch.float64)[:, None]
    weights = _normalise(torch.ones(data.n_cases, 1, dtype=torch.float64), design.n_outcomes)
    loss = batched_loss(design, beta, weights, grad=False)[0]
    return float(loss[0] + penalty_value(beta, model.offsets_, model.penalized_, model.C_tv_, model.C_group_l1_)[0])
