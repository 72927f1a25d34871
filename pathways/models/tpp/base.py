"""Estimator face shared by the neural temporal point processes (:class:`TPPBase`).

Conventions
-----------
*Input.* ``fit``/``score``/``predict_next``/``intensities`` accept an :class:`~pathways.data.EventLog` (encoded with
:func:`~pathways.encode.to_sequences`) or :class:`~pathways.encode.Sequences`. Each sequence is observed on its own
window ``[start, end]``; networks only see times relative to ``start``: inter-event gaps, and for THP the time since
``start``, both divided by ``time_scale_`` (total observed time / number of events in the training data).

*Score.* ``score(data)`` is the log-likelihood per event, in the data's time unit::

    score = Σ_sequences [ Σ_i log λ_{k_i}(t_i) - ∫_start^end Σ_k λ_k(t) dt ] / (number of events)

the integral running to each window's end, so the gap after the last event enters as survival
``exp(-∫_{t_n}^{end} λ)`` (for LogNormMix: ``log S(end - t_n)``). RMTPP and LogNormMix are exact; NeuralHawkes and
TransformerHawkes integrate with a Gauss-Legendre rule of ``n_quadrature`` nodes per interval (training uses the
unbiased stratified Monte-Carlo estimate with ``n_mc_samples`` points per interval instead).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from pathways.data.eventlog import EventLog
from pathways.encode.sequences import Sequences
from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.models.base import NotFittedError, PathwaysEstimator, as_sequences
from pathways.models.params import check_counts, check_param_types, check_real
from pathways.data.tables import factors_frame
from pathways.models.tpp.modules import IntensityTPPModule, TPPModule, unpack_batch
from pathways.device import resolve_device
from pathways.training.trainer import Trainer
from pathways.utils import SeedLike, logger, rng

TPPData = EventLog | Sequences


@dataclass(frozen=True)
class NextEventPrediction:
    """Next-event predictions, one row per observed event (flat order of the input sequences).

    Row ``i`` predicts event ``i`` from the history strictly before it (the first event of a sequence is predicted
    from the empty history, its gap counted from the window start).

    Attributes
    ----------
    dt : (N,) expected gap from the previous event (or window start) to this one, in the data's time unit.
    time : (N,) expected absolute time of the event (previous event time + ``dt``).
    mark_proba : (N, K) distribution of the event's type.
    mark : (N,) most probable type.
    """

    dt: np.ndarray
    time: np.ndarray
    mark_proba: np.ndarray
    mark: np.ndarray


def _as_sequences(data: Any, name: str) -> Sequences:
    if isinstance(data, (Sequences, EventLog)):
        return as_sequences(data)
    raise PathwaysInputError(f"argument '{name}': expected an EventLog or Sequences, got {type(data).__name__}")


def _gaps(seqs: Sequences) -> np.ndarray:
    """Gap of every event to the previous event of its sequence (to the window start for the first)."""
    rel = seqs.relative_times()
    prev = np.concatenate([[0.0], rel[:-1]])
    first = np.zeros(seqs.n_events, dtype=bool)
    first[seqs.offsets[:-1][seqs.lengths > 0]] = True
    return np.where(first, rel, rel - prev)


class TPPBase(PathwaysEstimator):
    """Common ``fit``/``score``/``predict_next``/``sample``/``intensities`` of the neural TPPs.

    Subclasses set ``_module_class`` and implement ``_module_kwargs()`` (architecture arguments from the
    parameters); their ``__init__`` stores the shared parameters below plus their own.

    Shared parameters: ``hidden_size``, ``max_epochs``, ``lr``, ``weight_decay``, ``batch_size``, ``patience``
    (early stopping on the validation log-likelihood), ``device`` ("auto", "cpu", "cuda"), ``seed``,
    ``progress``. Learned attributes: ``module_`` (the torch module), ``n_codes_``, ``vocab_``, ``time_scale_``,
    ``max_gap_`` (largest normalised training gap, horizon of ``predict_next``), ``history_`` (per-epoch dicts).
    """

    input_kind: ClassVar[str] = "sequences"
    _module_class: ClassVar[type[TPPModule]]
    #: points of the geometric grid on which ``predict_next`` integrates the density (intensity models)
    predict_grid_size: ClassVar[int] = 256

    #: integer hyper-parameters that must be >= 1 (subclasses list their own)
    _count_params: ClassVar[tuple[str, ...]] = ("hidden_size",)

    # -- hooks --------------------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        """Reject invalid hyper-parameters before any work (see :mod:`pathways.models.params`)."""
        check_param_types(self)
        check_counts(self, self._count_params + ("batch_size", "max_epochs"))
        check_real("lr", self.lr, lambda v: v > 0, "a number > 0")
        check_real("weight_decay", self.weight_decay, lambda v: v >= 0, "a number >= 0")

    def _module_kwargs(self) -> dict[str, Any]:
        """Architecture arguments of ``_module_class`` besides ``n_marks`` and ``time_scale``."""
        return {"hidden_size": self.hidden_size}

    def _learn_data_meta(self, seqs: Sequences) -> None:
        """Learned attributes derived from the training data before the module is built."""
        total_time = float(np.sum(seqs.end - seqs.start))
        scale = total_time / seqs.n_events if seqs.n_events and total_time > 0 else 1.0
        self.time_scale_ = scale
        gaps = _gaps(seqs) / scale
        self.max_gap_ = float(gaps.max()) if gaps.size else 1.0
        self.n_codes_ = int(seqs.n_codes)
        self.vocab_ = seqs.vocab

    def _build_module(self) -> TPPModule:
        """Rebuild the (untrained) torch module from the learned meta data (checkpoint protocol)."""
        return self._module_class(self.n_codes_, self.time_scale_, **self._module_kwargs())

    # -- data -----------------------------------------------------------------------------------------------------
    def check_fitted(self) -> None:
        """Raise :class:`NotFittedError` before ``fit`` (the fitted state is ``module_``)."""
        if "module_" not in vars(self):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit first")

    def _aligned(self, data: Any, name: str) -> Sequences:
        """Sequences whose marks index this model's codes (EventLogs are re-encoded with ``vocab_``)."""
        if not isinstance(data, (Sequences, EventLog)):
            raise PathwaysInputError(f"argument '{name}': expected an EventLog or Sequences, got "
                                     f"{type(data).__name__}")
        seqs = as_sequences(data, self.vocab_)
        if seqs.n_codes != self.n_codes_:
            raise PathwaysInputError(f"argument '{name}': {seqs.n_codes} codes, the model was fitted on "
                                     f"{self.n_codes_}")
        return seqs

    def _device(self) -> torch.device:
        return next(self.module_.parameters()).device

    def _eval_batches(self, seqs: Sequences, batch_size: int | None = None) -> Any:
        """Batches in input order (no bucketing), so flattened masks give the flat event order."""
        return seqs.batches(batch_size or self.batch_size, shuffle=False, bucket=False, device=self._device(),
                            dtype=self.module_.time_scale.dtype)

    # -- fitting --------------------------------------------------------------------------------------------------
    def fit(self, data: TPPData, validation: TPPData | None = None, trainer: Trainer | None = None) -> "TPPBase":
        """Train by maximum likelihood with :class:`pathways.training.Trainer`.

        Parameters
        ----------
        data : EventLog or Sequences with at least one event.
        validation : optional held-out data for early stopping (``patience`` epochs without improvement).
        trainer : the run's :class:`~pathways.training.Trainer` (device, precision, loggers, caps, ...), configured
            with this model's max_epochs, lr, weight_decay, batch_size, patience and seed; None trains on
            ``device`` with a default Trainer.

        Returns
        -------
        self
        """
        self._check_params()
        seqs = _as_sequences(data, "data")
        if seqs.n_events == 0:
            raise PathwaysInputError(f"argument 'data': {len(seqs)} sequences but no event to learn from")
        self._learn_data_meta(seqs)
        val = None if validation is None else self._aligned(validation, "validation")
        trainer = self.run_trainer(trainer)
        self.check_resume(trainer, seqs, val)  # a resumed fit must see the parameters and data it started with
        device = resolve_device(trainer.device)
        torch.manual_seed(int(self.seed))  # the initial weights follow `seed` (two runs with one seed are equal)
        self.module_ = self._build_module().to(device)

        def train_batches(epoch: int) -> Any:
            gen = np.random.default_rng([int(self.seed), int(epoch)])
            return seqs.batches(self.batch_size, shuffle=True, seed=gen, device=device)

        def val_batches(epoch: int) -> Any:
            return val.batches(self.batch_size, shuffle=False, device=device)

        self.history_ = trainer.fit(self.module_, train_batches, None if val is None else val_batches)
        self.module_.eval()
        logger.info("%s fitted on %d sequences, %d events, %d epochs", type(self).__name__, len(seqs),
                    seqs.n_events, len(self.history_))
        return self

    # -- likelihood -----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def score_samples(self, data: TPPData) -> np.ndarray:
        """Log-likelihood of every sequence over its window (float64 array, data's time unit).

        Exact for RMTPP and LogNormMix, Gauss-Legendre compensator (``n_quadrature`` nodes per interval) otherwise.
        """
        self.check_fitted()
        seqs = self._aligned(data, "data")
        self.module_.eval()
        parts = [self.module_.log_likelihood(b, method="quad")[0] for b in self._eval_batches(seqs)]
        return torch.cat(parts).double().cpu().numpy() if parts else np.zeros(0)

    def score(self, data: TPPData) -> float:
        """Log-likelihood per event (higher is better); see the module docstring for the convention."""
        self.check_fitted()
        seqs = self._aligned(data, "data")
        if seqs.n_events == 0:
            raise PathwaysInputError("argument 'data': no event to score (the score is per event)")
        return self.log_likelihood(seqs) / seqs.n_events

    # -- factors --------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def to_factors(self, data: TPPData | None = None, z: float = 1.96) -> pd.DataFrame:
        """Average multiplicative jump of each type's intensity right after an event of each type.

        ``effect`` of the row (source ``j``, target ``i``) is the mean over the events of type ``j`` in ``data`` of
        ``λ_i(t+) / λ_i(t-)``: above 1 an event of type ``j`` raises the rate of ``i``, below 1 it lowers it. The
        interval is normal, over those events; ``n`` counts them (method ``"tpp_intensity_jump"``).

        Raises
        ------
        PathwaysInputError
            Without ``data`` (the jumps are averaged over its events), or for LogNormMix, which models the gap
            distribution: its hazard restarts at zero after every event, so it has no jump to report.
        """
        self.check_fitted()
        if data is None:
            raise PathwaysInputError(f"{type(self).__name__}.to_factors: pass the data whose events the intensity "
                                     "jumps are averaged over")
        if not isinstance(self.module_, IntensityTPPModule):
            raise PathwaysInputError(
                f"{type(self).__name__} has no factors view (its hazard restarts at zero after each event); models "
                "with one: Hawkes models, RMTPP, NeuralHawkes, TransformerHawkes, SelfAttentiveHawkes, outcome "
                "models and SCCS")
        seqs = self._aligned(data, "data")
        k = self.n_codes_
        total, square, count = np.zeros((k, k)), np.zeros((k, k)), np.zeros(k)
        self.module_.eval()
        for batch in self._eval_batches(seqs):
            bt = unpack_batch(batch, self.module_.time_scale)
            states = self.module_.encode(bt)
            before = self.module_.intensity(states[:, :-1], bt.dt[..., None])[..., 0, :]
            after = self.module_.intensity(states[:, 1:], torch.zeros_like(bt.dt)[..., None])[..., 0, :]
            ratio = (after / before.clamp_min(1e-30))[bt.mask].double().cpu().numpy()  # (events, K)
            marks = bt.marks[bt.mask].cpu().numpy()
            np.add.at(total, marks, ratio)
            np.add.at(square, marks, ratio * ratio)
            count += np.bincount(marks, minlength=k)
        n = count[:, None]
        mean = np.divide(total, n, out=np.full_like(total, np.nan), where=n > 0)
        var = np.divide(square - n * mean**2, n - 1, out=np.full_like(total, np.nan), where=n > 1)
        half = z * np.sqrt(np.maximum(var, 0.0) / np.maximum(n, 1))
        codes = np.asarray(self.vocab_.codes if self.vocab_ is not None else np.arange(k), dtype=object).astype(str)
        src, tgt = np.divmod(np.arange(k * k), k)
        return factors_frame(codes[src], codes[tgt], mean.ravel(), method="tpp_intensity_jump",
                             ci_low=(mean - half).ravel(), ci_high=(mean + half).ravel(),
                             n=np.repeat(count, k).astype(np.int64))

    # -- prediction -----------------------------------------------------------------------------------------------
    def _grid(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """Geometric grid on ``[0, 2 max_gap_]`` (normalised), dense near 0 where densities change fastest."""
        top = 2.0 * self.max_gap_
        pts = np.concatenate([[0.0], np.geomspace(top * 1e-6, top, self.predict_grid_size - 1)])
        return torch.as_tensor(pts, device=device, dtype=dtype)

    @torch.no_grad()
    def predict_next(self, data: TPPData) -> NextEventPrediction:
        """Expected time and type distribution of every event given the history before it.

        For intensity models the density ``λ(τ) exp(-Λ(τ))`` is integrated numerically (trapezoid on a geometric
        grid of ``predict_grid_size`` points up to twice the largest training gap); the expectation is conditional
        on the event falling in that range. LogNormMix uses the exact mixture mean.
        """
        self.check_fitted()
        seqs = self._aligned(data, "data")
        self.module_.eval()
        scale = self.module_.time_scale
        grid = self._grid(scale.device, scale.dtype)
        dts, probs = [], []
        for batch in self._eval_batches(seqs, batch_size=16):  # (B, L, grid, hidden) temporaries: small batches
            bt = unpack_batch(batch, scale)
            mean, proba = self.module_.next_event(self.module_.encode(bt)[:, :-1], grid)
            dts.append(mean[bt.mask])
            probs.append(proba[bt.mask])
        dt = torch.cat(dts).double().cpu().numpy() * self.time_scale_
        proba = torch.cat(probs).double().cpu().numpy()
        rel = seqs.relative_times()
        prev = rel - _gaps(seqs)
        return NextEventPrediction(dt=dt, time=seqs.start[seqs.sequence_ids] + prev + dt, mark_proba=proba,
                                   mark=proba.argmax(1))

    @torch.no_grad()
    def intensities(self, data: TPPData) -> np.ndarray:
        """Left-limit intensities ``λ_k(t_i^-)`` ``(N, K)`` at every event, in events per data time unit."""
        self.check_fitted()
        seqs = self._aligned(data, "data")
        self.module_.eval()
        scale = self.module_.time_scale
        out = []
        for batch in self._eval_batches(seqs):
            bt = unpack_batch(batch, scale)
            lam = self.module_.intensity(self.module_.encode(bt)[:, :-1], bt.dt[..., None])[..., 0, :]
            out.append(lam[bt.mask] / scale)
        return torch.cat(out).double().cpu().numpy() if out else np.zeros((0, self.n_codes_))

    @torch.no_grad()
    def sample(self, n: int, end_time: float, seed: SeedLike = None, max_events: int = 10_000) -> Sequences:
        """Simulate ``n`` sequences on ``[0, end_time]`` from the fitted model.

        Intensity models use thinning with a proven upper bound on each look-ahead window (see each model's
        docstring); LogNormMix draws gaps directly. ``max_events`` caps each sequence (a guard against explosive
        fits); sequences reaching it are truncated and a warning says how many.
        """
        self.check_fitted()
        if int(n) < 1 or not np.isfinite(end_time) or end_time <= 0:
            raise PathwaysInputError(f"arguments 'n'/'end_time': need n >= 1 and a finite end_time > 0, "
                                     f"got n={n}, end_time={end_time}")
        device = self._device()
        gen = torch.Generator(device=device)
        gen.manual_seed(int(rng(seed).integers(2**62)))
        self.module_.eval()
        row, t, mark = self.module_.sample(int(n), float(end_time) / self.time_scale_, int(max_events), gen)
        counts = np.bincount(row, minlength=int(n))
        if (counts >= max_events).any():
            warnings.warn(f"sample: {int((counts >= max_events).sum())} of {n} sequences hit max_events="
                          f"{max_events} and were truncated", PathwaysDataWarning, stacklevel=2)
        order = np.lexsort((t, row))
        offsets = np.concatenate([[0], np.cumsum(counts)])
        times = np.minimum(t[order] * self.time_scale_, float(end_time))
        return Sequences(times, mark[order], offsets, np.zeros(int(n)), np.full(int(n), float(end_time)),
                         self.n_codes_, self.vocab_, validate=False)
