"""Transformer Hawkes process (Zuo et al., ICML 2020).

A causal transformer encoder reads ``[BOS, e_1, ..., e_n]``; each token is the mark embedding plus a sinusoidal
encoding of the event's time *since the observation start* and a linear map of its inter-event gap features (times
are normalised by the mean training gap; calendar times never reach the network). With ``h_i`` the output at event
``i``, the intensity on the following interval is

    λ_k(τ) = s_k log(1 + exp((α_k τ + w_k·h_i + b_k) / s_k)) + log(1 + exp(u_k·h_i + c_k)),

(the paper divides τ by the absolute time of event ``i``; pathways uses the normalised gap instead). The second
term, constant on the interval, is pathways' addition: the paper's single softplus of an affine function of τ decays
to zero (``α_k < 0``) or grows without bound, while a self-exciting history relaxes towards a positive rate; for a
negative argument the first term is close to ``exp((α_k τ + ...) / s_k)``, so the sum has the shape ``μ + a e^{-βτ}``
of an exponential Hawkes intensity between events. Checkpoints written before this term (no ``floor`` weights)
are refused at load.

Exact compensator: the argument of each softplus is affine in τ, so with ``x = (w_k·h_i + b_k + α_k τ) / s_k``

    ∫_0^Δ λ_k(τ) dτ = s_k² / α_k · [G(x(Δ)) - G(x(0))],    G(x) = ∫_{-∞}^x log(1 + e^u) du = -Li₂(-e^x),

``Li₂`` being the dilogarithm (the constant term adds ``Δ`` times itself). ``G`` is evaluated for ``x <= 0`` by the Bernoulli series
``Li₂(z) = Σ_n B_n w^{n+1} / (n+1)!`` with ``w = -log(1 - z)`` (here ``|w| <= log 2``: eight terms reach float64
precision) and for ``x > 0`` by the reflection ``G(x) = x²/2 + π²/6 - G(-x)``; the difference of the two ends is
formed without cancelling the large ``x²/2`` parts. When ``|x(Δ) - x(0)| < 0.25`` (``α_k`` near 0) the divided
difference would lose digits, and a 3-node Gauss-Legendre rule of the mean of softplus on ``[x(0), x(Δ)]`` is used
instead (error below ``0.25⁶ / 2016000`` of the integrand's sixth derivative, far under float32 precision). The
likelihood, the training objective and ``score`` are therefore exact: no Monte Carlo, no quadrature parameter.

Thinning bound: for each k the argument of the softplus is affine in τ and the other term constant, so λ_k is
monotone and its maximum on ``[τ0, τ1]`` is at an endpoint; the bound is ``Σ_k max(λ_k(τ0), λ_k(τ1))``.
"""
from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from pathways.errors import PathwaysInputError
from pathways.models.params import check_attention_heads, check_fraction
from pathways.models.tpp.base import TPPBase
from pathways.models.tpp.modules import (BatchTensors, Carry, IntensityTPPModule, event_embedding, scaled_softplus,
                                         unpack_batch)


#: B_{2k} / (2k + 1)! for k = 1..8: the Bernoulli series of the dilogarithm (terms beyond are below 1e-18 here)
_LI2_COEFS = (1 / 36, -1 / 3600, 1 / 211680, -1 / 10886400, 5 / 2634508800, -691 / 17000000784000,
              7 / 7846046208000, -3617 / 181400588328960000)
_PI2_6 = math.pi ** 2 / 6
#: below this width of the softplus argument range the divided difference of G gives way to Gauss-Legendre
_NARROW = 0.25
_GL3_NODES = (0.5 - 0.5 * math.sqrt(0.6), 0.5, 0.5 + 0.5 * math.sqrt(0.6))
_GL3_WEIGHTS = (5 / 18, 8 / 18, 5 / 18)


