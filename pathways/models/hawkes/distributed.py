"""Hawkes fits that span processes: each rank holds its own patients, the sums over patients are all-reduced.

Every statistic the Hawkes solvers need is a sum over patients: the least-squares quadratic statistics (Q, B), the
event counts and window lengths, and at each EM iteration the log-intensity sum and the baseline / excitation
responsibilities (exponential kernels, :class:`~pathways.models.hawkes.em_exp._EM`; piecewise-constant kernels,
:func:`~pathways.models.hawkes.em.em_step`). A sharded fit sums them over the ranks with a
:class:`~pathways.training.distributed.Reducer` (one ``all_reduce`` per iteration), so every rank runs the same
deterministic solver on the same totals and ends with the parameters of the one-process fit (up to the order of
floating-point sums).

* :func:`fit_sharded` fits an estimator (:class:`~pathways.models.hawkes.HawkesExpKernel`,
  :class:`~pathways.models.hawkes.HawkesSumExpKernel`, :class:`~pathways.models.hawkes.HawkesEM`) on this rank's
  Sequences; all shards must be encoded with one vocabulary.
* :func:`fit_least_squares_streaming` fits the exponential-kernel least-squares contrast from shards read one at
  a time (memory: one shard's design), the route to 10^8 events.

Examples
--------
>>> from pathways.synthetic import simulate_hawkes
>>> from pathways.models.hawkes import HawkesExpKernel
>>> seqs = simulate_hawkes(np.array([0.2, 0.1]), np.array([[0.3, 0.0], [0.5, 0.2]]), end=200.0, n_sequences=8,
...                        seed=0)
>>> one = HawkesExpKernel(decay=1.0, fit_method="least-squares").fit(seqs)
>>> parts = [seqs[:4], seqs[4:]]   # two shards read one after the other
>>> streamed = fit_least_squares_streaming(HawkesExpKernel(decay=1.0, fit_method="least-squares"), parts)
>>> bool(np.allclose(streamed.adjacency_, one.adjacency_, rtol=1e-8, atol=1e-10))
True
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from pathways.encode.sequences import Sequences
from pathways.errors import PathwaysInputError
from pathways.models.hawkes.design import _Tensors, build_design, least_squares_stats
from pathways.models.hawkes.em_design import EMDesign
from pathways.models.hawkes.solvers import fista_least_squares
from pathways.training.distributed import Reducer, sharded_fit

__all__ = ["fit_least_squares_streaming", "fit_sharded", "shared_design"]

Shard = Sequences | Callable[[], Sequences]


def fit_sharded(model: Any, shard: Sequences, reducer: Reducer | None = None) -> Any:
    """Fit ``model`` on this rank's ``shard`` with statistics summed over the ranks of ``reducer``'s group.

    Parameters
    ----------
    model : HawkesExpKernel, HawkesSumExpKernel or HawkesEM (unfitted or refitted).
    shard : this rank's sequences, encoded with the vocabulary shared by every rank (same ``n_codes``).
    reducer : sums across the ranks; default: the default process group (identity on one process).

    Returns
    -------
    model, fitted; its parameters and objective are the same on every rank; ``n_events_fit_`` counts all ranks.

    Raises
    ------
    PathwaysInputError : covariates or the nuclear penalty (their solvers hold per-patient or autograd state that is
        not summed over ranks), or shards encoded with different numbers of codes.
    """
    reducer = reducer or Reducer()
    if not isinstance(shard, Sequences):
        raise PathwaysInputError(f"fit_sharded: 'shard' must be Sequences, got {type(shard).__name__}")
    if getattr(model, "covariates", None) or getattr(model, "penalty", None) == "nuclear":
        raise PathwaysInputError("fit_sharded: covariates and the nuclear penalty are fitted in one process only")
    reducer.same("n_codes", int(shard.n_codes))
    with sharded_fit(model, reducer):
        model.fit(shard)
    model.n_events_fit_ = reducer.sum(int(shard.n_events))[0]
    return model


class _SharedPairs:
    """A :class:`~pathways.models.hawkes.em_design.PairMatrix` whose E-step sums are totals over the ranks."""

    def __init__(self, pairs: Any, reducer: Reducer):
        self._pairs, self._reducer = pairs, reducer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pairs, name)

    def statistics(self, lam: Any, n_codes: int) -> tuple[float, np.ndarray, np.ndarray]:
        return self._reducer.sum(*self._pairs.statistics(lam, n_codes))


def shared_design(design: EMDesign, reducer: Reducer) -> EMDesign:
    """This rank's nonparametric-EM design with every sum over patients replaced by its total over the ranks."""
    exposure, total_time, counts, n_events, n_pairs = reducer.sum(
        design.exposure, float(design.total_time), design.counts, int(design.n_events), int(design.n_pairs))
    return replace(design, pairs=_SharedPairs(design.pairs, reducer), exposure=exposure, total_time=total_time,
                   counts=counts, n_events=n_events, n_pairs=n_pairs)


