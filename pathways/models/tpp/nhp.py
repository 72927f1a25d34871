"""Neural Hawkes process (Mei & Eisner, NeurIPS 2017): a continuous-time LSTM drives the intensities.

After event ``i`` the cell holds ``(c_i, c̄_i, δ_i, o_i)``; between events the memory relaxes exponentially,

    c(τ) = c̄_i + (c_i - c̄_i) exp(-δ_i τ),     h(τ) = o_i ⊙ tanh(c(τ)),
    λ_k(τ) = s_k log(1 + exp((w_k·h(τ) + b_k) / s_k)),

so the elapsed time enters through the decay, never as a raw clock. At the next event the decayed ``h`` and ``c``
feed the LSTM gates (input, forget, output, target-input, target-forget, candidate, decay). There is no closed-form
compensator: training uses an unbiased stratified Monte-Carlo estimate (``n_mc_samples`` points per interval) and
evaluation a Gauss-Legendre rule (``n_quadrature`` nodes per interval).

Thinning bound: each ``c_d(τ)`` is monotone in τ (an exponential relaxation), ``tanh`` is increasing and
``o_d > 0``, so each ``h_d(τ)`` is monotone and, on ``[τ0, τ1]``, lies between ``h_d(τ0)`` and ``h_d(τ1)``. Hence
``w_k·h(τ) + b_k ≤ Σ_d max(w_kd h_d(τ0), w_kd h_d(τ1)) + b_k`` and, softplus being increasing, this bounds λ_k.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from pathways.models.tpp.base import TPPBase
from pathways.models.tpp.modules import BatchTensors, Carry, IntensityTPPModule, scaled_softplus


class NeuralHawkesModule(IntensityTPPModule):
    """Torch module of :class:`pathways.models.NeuralHawkes` (see the module docstring for the model)."""

    def __init__(self, n_marks: int, time_scale: float, hidden_size: int = 32, n_mc_samples: int = 10,
                 n_quadrature: int = 32, thinning_window: float = 2.0) -> None:
        super().__init__(n_marks, time_scale, n_mc_samples, n_quadrature, thinning_window)
        self.hidden_size = hidden_size
        self.embed = nn.Embedding(n_marks + 1, hidden_size)
        # input part of the 7 gates, computed for all positions at once; the recurrent part runs step by step
        self.gates_x = nn.Linear(hidden_size, 7 * hidden_size)
        self.gates_h = nn.Linear(hidden_size, 7 * hidden_size, bias=False)
        self.head = nn.Linear(hidden_size, n_marks)
        self.log_beta = nn.Parameter(torch.zeros(n_marks))

    # state layout along the last axis: [c, c_bar, delta, o], each hidden_size wide
    def _split(self, states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(states.split(self.hidden_size, dim=-1))

    def _hidden(self, states: torch.Tensor, tau: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decayed cell memory and hidden output ``(..., M, H)`` at elapsed times ``tau`` ``(..., M)``."""
        c, c_bar, delta, o = (x[..., None, :] for x in self._split(states))
        c_t = torch.addcmul(c_bar, c - c_bar, torch.exp(delta * -tau[..., None]))
        return c_t, o * torch.tanh(c_t)

    def _cell(self, gx: torch.Tensor, parts: tuple[torch.Tensor, ...],
              dt: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One event: decay the previous ``(c, c_bar, delta, o)`` by ``dt`` and apply the gates.

        ``gx`` is the input part of the gates. Written with fused ops (addcmul/addmm, one sigmoid over the five
        sigmoid gates laid out contiguously): the recurrence runs once per position, so op count is its cost.
        """
        c, c_bar, delta, o = parts
        c_t = torch.addcmul(c_bar, c - c_bar, torch.exp(delta * -dt[:, None]))
        pre = torch.addmm(gx, o * torch.tanh(c_t), self.gates_h.weight.t())
        h = self.hidden_size
        gates = torch.sigmoid(pre[:, :5 * h])
        i, f, o_new, i_bar, f_bar = gates.split(h, dim=-1)
        z = torch.tanh(pre[:, 5 * h:6 * h])
        return (torch.addcmul(f * c_t, i, z), torch.addcmul(f_bar * c_bar, i_bar, z), F.softplus(pre[:, 6 * h:]),
                o_new)

    def encode(self, bt: BatchTensors) -> torch.Tensor:
        marks = F.pad(bt.marks, (1, 0), value=self.n_marks)
        dt = F.pad(bt.dt, (1, 0))
        gx = self.gates_x(self.embed(marks))
        zeros = gx.new_zeros(marks.shape[0], self.hidden_size)
        parts = (zeros, zeros, zeros, zeros)
        out = []
        # unbind once: indexing gx[:, i] in the loop would make each step's backward zero-fill a full-size gradient
        for gx_i, dt_i in zip(gx.unbind(1), dt.unbind(1)):  # recurrence over positions, vectorised over the batch
            parts = self._cell(gx_i, parts, dt_i)
            out.append(parts)
        return torch.cat([torch.stack(p, dim=1) for p in zip(*out)], dim=-1)

    def _beta(self) -> torch.Tensor:
        return torch.exp(self.log_beta)

    def intensity(self, states: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        return scaled_softplus(self.head(self._hidden(states, tau)[1]), self._beta())

    def upper_bound(self, states: torch.Tensor, tau0: torch.Tensor, tau1: torch.Tensor) -> torch.Tensor:
        h = self._hidden(states, torch.stack([tau0, tau1], dim=-1))[1]  # (n, 2, H), endpoints
        contrib = h[:, :, None, :] * self.head.weight  # (n, 2, K, H)
        pre = contrib.max(dim=1).values.sum(-1) + self.head.bias  # (n, K)
        return scaled_softplus(pre, self._beta()).sum(-1)

    def init_carry(self, n: int, capacity: int) -> Carry:
        return (torch.zeros(n, 4 * self.hidden_size, device=self.time_scale.device, dtype=self.time_scale.dtype),)

    def step(self, carry: Carry, marks: torch.Tensor, dt: torch.Tensor, t: torch.Tensor) -> tuple[Carry, torch.Tensor]:
        state = torch.cat(self._cell(self.gates_x(self.embed(marks)), self._split(carry[0]), dt), dim=-1)
        return (state,), state


class NeuralHawkes(TPPBase):
    """Continuous-time LSTM intensities; Monte-Carlo compensator for training, quadrature for evaluation.

    See the module docstring for the model and :mod:`pathways.models.tpp.base` for the score convention.

    Parameters
    ----------
    n_mc_samples : int
        Stratified uniform Monte-Carlo points per interval for the training compensator (unbiased). Each point costs
        a hidden-size decay per interval, the bulk of an epoch; stratification makes 10 points about 3.5 times less
        noisy than 20 i.i.d. uniform ones (measured on the benchmark data: 2e-5 vs 7e-5 nats/event per batch).
    n_quadrature : int
        Gauss-Legendre nodes per interval for ``score``/``log_likelihood``.
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
    >>> model = NeuralHawkes(hidden_size=8, max_epochs=2, device="cpu").fit(seqs)
    >>> bool(np.isfinite(model.score(seqs)))
    True
    """

    _module_class = NeuralHawkesModule
    _count_params = ("hidden_size", "n_mc_samples", "n_quadrature")

    def __init__(self, n_mc_samples: int = 10, n_quadrature: int = 32, hidden_size: int = 32,
                 max_epochs: int = 50, lr: float = 3e-3, weight_decay: float = 0.0, batch_size: int = 64,
                 patience: int | None = 5, device: str = "auto", seed: int = 0, progress: bool = False) -> None:
        self.n_mc_samples = n_mc_samples
        self.n_quadrature = n_quadrature
        self.hidden_size = hidden_size
        self.max_epochs = max_epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.patience = patience
        self.device = device
        self.seed = seed
        self.progress = progress

    def _module_kwargs(self) -> dict[str, Any]:
        return {"hidden_size": self.hidden_size, "n_mc_samples": self.n_mc_samples,
                "n_quadrature": self.n_quadrature}
