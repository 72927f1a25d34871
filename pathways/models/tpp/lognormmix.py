"""Intensity-free TPP (Shchur, Biloš & Günnemann, ICLR 2020): log-normal mixture of the inter-event time.

A GRU reads ``[BOS, e_1, ..., e_n]`` (mark embedding + gap features). From the state ``h_i`` the next gap
``τ`` (normalised by the mean training gap) has the density of ``exp(a + b Y)`` where ``Y`` is a Gaussian mixture
with weights, means and scales given by ``h_i`` and ``(a, b)`` the mean and standard deviation of the log training
gaps; the mark is drawn independently from ``softmax(W h_i + c)``. Everything is closed form:

    log f(τ) = logsumexp_m [log w_m + log N((log τ - a)/b; μ_m, σ_m)] - log b - log τ,
    log S(τ) = logsumexp_m [log w_m + log Φ(-((log τ - a)/b - μ_m)/σ_m)],
    E[τ] = Σ_m w_m exp(a + b μ_m + (b σ_m)² / 2),

so the likelihood (survival ``S`` on the last interval to the window end), ``score``, the expected next time and
sampling (component, then Gaussian, then exp) are exact. Zero gaps (ties) have zero density under a log-normal:
gaps are floored at ``min_gap`` (normalised units) before taking logs.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

import torch
from torch import nn
from torch.nn import functional as F

from pathways.encode.sequences import Sequences
from pathways.errors import PathwaysDataWarning
from pathways.models.params import check_real
from pathways.models.tpp.base import TPPBase, _gaps
from pathways.models.tpp.modules import (BatchTensors, Carry, TPPModule, folded_inputs, gru_scan, time_features,
                                         unpack_batch)


class LogNormMixModule(TPPModule):
    """Torch module of :class:`pathways.models.LogNormMix` (see the module docstring for the model)."""

    exact_likelihood = True

    def __init__(self, n_marks: int, time_scale: float, hidden_size: int = 32, n_components: int = 8,
                 log_mean: float = 0.0, log_std: float = 1.0, min_gap: float = 1e-6) -> None:
        super().__init__(n_marks, time_scale)
        self.n_components = n_components
        self.min_gap = float(min_gap)
        self.embed = nn.Embedding(n_marks + 1, hidden_size)
        self.time_in = nn.Linear(2, hidden_size)
        self.rnn = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.mix_head = nn.Linear(hidden_size, 3 * n_components)
        self.mark_head = nn.Linear(hidden_size, n_marks)
        self.register_buffer("log_mean", torch.tensor(float(log_mean)))
        self.register_buffer("log_std", torch.tensor(float(log_std)))

    def _inputs(self, marks: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        return self.embed(marks) + self.time_in(time_features(dt))

    def encode(self, bt: BatchTensors) -> torch.Tensor:
        marks = F.pad(bt.marks, (1, 0), value=self.n_marks)
        dt = F.pad(bt.dt, (1, 0))
        if not torch.is_grad_enabled() or dt.device.type != "cpu":  # nothing to save, or cuDNN's fused GRU
            return self.rnn(self._inputs(marks, dt))[0]
        # training on CPU: embedding, gap features and the GRU's input projection as one matmul, then the scan
        # with a hand-written backward (same parameters, same values as the line above)
        rnn = self.rnn
        return gru_scan(rnn, folded_inputs(self.embed, self.time_in, rnn.weight_ih_l0, rnn.bias_ih_l0, marks, dt))

    def _mixture(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log weights, means and scales ``(..., M)`` of the standardised log-gap mixture."""
        logits, loc, log_scale = self.mix_head(states).chunk(3, dim=-1)
        return F.log_softmax(logits, -1), loc, torch.exp(log_scale.clamp(-5.0, 3.0))

    def _standardise(self, tau: torch.Tensor) -> torch.Tensor:
        return (torch.log(tau.clamp_min(self.min_gap)) - self.log_mean) / self.log_std

    def _log_density(self, states: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """``log f(τ)`` ``(..., G)`` for states ``(..., S)`` and gaps ``(..., G)`` (normalised units)."""
        return self._log_density_of(self.mix_head(states), tau)

    def _log_density_of(self, raw: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """``log f(τ)`` from the mixture head's output ``raw`` ``(..., 3M)``.

        One fused expression: ``logsumexp_m(logit_m - z_m²/2 - log σ_m) - logsumexp_m(logit_m)`` replaces the
        log-softmax of the weights, and ``log σ`` is used as is (never ``log(exp(.))``).
        """
        logits, loc, log_scale = (x[..., None, :] for x in raw.chunk(3, dim=-1))
        log_scale = log_scale.clamp(-5.0, 3.0)
        log_tau = torch.log(tau.clamp_min(self.min_gap))
        z = ((log_tau - self.log_mean) / self.log_std)[..., None] - loc
        z = z * torch.exp(-log_scale)
        mixed = torch.logsumexp(logits - 0.5 * z * z - log_scale, -1) - torch.logsumexp(logits, -1)
        return mixed - (0.5 * math.log(2 * math.pi) + torch.log(self.log_std)) - log_tau

    def _log_survival(self, states: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        return self._log_survival_of(self.mix_head(states), tau)

    def _log_survival_of(self, raw: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """``log S(τ)`` from the mixture head's output ``raw`` ``(..., 3M)``."""
        logits, loc, log_scale = (x[..., None, :] for x in raw.chunk(3, dim=-1))
        z = (self._standardise(tau)[..., None] - loc) * torch.exp(-log_scale.clamp(-5.0, 3.0))
        return torch.logsumexp(logits + torch.special.log_ndtr(-z), -1) - torch.logsumexp(logits, -1)

    def terms(self, batch: Any, method: str = "exact") -> tuple[torch.Tensor, torch.Tensor]:
        """Exact pieces: ``log f(τ_i) + log p(k_i)`` per event; ``-log S`` on the last interval (``method`` unused).

        Both heads run once on all ``L + 1`` states (contiguous); events use rows ``0..L-1``, the survival term the
        row after each sequence's last event.
        """
        bt = unpack_batch(batch, self.time_scale)
        states = self.encode(bt)
        raw, mark_logits = self.mix_head(states), self.mark_head(states)
        log_time = self._log_density_of(raw[:, :-1], bt.dt[..., None])[..., 0] - torch.log(self.time_scale)
        mark_logits = mark_logits[:, :-1]
        log_mark = (torch.gather(mark_logits, -1, bt.marks[..., None])[..., 0]
                    - torch.logsumexp(mark_logits, -1))
        rows = torch.arange(states.shape[0], device=states.device)
        tail = -self._log_survival_of(raw[rows, bt.lengths], bt.span[rows, bt.lengths][:, None])[:, 0]
        interval = torch.zeros_like(bt.span).index_put((rows, bt.lengths), tail)
        return (log_time + log_mark) * bt.mask, interval

    def intensity(self, states: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """Hazard ``p_k f(τ) / S(τ)`` ``(..., G, K)``: the intensity implied by the density (for plots)."""
        log_hazard = self._log_density(states, tau) - self._log_survival(states, tau)
        logp = F.log_softmax(self.mark_head(states), -1)
        return torch.exp(log_hazard[..., None] + logp[..., None, :])

    def next_event(self, states: torch.Tensor, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact mean of the next gap (log-normal mixture moments) and mark probabilities; ``grid`` is unused."""
        logw, loc, scale = self._mixture(states)
        log_mean = self.log_mean + self.log_std * loc + 0.5 * (self.log_std * scale) ** 2
        return torch.exp(torch.logsumexp(logw + log_mean, -1)), F.softmax(self.mark_head(states), -1)

    def sample_next(self, states: torch.Tensor, horizon: torch.Tensor,
                    gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Direct draw: component, Gaussian, exponential map; marks from the categorical head."""
        logw, loc, scale = self._mixture(states)
        comp = torch.multinomial(logw.exp(), 1, generator=gen)
        z = torch.randn(comp.shape, device=states.device, dtype=states.dtype, generator=gen)
        y = torch.gather(loc, -1, comp) + torch.gather(scale, -1, comp) * z
        gap = torch.exp(self.log_mean + self.log_std * y[:, 0])
        mark = torch.multinomial(F.softmax(self.mark_head(states), -1), 1, generator=gen)[:, 0]
        return torch.where(gap <= horizon, gap, torch.full_like(gap, float("inf"))), mark

    def init_carry(self, n: int, capacity: int) -> Carry:
        return (torch.zeros(n, self.rnn.hidden_size, device=self.time_scale.device, dtype=self.time_scale.dtype),)

    def step(self, carry: Carry, marks: torch.Tensor, dt: torch.Tensor, t: torch.Tensor) -> tuple[Carry, torch.Tensor]:
        out, h_new = self.rnn(self._inputs(marks, dt)[:, None, :], carry[0][None].contiguous())
        return (h_new[0],), out[:, 0]


class LogNormMix(TPPBase):
    """Exact likelihood, exact expected next time and direct sampling (no intensity integral anywhere).

    See the module docstring for the model and :mod:`pathways.models.tpp.base` for the score convention.

    Parameters
    ----------
    n_components : int
        Number of log-normal mixture components.
    min_gap : float
        Floor of normalised gaps before taking logs (ties have zero log-normal density; a warning counts them).
    hidden_size : int
        Width of the embeddings and of the recurrent/attention state.
    max_epochs, lr, weight_decay, batch_size, patience, device, seed, progress
        Training settings passed to :class:`pathways.training.Trainer` (``patience``: epochs without validation
        improvement before early stopping; ``device``: "auto", "cpu" or "cuda").

    Examples
    --------
    >>> from pathways.synthetic import simulate_hawkes
    >>> import numpy as np
    >>> seqs = simulate_hawkes(np.full(2, 0.5), np.full((2, 2), 0.2), end=50.0, n_sequences=20, seed=0)
    >>> model = LogNormMix(hidden_size=8, max_epochs=2, device="cpu").fit(seqs)
    >>> bool(np.isfinite(model.score(seqs)))
    True
    """

    _module_class = LogNormMixModule
    _count_params = ("hidden_size", "n_components")

    def __init__(self, n_components: int = 8, min_gap: float = 1e-6, hidden_size: int = 32,
                 max_epochs: int = 50, lr: float = 3e-3, weight_decay: float = 0.0, batch_size: int = 64,
                 patience: int | None = 5, device: str = "auto", seed: int = 0, progress: bool = False) -> None:
        self.n_components = n_components
        self.min_gap = min_gap
        self.hidden_size = hidden_size
        self.max_epochs = max_epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.patience = patience
        self.device = device
        self.seed = seed
        self.progress = progress

    def _check_params(self) -> None:
        super()._check_params()
        check_real("min_gap", self.min_gap, lambda v: v > 0, "a number > 0")

    def _module_kwargs(self) -> dict[str, Any]:
        return {"hidden_size": self.hidden_size, "n_components": self.n_components,
                "log_mean": self.log_gap_mean_, "log_std": self.log_gap_std_, "min_gap": self.min_gap}

    def _learn_data_meta(self, seqs: Sequences) -> None:
        super()._learn_data_meta(seqs)
        gaps = _gaps(seqs) / self.time_scale_
        ties = gaps <= self.min_gap
        if ties.any():
            warnings.warn(f"train: {int(ties.sum())} of {gaps.size} gaps are ties (<= min_gap={self.min_gap} "
                          f"mean gaps), first at event {int(np.argmax(ties))}; LogNormMix floors them at min_gap",
                          PathwaysDataWarning, stacklevel=3)
        logs = np.log(np.maximum(gaps, self.min_gap))
        self.log_gap_mean_ = float(logs.mean()) if logs.size else 0.0
        self.log_gap_std_ = float(max(logs.std(), 1e-3)) if logs.size > 1 else 1.0