def fit_least_squares_streaming(model: Any, shards: Iterable[Shard], reducer: Reducer | None = None) -> Any:
    """Least-squares fit of an exponential-kernel Hawkes model from shards read one at a time, over all ranks.

    Each shard (Sequences, or a callable returning them, e.g. reading a parquet file) contributes its
    (1+DK)² quadratic statistics, event counts and window lengths; its design is freed before the next one is
    read, so peak memory is that of the largest shard. The totals are all-reduced over ranks and the same FISTA
    as :class:`~pathways.models.hawkes.HawkesExpKernel` (``fit_method="least-squares"``) runs on them.
    """
    reducer = reducer or Reducer()
    if getattr(model, "fit_method", None) != "least-squares":
        raise PathwaysInputError("fit_least_squares_streaming: the model needs fit_method='least-squares'")
    if getattr(model, "covariates", None) or model.learn_decay:
        raise PathwaysInputError("fit_least_squares_streaming: no covariates nor learn_decay (least squares)")
    model._check_params()
    decays, dev = model._init_decays(), model._device()
    sums: list[Any] | None = None
    meta: Sequences | None = None
    for shard in shards:
        seqs = shard() if callable(shard) else shard
        if meta is not None and seqs.n_codes != meta.n_codes:
            raise PathwaysInputError(f"fit_least_squares_streaming: a shard has {seqs.n_codes} codes, the first "
                                     f"{meta.n_codes}; encode every shard with one vocabulary")
        meta = meta or seqs
        tensors = _Tensors(build_design(seqs), dev)
        q, b = least_squares_stats(tensors, decays)
        part = [q, b, float(np.sum(seqs.end - seqs.start)), np.bincount(seqs.marks, minlength=seqs.n_codes)]
        sums = part if sums is None else [s + p for s, p in zip(sums, part)]
        del tensors, seqs
    if meta is None:
        raise PathwaysInputError("fit_least_squares_streaming: no shard on this rank")
    reducer.same("n_codes", int(meta.n_codes))
    q, b, total_time, counts = reducer.sum(*sums)
    if total_time <= 0:
        raise PathwaysInputError("end: all observation windows have zero length")
    d, k = meta.n_codes, decays.size
    rates = counts / total_time
    theta0 = torch.zeros(d, 1 + d * k, dtype=torch.float64, device=dev)
    theta0[:, 0] = torch.as_tensor(rates, device=dev)
    mu_floor = 1e-10 * np.maximum(rates, 1.0 / total_time)
    theta, n_iter, converged, hist = fista_least_squares(
        q.to(dev), b.to(dev), theta0, max(int(counts.sum()), 1), torch.as_tensor(mu_floor, device=dev),
        model._penalty_kind, 1.0 / float(model.C), float(model.elastic_net_ratio), int(model.max_iter),
        float(model.tol), k)
    model.n_codes_, model.vocab_ = int(d), meta.vocab
    model.codes_ = (np.asarray(meta.vocab.codes, dtype=object).astype(str) if meta.vocab is not None
                    else np.arange(d).astype(str)).astype(object)
    model.history_ = [{"stage": "least-squares", "iter": 10 * i + 10, "objective": v} for i, v in enumerate(hist)]
    mu, a = theta[:, 0].cpu().numpy(), theta[:, 1:].reshape(d, d, k).cpu().numpy()
    model._store(mu, a, np.zeros((d, 0)), decays, False, n_iter, converged, hist[-1] if hist else float("nan"))
    model.n_events_fit_ = int(counts.sum())
    return model