def _g_negative(x: torch.Tensor) -> torch.Tensor:
    """``G(x) = -Li₂(-e^x)`` for ``x <= 0``: ``u + u²/4 + u Σ_k B_2k u^2k / (2k+1)!`` with ``u = log(1 + e^x)``."""
    u = F.softplus(x)
    u2 = u * u
    acc = torch.full_like(u, _LI2_COEFS[-1])
    for c in reversed(_LI2_COEFS[:-1]):  # Horner in u²
        acc = acc * u2 + c
    return u + u2 * 0.25 + u * u2 * acc


class _SoftplusAreaDifference(torch.autograd.Function):
    """``G(x1) - G(x0)`` with ``G' = softplus``, written so that the ``x²/2`` parts of ``G`` never cancel."""

    @staticmethod
    def forward(ctx: Any, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x0, x1)
        r0, r1 = x0.clamp_min(0), x1.clamp_min(0)
        poly = (r1 - r0) * (r1 + r0) * 0.5 + ((x1 > 0).to(x0.dtype) - (x0 > 0).to(x0.dtype)) * _PI2_6
        s0 = torch.where(x0 > 0, -1.0, 1.0).to(x0.dtype)
        s1 = torch.where(x1 > 0, -1.0, 1.0).to(x1.dtype)
        return poly + s1 * _g_negative(-x1.abs()) - s0 * _g_negative(-x0.abs())

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x0, x1 = ctx.saved_tensors
        return -grad * F.softplus(x0), grad * F.softplus(x1)


def softplus_interval_integral(pre: torch.Tensor, slope: torch.Tensor, beta: torch.Tensor,
                               span: torch.Tensor) -> torch.Tensor:
    """Exact ``∫_0^Δ β softplus((pre + slope τ) / β) dτ`` elementwise (broadcast), ``Δ = span >= 0``.

    See the module docstring: divided difference of ``G = -Li₂(-e^x)`` when the argument moves by at least
    ``_NARROW``, 3-node Gauss-Legendre of the (then nearly linear) softplus otherwise.
    """
    x0 = pre / beta
    dx = slope * span / beta
    wide = dx.abs() >= _NARROW
    safe_dx = torch.where(wide, dx, torch.ones_like(dx))
    mean_wide = _SoftplusAreaDifference.apply(x0, x0 + safe_dx) / safe_dx
    narrow_dx = torch.where(wide, torch.zeros_like(dx), dx)
    mean_narrow = sum(w * F.softplus(x0 + u * narrow_dx) for u, w in zip(_GL3_NODES, _GL3_WEIGHTS))
    return beta * span * torch.where(wide, mean_wide, mean_narrow)


def _causal_layer(layer: nn.TransformerEncoderLayer, x: torch.Tensor) -> torch.Tensor:
    """``layer(x, is_causal=True)`` for a batch-first, pre-norm ``nn.TransformerEncoderLayer``, written out.

    Same parameters, same operations (layer norm, packed QKV projection, causal scaled dot-product attention, output
    projection, residual, layer norm, ReLU feed-forward, residual, with the layer's dropouts), without the generic
    module's detours: no sequence-first transposes and copies of the packed projection, no mask tensor (the causal
    structure is the attention kernel's ``is_causal``).
    """
    attn = layer.self_attn
    n_batch, width, hidden = x.shape
    heads = attn.num_heads
    y = F.layer_norm(x, (hidden,), layer.norm1.weight, layer.norm1.bias, layer.norm1.eps)
    qkv = F.linear(y, attn.in_proj_weight, attn.in_proj_bias).view(n_batch, width, 3, heads, hidden // heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, heads, l, head size) views
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=attn.dropout if layer.training else 0.0, is_causal=True)
    out = F.linear(out.transpose(1, 2).reshape(n_batch, width, hidden), attn.out_proj.weight, attn.out_proj.bias)
    x = x + layer.dropout1(out)
    y = F.layer_norm(x, (hidden,), layer.norm2.weight, layer.norm2.bias, layer.norm2.eps)
    return x + layer.dropout2(layer.linear2(layer.dropout(F.relu(layer.linear1(y)))))


