"""Transformer Hawkes process (Zuo et al., ICML 2020).

A causal transformer encoder reads ``[BOS, e_1, ..., e_n]``; each token is the mark embedding plus a sinusoidal
encoding of the event's time *since the observation start* and a linear map of its inter-event gap features (times
are normalised by the mean training gap; calendar times never reach the network). With ``h_i`` the output at event
``i``, the intensity on the following interval is

    λ_k(τ) = s_k log(1 + exp((α_k τ + w_k·h_i + b_k) / s_k)),

(the paper divides τ by the absolute time of event ``i``; pathways uses the normalised gap instead). No closed-form
compensator: training uses an unbiased stratified Monte-Carlo estimate (``n_mc_samples`` points per interval),
evaluation a Gauss-Legendre rule (``n_quadrature`` nodes per interval).

Thinning bound: for each k the argument of the softplus is affine in τ, so λ_k is monotone and its maximum on
``[τ0, τ1]`` is at an endpoint; the bound is ``Σ_k max(λ_k(τ0), λ_k(τ1))``.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from pathways.errors import PathwaysInputError
from pathways.models.params import check_fraction
from pathways.models.tpp.base import TPPBase
from pathways.models.tpp.modules import BatchTensors, Carry, IntensityTPPModule, scaled_softplus, time_features


class TransformerHawkesModule(IntensityTPPModule):
    """Torch module of :class:`pathways.models.TransformerHawkes` (see the module docstring for the model)."""

    def __init__(self, n_marks: int, time_scale: float, hidden_size: int = 32, n_layers: int = 2, n_heads: int = 2,
                 dropout: float = 0.0, n_mc_samples: int = 20, n_quadrature: int = 32,
                 thinning_window: float = 2.0) -> None:
        super().__init__(n_marks, time_scale, n_mc_samples, n_quadrature, thinning_window)
        self.hidden_size = hidden_size
        self.embed = nn.Embedding(n_marks + 1, hidden_size)
        self.time_in = nn.Linear(2, hidden_size)
        # frequencies from 1 to 1/1000 per mean gap: the encoding resolves single gaps and whole windows
        n_freq = hidden_size // 2
        freq = torch.exp(-math.log(1000.0) * torch.arange(n_freq, dtype=torch.float32) / max(n_freq - 1, 1))
        self.register_buffer("freq", freq)
        layer = nn.TransformerEncoderLayer(hidden_size, n_heads, dim_feedforward=2 * hidden_size, dropout=dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden_size)
        self.head = nn.Linear(hidden_size, n_marks)
        self.alpha = nn.Parameter(torch.full((n_marks,), -0.1))
        self.log_beta = nn.Parameter(torch.zeros(n_marks))

    def _temporal(self, t: torch.Tensor) -> torch.Tensor:
        angle = t[..., None] * self.freq
        enc = torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)
        return F.pad(enc, (0, self.hidden_size - enc.shape[-1]))

    def _encode_full(self, marks: torch.Tensor, dt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Encoder outputs ``(B, l, H)`` for token rows that already include BOS in column 0."""
        x = self.embed(marks) + self._temporal(t) + self.time_in(time_features(dt))
        causal = nn.Transformer.generate_square_subsequent_mask(marks.shape[1], device=x.device, dtype=x.dtype)
        return self.norm(self.encoder(x, mask=causal, is_causal=True))

    def encode(self, bt: BatchTensors) -> torch.Tensor:
        # padding sits after the real events and the mask is causal, so real rows never see it
        return self._encode_full(F.pad(bt.marks, (1, 0), value=self.n_marks), F.pad(bt.dt, (1, 0)),
                                 F.pad(bt.t, (1, 0)))

    def _beta(self) -> torch.Tensor:
        return torch.exp(self.log_beta)

    def intensity(self, states: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        pre = self.head(states)[..., None, :] + self.alpha * tau[..., None]
        return scaled_softplus(pre, self._beta())

    def upper_bound(self, states: torch.Tensor, tau0: torch.Tensor, tau1: torch.Tensor) -> torch.Tensor:
        slope = torch.maximum(self.alpha * tau0[:, None], self.alpha * tau1[:, None])
        return scaled_softplus(self.head(states) + slope, self._beta()).sum(-1)

    def init_carry(self, n: int, capacity: int) -> Carry:
        device, dtype = self.time_scale.device, self.time_scale.dtype
        width = capacity + 1  # BOS + events
        return (torch.zeros(n, width, device=device, dtype=torch.long),
                torch.zeros(n, width, device=device, dtype=dtype),
                torch.zeros(n, width, device=device, dtype=dtype),
                torch.zeros(n, device=device, dtype=torch.long))

    def step(self, carry: Carry, marks: torch.Tensor, dt: torch.Tensor, t: torch.Tensor) -> tuple[Carry, torch.Tensor]:
        # attention needs the whole prefix: append the event, re-encode up to the longest prefix, read each last row
        mk, gaps, times, length = (c.clone() for c in carry)
        rows = torch.arange(mk.shape[0], device=mk.device)
        mk[rows, length], gaps[rows, length], times[rows, length] = marks, dt, t
        length = length + 1
        width = int(length.max())
        out = self._encode_full(mk[:, :width], gaps[:, :width], times[:, :width])
        return (mk, gaps, times, length), out[rows, length - 1]


class TransformerHawkes(TPPBase):
    """Causal self-attention over the history; Monte-Carlo compensator for training, quadrature for evaluation.

    See the module docstring for the model and :mod:`pathways.models.tpp.base` for the score convention.

    Parameters
    ----------
    n_layers, n_heads, dropout
        Transformer encoder depth, attention heads (must divide ``hidden_size``) and dropout.
    n_mc_samples : int
        Stratified uniform Monte-Carlo points per interval for the training compensator (unbiased).
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
    >>> model = TransformerHawkes(hidden_size=8, max_epochs=2, device="cpu").fit(seqs)
    >>> bool(np.isfinite(model.score(seqs)))
    True
    """

    _module_class = TransformerHawkesModule
    _count_params = ("hidden_size", "n_layers", "n_heads", "n_mc_samples", "n_quadrature")

    def __init__(self, n_layers: int = 2, n_heads: int = 2, dropout: float = 0.0, n_mc_samples: int = 20,
                 n_quadrature: int = 32, hidden_size: int = 32,
                 max_epochs: int = 50, lr: float = 3e-3, weight_decay: float = 0.0, batch_size: int = 64,
                 patience: int | None = 5, device: str = "auto", seed: int = 0, progress: bool = False) -> None:
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.dropout = dropout
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

    def _check_params(self) -> None:
        super()._check_params()
        check_fraction("dropout", self.dropout)
        if self.hidden_size % self.n_heads:
            raise PathwaysInputError(f"hidden_size: {self.hidden_size} is not a multiple of n_heads={self.n_heads} "
                                     "(each attention head takes an equal share)")

    def _module_kwargs(self) -> dict[str, Any]:
        return {"hidden_size": self.hidden_size, "n_layers": self.n_layers, "n_heads": self.n_heads,
                "dropout": self.dropout, "n_mc_samples": self.n_mc_samples, "n_quadrature": self.n_quadrature}
