"""RMTPP (Du et al., KDD 2016): recurrent marked temporal point process with a closed-form likelihood.

A plain tanh RNN (as in the paper; or a GRU) reads ``[BOS, e_1, ..., e_n]``; each input is the mark embedding plus
features of the inter-event gap. Given the state ``h_i`` after event ``i``, the next event has ground intensity

    λ(τ) = exp(v·h_i + b + w τ)        (τ = time since t_i, normalised)

and mark distribution ``p(k | h_i) = softmax(W h_i + c)_k``, so ``λ_k(τ) = p(k | h_i) λ(τ)``. The compensator is
exact: ``∫_0^Δ λ = exp(v·h_i + b) (exp(wΔ) - 1) / w`` (``w → 0`` taken by a series), hence the likelihood, training
objective and ``score`` are exact. ``w < 0`` (a decaying intensity, as after a Hawkes excitation) leaves a
probability of no further event, which the window survival term accounts for.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from pathways.errors import PathwaysInputError
from pathways.models.tpp.base import TPPBase
from pathways.models.tpp.modules import BatchTensors, Carry, IntensityTPPModule, time_features, unpack_batch


def _expm1_ratio(x: torch.Tensor) -> torch.Tensor:
    """``(exp(x) - 1) / x`` with its limit 1 at 0 (second-order series near 0 keeps gradients finite)."""
    small = x.abs() < 1e-4
    safe = torch.where(small, torch.ones_like(x), x)
    return torch.where(small, 1 + x / 2 + x * x / 6, torch.expm1(safe) / safe)


class _TanhRNN(torch.autograd.Function):
    """``h_t = tanh(p_t + W h_{t-1})`` over positions with a hand-written backward through time.

    torch's CPU RNN records every per-step op for autograd; here the forward keeps only the outputs and the backward
    runs three small ops per step (the weight gradient is one matmul after the loop).
    """

    @staticmethod
    def forward(ctx: Any, pre: torch.Tensor, h0: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        h, weight_t, steps = h0, weight.t(), []
        for pre_t in pre.unbind(1):
            h = torch.addmm(pre_t, h, weight_t).tanh_()
            steps.append(h)
        out = torch.stack(steps, dim=1)
        ctx.save_for_backward(out, h0, weight)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out, h0, weight = ctx.saved_tensors
        slope = 1 - out * out  # tanh' at every position, in one op
        grad_h, steps = torch.zeros_like(h0), []
        for g_t, s_t in zip(reversed(grad_out.unbind(1)), reversed(slope.unbind(1))):
            g = (g_t + grad_h).mul_(s_t)
            steps.append(g)
            grad_h = g @ weight
        grad_pre = torch.stack(steps[::-1], dim=1)
        prev = torch.cat([h0[:, None], out[:, :-1]], dim=1)
        grad_weight = torch.einsum("blh,blk->hk", grad_pre, prev)
        return grad_pre, grad_h, grad_weight


class RMTPPModule(IntensityTPPModule):
    """Torch module of :class:`pathways.models.RMTPP` (see the module docstring for the model)."""

    exact_likelihood = True

    def __init__(self, n_marks: int, time_scale: float, hidden_size: int = 32, rnn_type: str = "rnn",
                 thinning_window: float = 2.0) -> None:
        super().__init__(n_marks, time_scale, thinning_window=thinning_window)
        rnn = {"gru": nn.GRU, "rnn": nn.RNN}[rnn_type]
        self.embed = nn.Embedding(n_marks + 1, hidden_size)
        self.time_in = nn.Linear(2, hidden_size)
        self.rnn = rnn(hidden_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, n_marks + 1)  # [log ground intensity at τ = 0, type logits]
        self.w = nn.Parameter(torch.tensor(-0.1))

    def _inputs(self, marks: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        return self.embed(marks) + self.time_in(time_features(dt))

    def encode(self, bt: BatchTensors) -> torch.Tensor:
        marks = F.pad(bt.marks, (1, 0), value=self.n_marks)
        x = self._inputs(marks, F.pad(bt.dt, (1, 0)))
        if isinstance(self.rnn, nn.GRU):
            return self.rnn(x)[0]
        # same parameters and result as self.rnn(x), cheaper backward (see _TanhRNN)
        pre = F.linear(x, self.rnn.weight_ih_l0, self.rnn.bias_ih_l0 + self.rnn.bias_hh_l0)
        return _TanhRNN.apply(pre, x.new_zeros(x.shape[0], self.rnn.hidden_size), self.rnn.weight_hh_l0)

    def _parts(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log ground intensity at τ = 0 ``(...)`` and log mark probabilities ``(..., K)``."""
        out = self.head(states)
        return out[..., 0], F.log_softmax(out[..., 1:], -1)

    def intensity(self, states: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        a, logp = self._parts(states)
        return torch.exp(a[..., None, None] + self.w * tau[..., None] + logp[..., None, :])

    def terms(self, batch: Any, method: str = "exact") -> tuple[torch.Tensor, torch.Tensor]:
        """Exact pieces (``method`` is ignored): heads evaluated once for events and compensators."""
        bt = unpack_batch(batch, self.time_scale)
        a, logp = self._parts(self.encode(bt))
        mark_term = torch.gather(logp[:, :-1], -1, bt.marks[..., None]).squeeze(-1)
        event = (a[:, :-1] + self.w * bt.dt + mark_term - torch.log(self.time_scale)) * bt.mask
        return event, self._integral(a, bt.span) * bt.interval_mask

    def _integral(self, a: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        return torch.exp(a) * tau * _expm1_ratio(self.w * tau)

    def compensator(self, states: torch.Tensor, span: torch.Tensor, method: str) -> torch.Tensor:
        """Exact ``∫_0^Δ λ`` per interval (``method`` is ignored: no estimator is needed)."""
        return self._integral(self._parts(states)[0], span)

    def cumulative_compensator(self, states: torch.Tensor, grid: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        return self._integral(self._parts(states)[0][..., None], grid)

    def upper_bound(self, states: torch.Tensor, tau0: torch.Tensor, tau1: torch.Tensor) -> torch.Tensor:
        # λ is exp of an affine function of τ: monotone, so its maximum on [τ0, τ1] sits at an endpoint.
        a = self._parts(states)[0]
        return torch.exp(a + torch.maximum(self.w * tau0, self.w * tau1))

    def init_carry(self, n: int, capacity: int) -> Carry:
        return (torch.zeros(n, self.rnn.hidden_size, device=self.time_scale.device, dtype=self.time_scale.dtype),)

    def step(self, carry: Carry, marks: torch.Tensor, dt: torch.Tensor, t: torch.Tensor) -> tuple[Carry, torch.Tensor]:
        out, h_new = self.rnn(self._inputs(marks, dt)[:, None, :], carry[0][None].contiguous())
        return (h_new[0],), out[:, 0]


class RMTPP(TPPBase):
    """Exact log-likelihood (closed-form compensator); ``sample`` thins with the exact endpoint maximum of the
    monotone intensity.

    See the module docstring for the model and :mod:`pathways.models.tpp.base` for the score convention.

    Parameters
    ----------
    rnn_type : {"rnn", "gru"}
        Recurrent cell reading the history: the paper's plain tanh RNN (default, about twice as fast on CPU) or a
        GRU.
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
    >>> model = RMTPP(hidden_size=8, max_epochs=2, device="cpu").fit(seqs)
    >>> bool(np.isfinite(model.score(seqs)))
    True
    """

    _module_class = RMTPPModule

    def __init__(self, rnn_type: str = "rnn", hidden_size: int = 32,
                 max_epochs: int = 50, lr: float = 3e-3, weight_decay: float = 0.0, batch_size: int = 64,
                 patience: int | None = 5, device: str = "auto", seed: int = 0, progress: bool = False) -> None:
        self.rnn_type = rnn_type
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
        if self.rnn_type not in ("rnn", "gru"):
            raise PathwaysInputError(f"rnn_type: expected 'rnn' or 'gru', got {self.rnn_type!r}")

    def _module_kwargs(self) -> dict[str, Any]:
        return {"hidden_size": self.hidden_size, "rnn_type": self.rnn_type}
