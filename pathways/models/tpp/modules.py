"""Shared torch machinery of the neural temporal point processes.

Every network sees a sequence as ``[BOS, e_1, ..., e_n]``: a begin-of-sequence token at the observation start
followed by the events. Encoding it yields one *interval state* per row, ``states[:, i]`` = the summary of the
history up to and including event ``i`` (row 0 = empty history). Interval ``i`` runs from ``t_i`` (``t_0`` = 0, the
window start) to ``t_{i+1}``; the last one, from ``t_n`` to the window end ``T``, only enters the likelihood as
survival. Inside the modules time is divided by ``time_scale`` (the mean training gap): intensities are computed in
these normalised units and converted back (``log λ = log λ_norm - log time_scale``, the compensator is unit-free).

The log-likelihood of one sequence is

    log L = Σ_i log λ_{k_i}(t_i | H_{t_i}) - ∫_0^T Σ_k λ_k(t | H_t) dt,

the integral being split over the ``n + 1`` intervals. Subclasses give ``encode`` (history -> interval states),
``intensity`` (state, elapsed time -> per-mark intensity), ``init_carry``/``step`` (one-event recurrence used when
sampling) and ``upper_bound`` (a proven bound of the total intensity on an interval, for thinning).
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

Carry = tuple[torch.Tensor, ...]


@dataclass
class BatchTensors:
    """A ``PaddedBatch`` unpacked into the tensors the modules need (normalised time units)."""

    dt: torch.Tensor  # (B, L) gaps t_i - t_{i-1} (t_0 = 0), zero on padding
    t: torch.Tensor  # (B, L) times since the observation start, zero on padding
    marks: torch.Tensor  # (B, L) long
    mask: torch.Tensor  # (B, L) bool
    lengths: torch.Tensor  # (B,) long
    span: torch.Tensor  # (B, L + 1) interval lengths, last one = window end - last event
    interval_mask: torch.Tensor  # (B, L + 1) bool, rows 0..n valid


def unpack_batch(batch: Any, scale: torch.Tensor) -> BatchTensors:
    """Turn a ``PaddedBatch`` into normalised tensors on the module's device and dtype.

    Parameters
    ----------
    batch : PaddedBatch
        ``times`` (B, L) relative to each sequence's start, ``marks``, ``mask``, ``lengths``, ``end`` (window length).
    scale : torch.Tensor
        Scalar time scale (buffer of the module); sets device and dtype.
    """
    device, dtype = scale.device, scale.dtype
    mask = torch.as_tensor(batch.mask, device=device).bool()
    t = torch.as_tensor(batch.times, device=device).to(dtype) / scale * mask
    marks = torch.as_tensor(batch.marks, device=device).long() * mask
    lengths = mask.sum(1)
    end = torch.as_tensor(batch.end, device=device).to(dtype) / scale
    prev = F.pad(t[:, :-1], (1, 0))
    dt = ((t - prev) * mask).clamp_min(0.0)
    last = torch.gather(F.pad(t, (1, 0)), 1, lengths[:, None]).squeeze(1)  # t_n (0 if no event)
    span = F.pad(dt, (0, 1)).scatter(1, lengths[:, None], (end - last).clamp_min(0.0)[:, None])
    rows = torch.arange(t.shape[1] + 1, device=device)
    interval_mask = rows[None, :] <= lengths[:, None]
    return BatchTensors(dt, t, marks, mask, lengths, span, interval_mask)


def time_features(dt: torch.Tensor) -> torch.Tensor:
    """Bounded-growth features of normalised gaps, ``(log1p(dt), 1 - exp(-dt))`` stacked on the last axis."""
    return torch.stack([torch.log1p(dt), -torch.expm1(-dt)], dim=-1)


def scaled_softplus(x: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """``softplus_s(x) = s log(1 + exp(x / s))`` with a positive per-mark scale ``s`` (Mei & Eisner, 2017)."""
    return beta * F.softplus(x / beta)


def gauss_legendre(n: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre nodes and weights on [0, 1] (weights sum to 1)."""
    x, w = np.polynomial.legendre.leggauss(n)
    return (torch.as_tensor((x + 1) / 2, device=device, dtype=dtype),
            torch.as_tensor(w / 2, device=device, dtype=dtype))