class CausalAttentionEncoder(metaclass=ABCMeta):
    """History encoder shared by the attention models (THP, SAHP): tokens ``[BOS, e_1, ..., e_n]``, pre-norm causal
    transformer layers (:func:`_causal_layer`), a final layer norm; sampling re-encodes the growing prefix.

    Mixed into an :class:`IntensityTPPModule`; the subclass calls :meth:`_init_encoder` and gives
    :meth:`_token_inputs` (token embeddings from marks, normalised gaps and times since the window start).
    """

    def _init_encoder(self, n_marks: int, hidden_size: int, n_layers: int, n_heads: int, dropout: float) -> None:
        self.hidden_size = hidden_size
        self.embed = nn.Embedding(n_marks + 1, hidden_size)
        self.time_in = nn.Linear(2, hidden_size)
        layer = nn.TransformerEncoderLayer(hidden_size, n_heads, dim_feedforward=2 * hidden_size, dropout=dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden_size)

    @abstractmethod
    def _token_inputs(self, marks: torch.Tensor, dt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Token embeddings ``(B, l, H)``: ``_base_inputs`` plus the model's own time encoding."""

    def _base_inputs(self, marks: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        """``embed(marks) + time_in(time_features(dt))``, as one matmul (:func:`event_embedding`)."""
        return event_embedding(self.embed, self.time_in, marks, dt)

    def _encode_full(self, marks: torch.Tensor, dt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Encoder outputs ``(B, l, H)`` for token rows that already include BOS in column 0."""
        x = self._token_inputs(marks, dt, t)
        for layer in self.encoder.layers:
            x = _causal_layer(layer, x)
        return self.norm(x)

    def encode(self, bt: BatchTensors) -> torch.Tensor:
        # padding sits after the real events and the attention is causal, so real rows never see it
        return self._encode_full(F.pad(bt.marks, (1, 0), value=self.n_marks), F.pad(bt.dt, (1, 0)),
                                 F.pad(bt.t, (1, 0)))

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


class TransformerHawkesModule(CausalAttentionEncoder, IntensityTPPModule):
    """Torch module of :class:`pathways.models.TransformerHawkes` (see the module docstring for the model)."""

    exact_likelihood = True

    def __init__(self, n_marks: int, time_scale: float, hidden_size: int = 32, n_layers: int = 2, n_heads: int = 2,
                 dropout: float = 0.0, thinning_window: float = 2.0) -> None:
        super().__init__(n_marks, time_scale, thinning_window=thinning_window)
        self._init_encoder(n_marks, hidden_size, n_layers, n_heads, dropout)
        # frequencies from 1 to 1/1000 per mean gap: the encoding resolves single gaps and whole windows
        n_freq = hidden_size // 2
        freq = torch.exp(-math.log(1000.0) * torch.arange(n_freq, dtype=torch.float32) / max(n_freq - 1, 1))
        self.register_buffer("freq", freq)
        self.head = nn.Linear(hidden_size, n_marks)
        self.alpha = nn.Parameter(torch.full((n_marks,), -0.1))
        self.log_beta = nn.Parameter(torch.zeros(n_marks))
        # the rate each type relaxes to between events, started low (softplus(-2) = 0.13 per mean gap)
        self.floor = nn.Linear(hidden_size, n_marks)
        nn.init.constant_(self.floor.bias, -2.0)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """``nn.Module.load_state_dict``, refusing weights from before the relaxation-rate term, by name."""
        if strict and "floor.weight" not in state_dict:
            raise PathwaysInputError(
                "TransformerHawkes weights without the 'floor' term (written by a pathways before the intensity "
                "gained its relaxation rate, see pathways.models.tpp.thp): they cannot be loaded, refit the model")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def _temporal(self, t: torch.Tensor) -> torch.Tensor:
        angle = t[..., None] * self.freq
        enc = torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)
        return F.pad(enc, (0, self.hidden_size - enc.shape[-1]))

    def _token_inputs(self, marks: torch.Tensor, dt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self._base_inputs(marks, dt) + self._temporal(t)

    def _beta(self) -> torch.Tensor:
        return torch.exp(self.log_beta)

    def _floor(self, states: torch.Tensor) -> torch.Tensor:
        """The constant part ``softplus(u_k·h + c_k)`` ``(..., K)`` of each type's intensity."""
        return F.softplus(self.floor(states))

    def intensity(self, states: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        pre = self.head(states)[..., None, :] + self.alpha * tau[..., None]
        return scaled_softplus(pre, self._beta()) + self._floor(states)[..., None, :]

    def _integral(self, pre: torch.Tensor, floor: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
        """Exact ``∫_0^span Σ_k λ_k`` for head outputs ``pre`` and constant parts ``floor`` ``(..., K)`` and spans
        ``(...)``."""
        return softplus_interval_integral(pre, self.alpha, self._beta(), span[..., None]).sum(-1) + span * floor.sum(-1)

    def compensator(self, states: torch.Tensor, span: torch.Tensor, method: str) -> torch.Tensor:
        """Exact ``∫ Σ_k λ_k`` over each interval (``method`` is ignored: no estimator is needed)."""
        return self._integral(self.head(states), self._floor(states), span)

    def cumulative_compensator(self, states: torch.Tensor, grid: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        return self._integral(self.head(states)[..., None, :], self._floor(states)[..., None, :], grid)

    def terms(self, batch: Any, method: str = "exact") -> tuple[torch.Tensor, torch.Tensor]:
        """Exact pieces (``method`` is ignored); the head runs once for events and compensators, and only the
        observed type's intensity is evaluated at each event."""
        bt = unpack_batch(batch, self.time_scale)
        states = self.encode(bt)
        pre, floor = self.head(states), self._floor(states)  # (B, L + 1, K)
        beta = self._beta()
        mark = bt.marks[..., None]
        at_event = torch.gather(pre[:, :-1], -1, mark)[..., 0] + self.alpha[bt.marks] * bt.dt
        lam = scaled_softplus(at_event, beta[bt.marks]) + torch.gather(floor[:, :-1], -1, mark)[..., 0]
        log_lam = (torch.log(lam.clamp_min(1e-30)) - torch.log(self.time_scale)) * bt.mask
        return log_lam, self._integral(pre, floor, bt.span) * bt.interval_mask

    def upper_bound(self, states: torch.Tensor, tau0: torch.Tensor, tau1: torch.Tensor) -> torch.Tensor:
        slope = torch.maximum(self.alpha * tau0[:, None], self.alpha * tau1[:, None])
        return (scaled_softplus(self.head(states) + slope, self._beta()) + self._floor(states)).sum(-1)


class TransformerHawkes(TPPBase):
    """Causal self-attention over the history; exact likelihood (closed-form compensator, see the module docstring).

    See the module docstring for the model and :mod:`pathways.models.tpp.base` for the score convention.

    Parameters
    ----------
    n_layers, n_heads, dropout
        Transformer encoder depth, attention heads (must divide ``hidden_size``) and dropout.
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
    _count_params = ("hidden_size", "n_layers", "n_heads")

    def __init__(self, n_layers: int = 2, n_heads: int = 2, dropout: float = 0.0, hidden_size: int = 32,
                 max_epochs: int = 50, lr: float = 3e-3, weight_decay: float = 0.0, batch_size: int = 64,
                 patience: int | None = 5, device: str = "auto", seed: int = 0, progress: bool = False) -> None:
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.dropout = dropout
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
        check_attention_heads(self.hidden_size, self.n_heads)

    def _module_kwargs(self) -> dict[str, Any]:
        return {"hidden_size": self.hidden_size, "n_layers": self.n_layers, "n_heads": self.n_heads,
                "dropout": self.dropout}
