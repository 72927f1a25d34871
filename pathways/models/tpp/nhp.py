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

    def encode(self, bt: BatchTensors) -> torch.Tensor:
        marks = F.pad(bt.marks, (1, 0), value=self.n_marks)
        dt = F.pad(bt.dt, (1, 0))
        gx = self.gates_x(self.embed(marks))
        if torch.is_grad_enabled() and gx.device.type == "cpu":  # hand-written backward through time
            return _CTLSTMScan.apply(gx, dt, self.gates_h.weight)
        return _ct_lstm_forward(gx, dt, self.gates_h.weight)

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
        state = torch.cat(_cell(self.gates_x(self.embed(marks)), self._split(carry[0]), dt,
                              self.gates_h.weight), dim=-1)
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


def _cell(gx: torch.Tensor, parts: tuple[torch.Tensor, ...], dt: torch.Tensor,
          w_h: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """One event: decay the previous ``(c, c_bar, delta, o)`` by ``dt`` and apply the gates.

    ``gx`` is the input part of the gates, ``w_h`` the recurrent weight ``(7H, H)``. Written with fused ops
    (addcmul/addmm, one sigmoid over the five sigmoid gates laid out contiguously): the recurrence runs once per
    position, so op count is its cost.
    """
    c, c_bar, delta, o = parts
    h = c.shape[-1]
    c_t = torch.addcmul(c_bar, c - c_bar, torch.exp(delta * -dt[:, None]))
    pre = torch.addmm(gx, o * torch.tanh(c_t), w_h.t())
    gates = torch.sigmoid(pre[:, :5 * h])
    i, f, o_new, i_bar, f_bar = gates.split(h, dim=-1)
    z = torch.tanh(pre[:, 5 * h:6 * h])
    return (torch.addcmul(f * c_t, i, z), torch.addcmul(f_bar * c_bar, i_bar, z), F.softplus(pre[:, 6 * h:]), o_new)


def _ct_lstm_forward(gx: torch.Tensor, dt: torch.Tensor, w_h: torch.Tensor) -> torch.Tensor:
    """Interval states ``(B, T, 4H)`` (``[c, c_bar, delta, o]`` after each token) from the input gates ``(B, T, 7H)``."""
    h = w_h.shape[1]
    zeros = gx.new_zeros(gx.shape[0], h)
    parts, out = (zeros, zeros, zeros, zeros), []
    # unbind once: indexing gx[:, i] in the loop would make each step's backward zero-fill a full-size gradient
    for gx_i, dt_i in zip(gx.unbind(1), dt.unbind(1)):  # recurrence over positions, vectorised over the batch
        parts = _cell(gx_i, parts, dt_i, w_h)
        out.append(torch.cat(parts, dim=-1))
    return torch.stack(out, dim=1)


#: gradient blocks of the state [c, c_bar, delta, o] feeding the gate pre-activations [i, f, o, i_bar, f_bar, z
#: (through c), z (through c_bar), delta] (see _CTLSTMScan.backward)
_GATE_SOURCES = (0, 0, 3, 1, 1, 0, 1, 2)


class _CTLSTMScan(torch.autograd.Function):
    """The continuous-time LSTM recurrence with a hand-written backward through time.

    Autograd records about sixty small ops per position for this cell; their backward dominates a training step.
    The forward runs the recurrence without recording, then recomputes every intermediate for all positions at
    once (the previous states are known after the scan). The backward precomputes, for all positions, the
    coefficients that map the gradient of a state to the gate pre-activations and to the previous state; its loop
    over positions is then about ten ops, and the weight gradient one matmul after it.
    """

    @staticmethod
    def forward(ctx: Any, gx: torch.Tensor, dt: torch.Tensor, w_h: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            states = _ct_lstm_forward(gx, dt, w_h)
        ctx.save_for_backward(gx, dt, w_h, states)
        return states

    @staticmethod
    def backward(ctx: Any, grad_states: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        gx, dt, w_h, states = ctx.saved_tensors
        h = w_h.shape[1]
        n_batch, width = gx.shape[:2]
        # time-major, previous state of every position (zeros before the first token)
        cur = states.transpose(0, 1)
        prev = torch.cat([cur.new_zeros(1, n_batch, 4 * h), cur[:-1]])
        c, c_bar, delta, o = prev.split(h, dim=-1)
        decay = torch.exp(delta * -dt.t()[..., None])
        c_t = torch.addcmul(c_bar, c - c_bar, decay)
        tanh_ct = torch.tanh(c_t)
        h_dec = o * tanh_ct
        pre = torch.addmm(gx.transpose(0, 1).reshape(-1, 7 * h), h_dec.reshape(-1, h), w_h.t()).view(width, n_batch,
                                                                                                      7 * h)
        gates = torch.sigmoid(pre[..., :5 * h])
        i, f, o_new, i_bar, f_bar = gates.split(h, dim=-1)
        z = torch.tanh(pre[..., 5 * h:6 * h])
        # ∂pre/∂(state gradient), blocks in _GATE_SOURCES order
        coef = torch.cat([z * i * (1 - i), c_t * f * (1 - f), o_new * (1 - o_new), z * i_bar * (1 - i_bar),
                          c_bar * f_bar * (1 - f_bar), i * (1 - z * z), i_bar * (1 - z * z),
                          torch.sigmoid(pre[..., 6 * h:])], dim=-1)
        w8 = torch.cat([w_h[:6 * h], w_h[5 * h:]])  # rows of [i, f, o, i_bar, f_bar, z, z, delta]
        slope = o * (1 - tanh_ct * tanh_ct)  # ∂h_dec/∂c_t
        # ∂(previous state)/∂c_t: c -> decay, c_bar -> 1 - decay, delta -> -dt (c - c_bar) decay
        back_c = torch.stack([decay, 1 - decay, -dt.t()[..., None] * (c - c_bar) * decay], dim=2)
        source = torch.tensor(_GATE_SOURCES, device=gx.device)
        grad_cur = grad_states.transpose(0, 1).contiguous()  # (T, B, 4H): becomes the total gradient of each state
        g8 = gx.new_empty(width, n_batch, 8 * h)
        for t in range(width - 1, -1, -1):
            g = grad_cur[t].view(n_batch, 4, h)
            torch.mul(g[:, source].view(n_batch, 8 * h), coef[t], out=g8[t])
            if t == 0:
                break
            g_hdec = g8[t] @ w8
            g_ct = torch.addcmul(g[:, 0] * f[t], g_hdec, slope[t])
            into = grad_cur[t - 1].view(n_batch, 4, h)
            into[:, :3].addcmul_(g_ct[:, None], back_c[t])
            into[:, 1].addcmul_(g[:, 1], f_bar[t])
            into[:, 3].addcmul_(g_hdec, tanh_ct[t])
        grad_pre = torch.cat([g8[..., :5 * h], g8[..., 5 * h:6 * h] + g8[..., 6 * h:7 * h], g8[..., 7 * h:]], dim=-1)
        grad_w = grad_pre.reshape(-1, 7 * h).t() @ h_dec.reshape(-1, h)
        return grad_pre.transpose(0, 1), None, grad_w
