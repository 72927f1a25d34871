"""GRUOutcome: a GRU or LSTM over binned histories predicting binary or multi-label outcomes."""
from __future__ import annotations


from torch import nn

from pathways.errors import PathwaysInputError

from pathways.models.recurrent.base import NeuralOutcomeModel
from pathways.models.recurrent.modules import GRUOutcomeNet

__all__ = ["GRUOutcome"]


class GRUOutcome(NeuralOutcomeModel):
    """Recurrent outcome model: code embedding per bin -> GRU/LSTM -> last state (+ static covariates) -> logits.

    Each bin's (transformed) code counts go through a linear embedding and ``tanh``; the recurrent state after the
    last bin before the index date, concatenated with standardised static covariates, gives one logit per outcome
    label. Variable history lengths are packed (no computation on padding). Attributions come from integrated
    gradients (:func:`pathways.factors.attribution.integrated_gradients`).

    Parameters
    ----------
    embedding_dim : int
        Width of the per-bin code embedding.
    hidden_size : int
        Recurrent state width.
    num_layers : int
        Stacked recurrent layers.
    cell : {"gru", "lstm"}
        Recurrent cell.
    dropout : float
        Dropout on the last state (and between stacked layers).
    transform : {"log1p", "indicator", "none"}
        Transformation of bin counts before the embedding.
    max_bins : int, optional
        Use only the most recent ``max_bins`` bins of each history.
    max_epochs, lr, weight_decay, batch_size, patience : training settings passed to
        :class:`pathways.training.Trainer` (early stopping on the validation loss when ``validation`` is given).
    device : str
        "auto", "cpu" or "cuda[:N]".
    seed : int
        Seeds weight initialisation and batch order.
    threshold : float
        Probability cut-off of :meth:`predict`.
    progress : bool
        Log one line per epoch. Run-level Trainer settings (``grad_clip``, ``lr_schedule``, ``precision``,
        ``log_dir``, ...) come with ``fit(..., trainer=Trainer(...))``.

    Attributes
    ----------
    module_ : GRUOutcomeNet
    codes_, labels_, static_names_ : code, outcome and static column names seen at fit time.
    n_codes_, n_labels_, n_static_, bin_width_, static_mean_, static_scale_, history_, n_epochs_

    Notes
    -----
    ``score`` is the mean Bernoulli log-likelihood per sample (see :mod:`pathways.models.recurrent.base`).
    """

    def __init__(
        self,
        embedding_dim: int = 64,
        hidden_size: int = 64,
        num_layers: int = 1,
        cell: str = "gru",
        dropout: float = 0.1,
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
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.cell = cell
        self.dropout = dropout
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

    _count_params = ("embedding_dim", "hidden_size", "num_layers")
    _fraction_params = ("dropout",)

    def _build_module(self) -> nn.Module:
        if self.cell not in ("gru", "lstm"):
            raise PathwaysInputError(f"cell: expected 'gru' or 'lstm', got {self.cell!r}")
        return GRUOutcomeNet(
            n_codes=self.n_codes_, n_labels=self.n_labels_, n_static=self.n_static_,
            embedding_dim=int(self.embedding_dim), hidden_size=int(self.hidden_size),
            num_layers=int(self.num_layers), cell=self.cell, dropout=float(self.dropout),
        )
