"""Torch modules behind :class:`GRUOutcome` and :class:`RETAIN`.

Both take the dense batches of :class:`pathways.models.recurrent.data.DenseBatcher` (``x`` right-padded
``(B, L, C)``, ``lengths`` on CPU) and return ``{"loss", "n"}`` for :class:`pathways.training.Trainer`; the
estimators call :meth:`logits` directly for prediction and attribution.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["GRUOutcomeNet", "RETAINNet", "reverse_padded"]


def _bce(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Binary cross-entropy summed over samples and labels; the trainer divides by ``n`` (samples)."""
    y = batch["y"].to(logits.dtype)
    loss = nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="sum")
    return {"loss": loss, "n": int(y.shape[0])}


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each right-padded sequence inside its own length; padding stays at the end.

    Position ``j`` of the result is the step ``j`` steps before the last real one (an involution on real steps).
    """
    b, t_max = x.shape[:2]
    t = torch.arange(t_max, device=x.device).expand(b, t_max)
    lens = lengths.to(x.device)[:, None]
    src = torch.where(t < lens, lens - 1 - t, t)
    shape = (b, t_max) + (1,) * (x.dim() - 2)
    return torch.gather(x, 1, src.view(shape).expand_as(x))


def _run_rnn(rnn: nn.RNNBase, v: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``rnn`` on right-padded ``v``; return per-step outputs (B, L, H) and the last real step's top state."""
    if bool((lengths == v.shape[1]).all()):
        out, h = rnn(v)  # equal lengths (the usual index-aligned case): no packing overhead
    else:
        packed = pack_padded_sequence(v, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out_packed, h = rnn(packed)
        out, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=v.shape[1])
    h = h[0] if isinstance(h, tuple) else h  # LSTM returns (h, c)
    return out, h[-1]


class GRUOutcomeNet(nn.Module):
    """Linear code embedding -> GRU/LSTM over bins -> last state (+ static covariates) -> one logit per label."""

    def __init__(
        self,
        n_codes: int,
        n_labels: int,
        n_static: int = 0,
        embedding_dim: int = 64,
        hidden_size: int = 64,
        num_layers: int = 1,
        cell: str = "gru",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(n_codes, embedding_dim)
        rnn_cls = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_cls(
            embedding_dim, hidden_size, num_layers=num_layers, batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size + n_static, n_labels)

    def logits(self, x: torch.Tensor, lengths: torch.Tensor, static: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, K) from dense right-padded bins ``x`` (B, L, C)."""
        v = torch.tanh(self.embed(x))
        _, h_last = _run_rnn(self.rnn, v, lengths)
        h_last = self.drop(h_last)
        if static is not None:
            h_last = torch.cat([h_last, static.to(h_last.dtype)], dim=1)
        return self.head(h_last)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return _bce(self.logits(batch["x"], batch["lengths"], batch.get("static")), batch)


class RETAINNet(nn.Module):
    """RETAIN (Choi et al., NeurIPS 2016): two reverse-time attention RNNs over visit (bin) embeddings.

    ``v_j = W_emb x_j`` (no bias), ``alpha = softmax_j(w_a . g_j)`` from a GRU run from the most recent bin
    backwards, ``beta_j = tanh(W_b h_j)`` from a second GRU, context ``c = sum_j alpha_j beta_j * v_j`` and
    ``logit = W c (+ W_s s) + b``. The logit is therefore exactly ``b + W_s s + sum_{j,k} omega_{j,k}`` with the
    contribution ``omega_{j,k} = alpha_j x_{j,k} W (beta_j * W_emb[:, k])`` of code ``k`` in bin ``j``.
    """

    def __init__(
        self,
        n_codes: int,
        n_labels: int,
        n_static: int = 0,
        embedding_dim: int = 64,
        alpha_hidden: int = 64,
        beta_hidden: int = 64,
        dropout_emb: float = 0.0,
        dropout_context: float = 0.0,
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(n_codes, embedding_dim, bias=False)
        self.rnn_alpha = nn.GRU(embedding_dim, alpha_hidden, batch_first=True)
        self.rnn_beta = nn.GRU(embedding_dim, beta_hidden, batch_first=True)
        self.w_alpha = nn.Linear(alpha_hidden, 1)
        self.w_beta = nn.Linear(beta_hidden, embedding_dim)
        self.drop_emb = nn.Dropout(dropout_emb)
        self.drop_ctx = nn.Dropout(dropout_context)
        self.head = nn.Linear(embedding_dim + n_static, n_labels)
        self.n_static = n_static

    def attention(
        self, x: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Attention in lag order (position 0 = most recent bin).

        Returns
        -------
        x_rev : (B, L, C) bins in lag order; alpha : (B, L) visit weights (0 on padding);
        beta : (B, L, m) variable weights; v : (B, L, m) embeddings (after dropout).
        """
        x_rev = reverse_padded(x, lengths)
        v = self.drop_emb(self.embed(x_rev))
        g, _ = _run_rnn(self.rnn_alpha, v, lengths)
        h, _ = _run_rnn(self.rnn_beta, v, lengths)
        e = self.w_alpha(g).squeeze(-1)
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]
        alpha = torch.softmax(e.masked_fill(~mask, float("-inf")), dim=1)
        beta = torch.tanh(self.w_beta(h))
        return x_rev, alpha, beta, v

    def logits(self, x: torch.Tensor, lengths: torch.Tensor, static: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, K) from dense right-padded bins ``x`` (B, L, C)."""
        _, alpha, beta, v = self.attention(x, lengths)
        c = self.drop_ctx((alpha[..., None] * beta * v).sum(dim=1))
        if static is not None:
            c = torch.cat([c, static.to(c.dtype)], dim=1)
        return self.head(c)

    def contributions(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact logit contributions ``omega`` (B, L, C, K) in lag order, and the bins ``x`` in lag order.

        In eval mode ``logits == head.bias + static part + omega.sum((1, 2))``.
        """
        x_rev, alpha, beta, _ = self.attention(x, lengths)
        w_out = self.head.weight[:, : self.embed.out_features]  # (K, m): the context part of the head
        # (beta_j * W_K) @ W_emb for every bin j and label K -> (B, L, K, C); explicit order keeps the largest
        # intermediate at B x L x K x C (a free einsum order could build B x L x m x C)
        proj = torch.matmul(beta[:, :, None, :] * w_out, self.embed.weight).transpose(2, 3)
        omega = proj * (alpha[..., None] * x_rev)[..., None]
        return omega, x_rev

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return _bce(self.logits(batch["x"], batch["lengths"], batch.get("static")), batch)
