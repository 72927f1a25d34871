"""RETAIN: reverse-time attention model (Choi et al., NeurIPS 2016) for outcomes from binned histories."""
from __future__ import annotations

from typing import Any

import pandas as pd
from torch import nn

from pathways.encode.outcomes import OutcomeData
from pathways.models.recurrent.attribution import retain_attributions
from pathways.models.recurrent.base import NeuralOutcomeModel
from pathways.models.recurrent.modules import RETAINNet

__all__ = ["RETAIN"]


class RETAIN(NeuralOutcomeModel):
    """Two-level reverse-time attention over bins: which bins (alpha) and which codes in them (beta) matter.

    Two GRUs read the bin embeddings from the most recent bin backwards; one produces a scalar weight ``alpha_j``
    per bin (softmax over the history), the other a vector ``beta_j`` per bin. The context
    ``sum_j alpha_j beta_j * W_emb x_j`` (+ static covariates) gives one logit per outcome label. The logit is an
    exact sum of per-(bin, code) contributions, which
    :func:`pathways.factors.attribution.retain_attributions` turns into a factors table.

    Parameters
    ----------
    embedding_dim : int
        Width ``m`` of the bin embedding ``v_j = W_emb x_j`` (no bias, as in the paper).
    alpha_hidden, beta_hidden : int
        Widths of the two attention GRUs.
    dropout_emb, dropout_context : float
        Dropout on the embeddings and on the context vector (the paper's regularisation).
    transform, max_bins, max_epochs, lr, weight_decay, batch_size, patience, device, seed, threshold,
    progress : as in :class:`pathways.models.recurrent.GRUOutcome`.

    Attributes
    ----------
    module_ : RETAINNet
    codes_, labels_, static_names_, n_codes_, n_labels_, n_static_, bin_width_, static_mean_, static_scale_,
    history_, n_epochs_

    Notes
    -----
    ``score`` is the mean Bernoulli log-likelihood per sample (see :mod:`pathways.models.recurrent.base`).
    """

    def __init__(
        self,
        embedding_dim: int = 64,
        alpha_hidden: int = 64,
        beta_hidden: int = 64,
        dropout_emb: float = 0.0,
        dropout_context: float = 0.1,
        transform: str = "log1p",
        max_bins: int | None = None,
        max_epochs: int = 30,
        lr: float = 3e-3,
        weight_decay: float = 1e-5,
        batch_size: int = 64,
        patience: int | None = 5,
        device: str = "auto",
        seed: int = 0,
        threshold: float = 0.5,
        progress: bool = False,
    ) -> None:
        self.embedding_dim = embedding_dim
        self.alpha_hidden = alpha_hidden
        self.beta_hidden = beta_hidden
        self.dropout_emb = dropout_emb
        self.dropout_context = dropout_context
        self.transform = transform
        self.max_bins = max_bins
        self.max_epochs = max_epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.patience = patience
        self.device = device
        self.seed = seed
        self.threshold = threshold
        self.progress = progress

    _count_params = ("embedding_dim", "alpha_hidden", "beta_hidden")
    _fraction_params = ("dropout_emb", "dropout_context")

    def _build_module(self) -> nn.Module:
        return RETAINNet(
            n_codes=self.n_codes_, n_labels=self.n_labels_, n_static=self.n_static_,
            embedding_dim=int(self.embedding_dim), alpha_hidden=int(self.alpha_hidden),
            beta_hidden=int(self.beta_hidden), dropout_emb=float(self.dropout_emb),
            dropout_context=float(self.dropout_context),
        )

    def _attributions(self, data: OutcomeData, **kwargs: Any) -> pd.DataFrame:
        """RETAIN's exact decomposition of the logit into per-(bin, code) contributions."""
        return retain_attributions(self, data, **kwargs)
