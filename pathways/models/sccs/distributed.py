"""ConvSCCS fits that span processes: each rank holds its own cases, the objective is summed over ranks.

The ConvSCCS objective is a sum over cases of the conditional log-likelihood (weighted by 1 / number of cases with an
outcome) plus a penalty on the coefficients. In a sharded fit each rank builds the lagged design of its own cases;
the case-weight total, the diagonal preconditioner and, at every FISTA evaluation, the loss and gradient are summed
over the ranks (:class:`~pathways.training.distributed.Reducer`), so every rank runs the same FISTA path as one
process over all cases and ends with the same coefficients.

Examples
--------
>>> from pathways.synthetic.sccs import simulate_sccs
>>> from pathways.models.sccs import ConvSCCS
>>> data = simulate_sccs(200, 20, np.zeros((1, 4)), seed=0)
>>> model = fit_sharded(ConvSCCS(n_lags=3, C_tv=100.0), data)   # one process: the plain fit
>>> model.coef_.shape
(4,)
"""
from __future__ import annotations

import numpy as np
import torch

from pathways.encode.sccs import SCCSData
from pathways.errors import PathwaysInputError
from pathways.models.sccs.convsccs import ConvSCCS, _normalise
from pathways.models.sccs.design import lag_design
from pathways.models.sccs.solver import batched_loss, penalty_value
from pathways.training.distributed import Reducer, sharded_fit

__all__ = ["fit_sharded", "objective"]


def fit_sharded(model: ConvSCCS, shard: SCCSData, reducer: Reducer | None = None) -> ConvSCCS:
    """Fit ``model`` on this rank's cases with the objective summed over the ranks of ``reducer``'s group.

    Parameters
    ----------
    model : ConvSCCS (penalised or not), without bootstrap (replicates resample cases across every rank).
    shard : this rank's cases (:meth:`SCCSData.subset`), with the features and buckets shared by every rank.
    reducer : sums across the ranks; default: the default process group (identity on one process).

    Returns
    -------
    model, fitted; ``coef_`` is the same on every rank and ``n_cases_`` counts the cases of all ranks.
    """
    reducer = reducer or Reducer()
    if type(model) is not ConvSCCS:
        raise PathwaysInputError(f"fit_sharded: expected a ConvSCCS, got {type(model).__name__}")
    if not isinstance(shard, SCCSData):
        raise PathwaysInputError(f"fit_sharded: 'shard' must be SCCSData, got {type(shard).__name__}")
    if int(model.n_bootstrap) > 0:
        raise PathwaysInputError("fit_sharded: n_bootstrap must be 0 (bootstrap intervals run in one process)")
    reducer.same("n_features", int(shard.n_features))
    reducer.same("n_buckets", int(shard.n_buckets))
    with sharded_fit(model, reducer):
        model.fit(shard)
    model.n_cases_ = reducer.sum(int(model.n_cases_))[0]
    return model


def objective(model: ConvSCCS, data: SCCSData) -> float:
    """Penalised objective of a fitted ConvSCCS over all of ``data``'s cases (weighted negative conditional
    log-likelihood + penalty): what a sharded and a one-process fit both minimise."""
    design = lag_design(data, model.n_lags_, torch.device("cpu"), torch.float64)
    beta = torch.as_tensor(np.asarray(model.coef_), dtype=torch.float64)[:, None]
    weights = _normalise(torch.ones(data.n_cases, 1, dtype=torch.float64), design.n_outcomes)
    loss = batched_loss(design, beta, weights, grad=False)[0]
    return float(loss[0] + penalty_value(beta, model.offsets_, model.penalized_, model.C_tv_, model.C_group_l1_)[0])