def next_event_from_grid(lam_k: torch.Tensor, grid: torch.Tensor,
                         compensator: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Expected gap and mark distribution of the next event, conditional on it falling in ``[0, grid[-1]]``.

    Parameters
    ----------
    lam_k : (..., G, K) intensities on the grid.
    grid : (G,) increasing elapsed times starting at 0.
    compensator : (..., G) ``Λ(τ)`` on the grid when known exactly; else the cumulative trapezoid of ``λ``.

    The density ``f(τ) = λ(τ) exp(-Λ(τ))`` is integrated by the trapezoid rule: ``E[τ] = ∫ τ f / ∫ f`` and
    ``p_k = ∫ λ_k exp(-Λ) / ∫ f``.
    """
    lam = lam_k.sum(-1)
    if compensator is None:
        seg = (lam[..., 1:] + lam[..., :-1]) * 0.5 * torch.diff(grid)
        compensator = F.pad(torch.cumsum(seg, -1), (1, 0))
    surv = torch.exp(-compensator)
    total = torch.trapezoid(lam * surv, grid, dim=-1).clamp_min(1e-30)
    mean = torch.trapezoid(grid * lam * surv, grid, dim=-1) / total
    probs = torch.trapezoid((lam_k * surv[..., None]).transpose(-1, -2), grid, dim=-1)
    return mean, probs / probs.sum(-1, keepdim=True).clamp_min(1e-30)


def _event_features(marks: torch.Tensor, dt: torch.Tensor, n_marks: int) -> torch.Tensor:
    """``[one-hot mark, time_features(dt)]`` ``(..., n_marks + 2)``."""
    return torch.cat([F.one_hot(marks, n_marks).to(dt.dtype), time_features(dt)], -1)


def event_embedding(embed: nn.Embedding, time_in: nn.Linear, marks: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    """``embed(marks) + time_in(time_features(dt))`` as one matmul of ``[one-hot mark, gap features]`` with
    ``[E; W_time^T]``: no embedding gather, whose backward (a sort and a scatter on CPU) costs more than the matmul;
    same parameters, same values and gradients."""
    feats = _event_features(marks, dt, embed.num_embeddings)
    return torch.matmul(feats, torch.cat([embed.weight, time_in.weight.t()])) + time_in.bias


def folded_inputs(embed: nn.Embedding, time_in: nn.Linear, weight: torch.Tensor, bias: torch.Tensor,
                  marks: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    """``event_embedding(...) @ weight.T + bias`` as one matmul.

    The mark embedding, the gap features' linear map and a recurrent cell's input projection ``weight`` are folded
    into one ``(K + 3, out)`` matrix applied to ``[one-hot mark, gap features]``: no embedding gather and no
    ``(..., H) @ (H, out)`` product over every position; the same parameters get the same gradients.
    """
    feats = _event_features(marks, dt, embed.num_embeddings)
    folded = torch.cat([embed.weight, time_in.weight.t()]) @ weight.t()
    return torch.matmul(feats, folded) + F.linear(time_in.bias, weight, bias)


class _GRUScan(torch.autograd.Function):
    """A one-layer ``nn.GRU`` over whole sequences, from its input gate pre-activations ``gi = x W_ih^T + b_ih``,
    with a hand-written backward through time.

    torch's CPU GRU records about fifteen autograd nodes per position; their backward dominates a training step.
    Here the forward loop runs seven ops per position writing every gate into preallocated time-major buffers
    (nothing recorded, nothing recomputed). The backward builds, for all positions at once, the coefficients that
    map the gradient of ``h_t`` to the gate pre-activations; its loop over positions is then two ops; the recurrent
    weight gradient is one matmul after it. The input projection stays outside (autograd differentiates it, e.g.
    through :func:`folded_inputs`).

    Gates (torch's layout ``[r, z, n]``): ``r, z = σ(gi + h W_h + b_h)``, ``n = tanh(gi_n + r ⊙ (h W_hn + b_hn))``,
    ``h' = (1 - z) ⊙ n + z ⊙ h``.
    """

    @staticmethod
    def forward(ctx: Any, gi: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor) -> torch.Tensor:
        hid = h0.shape[-1]
        gi = gi.transpose(0, 1)  # time-major views; the buffers below are time-major and contiguous
        steps, batch = gi.shape[:2]
        states = gi.new_empty(steps + 1, batch, hid)  # h_0 .. h_T
        states[0] = h0
        gh = gi.new_empty(steps, batch, 3 * hid)
        rz = gi.new_empty(steps, batch, 2 * hid)
        n = gi.new_empty(steps, batch, hid)
        scratch = gi.new_empty(batch, hid)
        w_t = w_hh.t().contiguous()
        # per-position views made once (indexing inside the loop costs as much as the ops)
        hs, ghs, rzs, ns = states.unbind(0), gh.unbind(0), rz.unbind(0), n.unbind(0)
        gi_rz, gi_n = gi[..., :2 * hid].unbind(0), gi[..., 2 * hid:].unbind(0)
        gh_rz, gh_n = gh[..., :2 * hid].unbind(0), gh[..., 2 * hid:].unbind(0)
        rs, zs = rz[..., :hid].unbind(0), rz[..., hid:].unbind(0)
        for t in range(steps):  # seven ops per position
            torch.addmm(b_hh, hs[t], w_t, out=ghs[t])
            torch.add(gi_rz[t], gh_rz[t], out=rzs[t]).sigmoid_()
            torch.addcmul(gi_n[t], rs[t], gh_n[t], out=ns[t]).tanh_()
            torch.sub(hs[t], ns[t], out=scratch)
            torch.addcmul(ns[t], zs[t], scratch, out=hs[t + 1])
        ctx.save_for_backward(states, rz, n, gh, w_hh)
        return states[1:].transpose(0, 1)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor, ...]:
        states, rz, n, gh, w_hh = ctx.saved_tensors
        hid = states.shape[-1]
        prev = states[:-1]
        r, z = rz[..., :hid], rz[..., hid:]
        # coef[t] maps the gradient g of h_t to ∂/∂gh (r, z, n parts) and to h_{t-1} directly (z):
        # the recurrent gradient is (g ⊗ coef) @ [W_hh; I]
        coef = states.new_empty(*z.shape[:2], 4, hid)
        d_n = (1 - z) * (1 - n * n)  # ∂h'/∂(pre-activation of n) = ∂h'/∂gi_n
        torch.mul(d_n * gh[..., 2 * hid:], r * (1 - r), out=coef[:, :, 0])
        torch.mul(prev - n, z * (1 - z), out=coef[:, :, 1])
        torch.mul(d_n, r, out=coef[:, :, 2])
        coef[:, :, 3] = z
        w_ext = torch.cat([w_hh, torch.eye(hid, dtype=w_hh.dtype, device=w_hh.device)], dim=0)  # (4H, H)
        grad_out = grad_out.transpose(0, 1)
        g_all = torch.empty_like(prev)  # gradient reaching each h_t: its own output's plus the recurrent one
        g_all[-1] = grad_out[-1]
        coefs, outs, gs = coef.unbind(0), grad_out.unbind(0), g_all.unbind(0)
        g_cols = g_all[:, :, None].unbind(0)
        scratch = coef.new_empty(coef.shape[1:])
        flat = scratch.view(scratch.shape[0], -1)
        for t in range(prev.shape[0] - 1, 0, -1):  # two ops per position
            torch.mul(coefs[t], g_cols[t], out=scratch)
            torch.addmm(outs[t - 1], flat, w_ext, out=gs[t - 1])
        carry = (coef[0] * g_all[0, :, None]).flatten(1) @ w_ext  # gradient of h_0
        grad_gh = (coef[:, :, :3] * g_all[:, :, None]).flatten(2)
        grad_gi = grad_gh.clone()
        torch.mul(d_n, g_all, out=grad_gi[..., 2 * hid:])
        grad_w_hh = grad_gh.flatten(0, 1).t() @ prev.flatten(0, 1)
        return grad_gi.transpose(0, 1), carry, grad_w_hh, grad_gh.sum((0, 1))


def run_gru(rnn: nn.GRU, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """Outputs ``(B, T, H)`` of a one-layer batch-first ``nn.GRU`` on ``x``; same values, cheaper backward.

    Without gradients (evaluation, prediction) or off CPU this is ``rnn(x)`` (cuDNN's fused GRU backward beats a
    loop of per-position kernel launches); training on CPU uses :class:`_GRUScan` (see also :func:`gru_scan`).
    """
    if h0 is None:
        h0 = x.new_zeros(x.shape[0], rnn.hidden_size)
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or rnn.weight_hh_l0.requires_grad)
    if not needs_grad or x.device.type != "cpu":
        return rnn(x, h0[None])[0]
    return gru_scan(rnn, F.linear(x, rnn.weight_ih_l0, rnn.bias_ih_l0), h0)


def gru_scan(rnn: nn.GRU, gi: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """Outputs ``(B, T, H)`` of ``rnn`` from its input gate pre-activations ``gi = x W_ih^T + b_ih`` ``(B, T, 3H)``
    (:class:`_GRUScan`; for training on CPU)."""
    if h0 is None:
        h0 = gi.new_zeros(gi.shape[0], rnn.hidden_size)
    return _GRUScan.apply(gi, h0, rnn.weight_hh_l0, rnn.bias_hh_l0)


class TPPModule(nn.Module, metaclass=ABCMeta):
    """Base of every neural TPP module: training objective and the trajectory sampling loop.

    Parameters
    ----------
    n_marks : int
        Number of event types ``K``; the begin-of-sequence token gets index ``K``.
    time_scale : float
        Unit of the normalised time (mean training gap, in the data's time unit).
    """

    def __init__(self, n_marks: int, time_scale: float) -> None:
        super().__init__()
        self.n_marks = int(n_marks)
        self.register_buffer("time_scale", torch.tensor(float(time_scale), dtype=torch.float32))

    @abstractmethod
    def encode(self, bt: BatchTensors) -> torch.Tensor:
        """Interval states ``(B, L + 1, S)`` from the (normalised) batch."""

    @abstractmethod
    def intensity(self, states: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """Per-mark intensity ``(..., M, K)`` of states ``(..., S)`` at elapsed times ``tau`` ``(..., M)``."""

    @abstractmethod
    def init_carry(self, n: int, capacity: int) -> Carry:
        """Recurrent carry of ``n`` empty histories (``capacity`` = most events that will be appended)."""

    @abstractmethod
    def step(self, carry: Carry, marks: torch.Tensor, dt: torch.Tensor, t: torch.Tensor) -> tuple[Carry, torch.Tensor]:
        """Append one event (mark, normalised gap and time) per row; returns the new carry and interval state."""

    @abstractmethod
    def terms(self, batch: Any, method: str = "mc") -> tuple[torch.Tensor, torch.Tensor]:
        """Additive pieces of the log-likelihood: ``(event (B, L), interval (B, L + 1))``, zero where padded.

        ``log L = Σ event - Σ interval``; ``event[:, i]`` belongs to event ``i + 1`` and ``interval[:, i]`` to the
        interval that starts at event ``i`` (row 0: the window start; row ``n``: the survival to the window end).
        Dropping row 0 of both gives the likelihood conditional on the first event.
        """

    def log_likelihood(self, batch: Any, method: str = "mc") -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sequence log-likelihood in the data's time unit and number of events, both ``(B,)``."""
        event, interval = self.terms(batch, method)
        return event.sum(1) - interval.sum(1), torch.as_tensor(batch.mask, device=event.device).sum(1)

    @abstractmethod
    def next_event(self, states: torch.Tensor, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Expected next gap ``(...)`` (normalised) and mark distribution ``(..., K)`` for interval states."""

    @abstractmethod
    def sample_next(self, states: torch.Tensor, horizon: torch.Tensor,
                    gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Next normalised gap (``inf`` when none before ``horizon``) and mark for each row of ``states``."""

    #: whether ``log_likelihood(method="quad")`` is exact, in which case training uses it too
    exact_likelihood = False

    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        """Summed negative log-likelihood of the batch and its number of events (the Trainer's protocol).

        In training mode intensity models estimate the compensator by Monte Carlo (unbiased, cheap); in eval mode
        (validation, early stopping) they use the deterministic quadrature.
        """
        method = "quad" if self.exact_likelihood or not self.training else "mc"
        ll, n = self.log_likelihood(batch, method=method)
        return {"loss": -ll.sum(), "n": n.sum()}

    @torch.no_grad()
    def sample(self, n: int, horizon: float, max_events: int,
               gen: torch.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Simulate ``n`` histories on ``[0, horizon]`` (normalised units).

        Returns flat ``(row, time, mark)`` numpy arrays in order of generation (callers sort them).
        """
        device, dtype = self.time_scale.device, self.time_scale.dtype
        capacity = max_events + 1
        carry = self.init_carry(n, capacity)
        zeros = torch.zeros(n, device=device, dtype=dtype)
        bos = torch.full((n,), self.n_marks, device=device, dtype=torch.long)
        carry, state = self.step(carry, bos, zeros, zeros)
        t = zeros.clone()
        count = torch.zeros(n, device=device, dtype=torch.long)
        active = torch.arange(n, device=device)
        rows_out, times_out, marks_out = [], [], []
        while active.numel():
            gap, mark = self.sample_next(state[active], horizon - t[active], gen)
            hit = torch.isfinite(gap) & (count[active] < max_events)
            active, gap, mark = active[hit], gap[hit], mark[hit]
            if not active.numel():
                break
            t[active] = t[active] + gap
            count[active] += 1
            rows_out.append(active.cpu())
            times_out.append(t[active].cpu())
            marks_out.append(mark.cpu())
            sub = tuple(c[active] for c in carry)
            sub, new_state = self.step(sub, mark, gap, t[active])
            for full, part in zip(carry, sub):
                full[active] = part
            state[active] = new_state
        if not rows_out:
            empty = np.zeros(0)
            return empty.astype(np.int64), empty, empty.astype(np.int64)
        return (torch.cat(rows_out).numpy(), torch.cat(times_out).double().numpy(),
                torch.cat(marks_out).numpy())


class IntensityTPPModule(TPPModule):
    """Base of the modules defined by a conditional intensity: compensator estimators, grid prediction, thinning.

    Parameters
    ----------
    n_marks, time_scale
        See :class:`TPPModule`.
    n_mc_samples : int
        Stratified uniform Monte-Carlo points per interval for the training compensator (unbiased).
    n_quadrature : int
        Gauss-Legendre nodes per interval for evaluation (``score``), deterministic and high-accuracy.
    thinning_window : float
        Length, in normalised units, of the look-ahead windows on which thinning bounds the intensity.
    """

    def __init__(self, n_marks: int, time_scale: float, n_mc_samples: int = 20, n_quadrature: int = 32,
                 thinning_window: float = 2.0) -> None:
        super().__init__(n_marks, time_scale)
        self.n_mc_samples = int(n_mc_samples)
        self.n_quadrature = int(n_quadrature)
        self.thinning_window = float(thinning_window)

    @abstractmethod
    def upper_bound(self, states: torch.Tensor, tau0: torch.Tensor, tau1: torch.Tensor) -> torch.Tensor:
        """A bound ``(n,)`` of the total intensity on ``[tau0, tau1]`` valid for every time in it."""

    # -- likelihood -----------------------------------------------------------------------------------------------
    def event_log_intensity(self, states: torch.Tensor, bt: BatchTensors) -> torch.Tensor:
        """``log λ_{k_i}(t_i)`` ``(B, L)`` in normalised units, from the states of the preceding intervals."""
        lam = self.intensity(states[:, :-1], bt.dt[..., None])[..., 0, :]
        return torch.log(torch.gather(lam, -1, bt.marks[..., None]).squeeze(-1).clamp_min(1e-30))

    def compensator(self, states: torch.Tensor, span: torch.Tensor, method: str) -> torch.Tensor:
        """``∫ Σ_k λ_k`` over each interval ``(B, L + 1)``.

        ``method="mc"``: stratified uniform sampling, ``u_m = (m + U_m) / M``, estimate ``span · mean λ(u_m span)``
        (unbiased; ``n_mc_samples`` points). ``method="quad"``: Gauss-Legendre with ``n_quadrature`` nodes.
        """
        u, weights = self.integration_points(span, method)
        lam = self.intensity(states, u * span[..., None]).sum(-1)  # (B, L+1, M)
        return span * (lam * weights).sum(-1)

    def integration_points(self, span: torch.Tensor, method: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Points ``u`` ``(*span.shape, M)`` in [0, 1] and weights ``(M,)`` of the compensator estimator."""
        if method == "mc":
            m = self.n_mc_samples
            u = (torch.arange(m, device=span.device, dtype=span.dtype) + torch.rand(
                *span.shape, m, device=span.device, dtype=span.dtype)) / m
            return u, torch.full((m,), 1.0 / m, device=span.device, dtype=span.dtype)
        if method == "quad":
            u, weights = gauss_legendre(self.n_quadrature, span.device, span.dtype)
            return u.expand(*span.shape, -1), weights
        raise ValueError(f"method must be 'mc' or 'quad', got {method!r}")

    def terms(self, batch: Any, method: str = "mc") -> tuple[torch.Tensor, torch.Tensor]:
        """``log λ_{k_i}(t_i)`` per event and compensator per interval; ``method`` picks its estimator."""
        bt = unpack_batch(batch, self.time_scale)
        states = self.encode(bt)
        log_lam = (self.event_log_intensity(states, bt) - torch.log(self.time_scale)) * bt.mask
        return log_lam, self.compensator(states, bt.span, method) * bt.interval_mask

    # -- prediction -----------------------------------------------------------------------------------------------
    def cumulative_compensator(self, states: torch.Tensor, grid: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """``Λ(τ)`` on a grid ``(G,)`` starting at 0, from ``lam`` ``(..., G)`` (cumulative trapezoid)."""
        seg = (lam[..., 1:] + lam[..., :-1]) * 0.5 * torch.diff(grid)
        return F.pad(torch.cumsum(seg, -1), (1, 0))

    def next_event(self, states: torch.Tensor, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Expected gap and mark distribution of the next event (see :func:`next_event_from_grid`)."""
        lam_k = self.intensity(states, grid.expand(*states.shape[:-1], -1))  # (..., G, K)
        return next_event_from_grid(lam_k, grid, self.cumulative_compensator(states, grid, lam_k.sum(-1)))

    def sample_next(self, states: torch.Tensor, horizon: torch.Tensor,
                    gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Next gap (``inf`` when none before ``horizon``) and mark for each row, by Ogata thinning.

        On a look-ahead window ``[τ0, τ1]`` candidates come from a homogeneous process of rate
        ``upper_bound(τ0, τ1)``; a candidate past ``τ1`` moves ``τ0`` to ``τ1`` (memorylessness), otherwise it is
        accepted with probability ``λ(τ)/bound`` and its mark drawn proportionally to ``λ_k(τ)``.
        """
        n = states.shape[0]
        device, dtype = states.device, states.dtype
        tau0 = torch.zeros(n, device=device, dtype=dtype)
        gap = torch.full((n,), float("inf"), device=device, dtype=dtype)
        mark = torch.zeros(n, device=device, dtype=torch.long)
        pending = torch.arange(n, device=device)
        while pending.numel():
            st, t0, hz = states[pending], tau0[pending], horizon[pending]
            t1 = torch.minimum(t0 + self.thinning_window, hz)
            bound = self.upper_bound(st, t0, t1).clamp_min(1e-12)
            e = torch.empty_like(t0).exponential_(1.0, generator=gen)
            cand = t0 + e / bound
            inside = cand <= t1
            lam_k = self.intensity(st, torch.minimum(cand, t1)[:, None])[:, 0, :]
            u = torch.rand(t0.shape, device=device, dtype=dtype, generator=gen) * bound
            accept = inside & (u < lam_k.sum(-1))
            if accept.any():
                rows = pending[accept]
                gap[rows] = cand[accept]
                mark[rows] = torch.multinomial(lam_k[accept].clamp_min(0) + 1e-30, 1, generator=gen).squeeze(1)
            tau0[pending] = torch.where(inside, cand, t1)
            keep = ~accept & (tau0[pending] < hz)
            pending = pending[keep]
        return gap, mark
