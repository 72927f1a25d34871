"""Shared face of the outcome models: inputs, labels, static covariates, prediction and scoring.

Score convention
----------------
``score(X, y)`` is the **mean Bernoulli log-likelihood per sample**, summed over outcome labels (higher is better):
``mean_i sum_k [y_ik log p_ik + (1 - y_ik) log(1 - p_ik)]``. For one binary outcome it equals minus
scikit-learn's ``log_loss``. See :func:`pathways.metrics.mean_log_likelihood`.

``score_samples(data)`` gives each sample's log-likelihood (the same sum over labels), ``log_likelihood(data)`` their
total. ``to_factors(data)`` explains the predictions with the model's exact attribution
(:mod:`pathways.models.recurrent.attribution`: RETAIN contributions, integrated gradients, the logistic decomposition).

``predict_proba`` follows scikit-learn: ``(n, 2)`` columns ``[P(y=0), P(y=1)]`` for one binary outcome, ``(n, K)``
probabilities for ``K`` labels. ``predict`` thresholds at ``threshold``.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from pathways.errors import PathwaysInputError
from pathways.metrics import sample_log_likelihood
from pathways.training.trainer import Trainer
from pathways.utils import rng
from pathways.models.base import NotFittedError, PathwaysEstimator
from pathways.models.params import check_counts, check_fraction, check_param_types, check_real
from pathways.encode.outcomes import OutcomeData, as_outcome_data
from pathways.models.recurrent.attribution import integrated_gradients
from pathways.models.recurrent.data import DenseBatcher
from pathways.device import resolve_device

__all__ = ["OutcomeModelBase", "NeuralOutcomeModel"]


class OutcomeModelBase(PathwaysEstimator):
    """Input handling, probabilities, ``predict`` and ``score`` shared by every outcome model."""

    input_kind = "outcome"
    threshold: float

    # ------------------------------------------------------------------ learned layout
    def _learn_layout(self, data: OutcomeData) -> None:
        """Record what later inputs must match: codes, labels, static columns and their standardisation."""
        if data.y is None:
            raise PathwaysInputError("y: outcome labels are required to fit")
        self.n_codes_ = data.n_codes
        self.codes_ = [str(c) for c in data.code_names]
        self.labels_ = list(data.labels)
        self.n_labels_ = int(data.y.shape[1])
        self.bin_width_ = float(data.bin_width)
        self.vocab_ = data.vocab
        self.static_names_ = list(data.static_names)
        self.n_static_ = 0 if data.static is None else int(data.static.shape[1])
        if data.static is not None:
            self.static_mean_ = data.static.mean(axis=0)
            scale = data.static.std(axis=0)
            self.static_scale_ = np.where(scale > 0, scale, 1.0)  # constant columns are only centred
        else:
            self.static_mean_ = np.zeros(0)
            self.static_scale_ = np.ones(0)
        positives = data.y.sum(axis=0)
        if ((positives == 0) | (positives == data.y.shape[0])).any():
            k = int(np.flatnonzero((positives == 0) | (positives == data.y.shape[0]))[0])
            raise PathwaysInputError(
                f"y: outcome '{self.labels_[k]}' has a single class in the {data.y.shape[0]} training samples "
                f"({int(positives[k])} positives); a classifier needs both"
            )

    def check_fitted(self) -> None:
        """Raise :class:`NotFittedError` before ``fit`` (the fitted state starts with the learned layout)."""
        if "n_codes_" not in vars(self):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(...) first")

    def _check_input(self, X: Any, y: Any = None, static: Any = None, *, require_y: bool = False) -> OutcomeData:
        """Validate new input against the fitted layout."""
        self.check_fitted()
        data = as_outcome_data(X, y, static, require_y=require_y)
        if data.n_codes != self.n_codes_:
            raise PathwaysInputError(
                f"X: {data.n_codes} code columns but the model was fitted on {self.n_codes_}; "
                "encode with the training vocabulary"
            )
        if self.vocab_ is not None and data.vocab is not None and not (data.vocab == self.vocab_):
            raise PathwaysInputError("X: vocabulary differs from the training vocabulary (same size, other codes)")
        n_static = 0 if data.static is None else data.static.shape[1]
        if n_static != self.n_static_:
            raise PathwaysInputError(
                f"static: {n_static} column(s) given but the model was fitted with {self.n_static_}"
            )
        if data.y is not None and data.y.shape[1] != self.n_labels_:
            raise PathwaysInputError(f"y: {data.y.shape[1]} label column(s) but the model predicts {self.n_labels_}")
        return data

    # ------------------------------------------------------------------ faces
    # Each concrete model defines ``_positive_proba(data: OutcomeData) -> (n, K)`` float64 P(y_k = 1).

    def predict_proba(self, X: Any, static: Any = None) -> np.ndarray:
        """Outcome probabilities: ``(n, 2)`` for one binary outcome (scikit-learn order), else ``(n, K)``.

        Parameters
        ----------
        X : OutcomeData or SparseSeries
            Binned histories encoded with the training vocabulary.
        static : array-like, optional
            Static covariates when ``X`` does not carry them.
        """
        p = self._positive_proba(self._check_input(X, static=static))
        return np.c_[1.0 - p[:, 0], p[:, 0]] if self.n_labels_ == 1 else p

    def predict(self, X: Any, static: Any = None) -> np.ndarray:
        """Predicted outcome indicators: ``(n,)`` for one outcome, ``(n, K)`` otherwise (``p >= threshold``)."""
        p = self._positive_proba(self._check_input(X, static=static))
        out = (p >= self.threshold).astype(np.int64)
        return out[:, 0] if self.n_labels_ == 1 else out

    def score(self, data: Any, y: Any = None, static: Any = None) -> float:
        """Mean Bernoulli log-likelihood per sample, summed over labels (higher is better; module docstring)."""
        return float(np.mean(self.score_samples(data, y, static)))

    def score_samples(self, data: Any, y: Any = None, static: Any = None) -> np.ndarray:
        """Bernoulli log-likelihood of each sample, summed over labels (float64, one value per sample)."""
        checked = self._check_input(data, y, static, require_y=True)
        return sample_log_likelihood(checked.y, self._positive_proba(checked))

    def to_factors(self, data: Any = None, static: Any = None, *, max_samples: int | None = 5000,
                   seed: int | np.random.Generator | None = 0, **kwargs: Any) -> pd.DataFrame:
        """Factors table: which past codes, how long before the index time, drove the predictions on ``data``.

        Parameters
        ----------
        data : OutcomeData or SparseSeries
            The histories to explain (e.g. the training data).
        static : array-like, optional
            Static covariates when ``data`` does not carry them.
        max_samples : int or None
            Explain a random subset of at most this many samples (integrated gradients cost about ``n_steps``
            training epochs over the samples explained); None = all.
        seed : int or Generator
            Draws the subset.
        **kwargs
            Passed to the model's attribution (see :mod:`pathways.models.recurrent.attribution`).
        """
        if data is None:
            raise PathwaysInputError(f"{type(self).__name__}.to_factors: pass the histories to explain")
        checked = self._check_input(data, static=static)
        if max_samples is not None and len(checked) > int(max_samples):
            checked = checked.subset(np.sort(rng(seed).choice(len(checked), int(max_samples), replace=False)))
        return self._attributions(checked, **kwargs)


class NeuralOutcomeModel(OutcomeModelBase):
    """Training and batched inference of the torch outcome models through :class:`pathways.training.Trainer`."""

    transform: str
    max_bins: int | None
    max_epochs: int
    lr: float
    weight_decay: float
    batch_size: int
    patience: int | None
    device: str
    seed: int
    progress: bool
    # Each concrete model defines ``_build_module() -> torch.nn.Module`` from its parameters and learned layout.
    #: integer parameters that must be >= 1, and dropout probabilities (subclasses list their own)
    _count_params: ClassVar[tuple[str, ...]] = ("embedding_dim",)
    _fraction_params: ClassVar[tuple[str, ...]] = ()

    def _check_params(self) -> None:
        """Reject invalid hyper-parameters before any work (see :mod:`pathways.models.params`)."""
        check_param_types(self)
        check_counts(self, self._count_params + ("batch_size", "max_epochs"))
        for name in self._fraction_params:
            check_fraction(name, getattr(self, name))
        check_real("lr", self.lr, lambda v: v > 0, "a number > 0")
        check_real("weight_decay", self.weight_decay, lambda v: v >= 0, "a number >= 0")
        check_real("threshold", self.threshold, lambda v: 0 <= v <= 1, "a probability in [0, 1]")
        if self.max_bins is not None:
            check_counts(self, ("max_bins",))

    def _batcher(self, data: OutcomeData, device: torch.device) -> DenseBatcher:
        return DenseBatcher(
            data, transform=self.transform, max_bins=self.max_bins, static_mean=self.static_mean_,
            static_scale=self.static_scale_, device=device,
        )

    def fit(self, data: Any, y: Any = None, *, validation: Any = None, static: Any = None,
            trainer: Trainer | None = None) -> "NeuralOutcomeModel":
        """Fit on binned histories.

        Parameters
        ----------
        data : OutcomeData or SparseSeries
            Training histories (see :func:`pathways.models.recurrent.outcome_dataset`).
        y : array-like (n,) or (n, K), optional
            Outcome indicators when ``data`` does not carry them.
        validation : OutcomeData or (SparseSeries, y), optional
            Held-out data for early stopping (``patience`` epochs without improvement of the validation loss).
        static : array-like (n, S), optional
            Static covariates when ``data`` does not carry them.
        trainer : Trainer, optional
            The run's :class:`~pathways.training.Trainer` (device, precision, loggers, caps, ...), configured with
            this model's max_epochs, lr, weight_decay, batch_size, patience and seed; None trains on ``device``.

        Returns
        -------
        self
        """
        self._check_params()
        train = as_outcome_data(data, y, static, require_y=True)
        self._learn_layout(train)
        val = None
        if validation is not None:
            val = self._check_input(*validation) if isinstance(validation, tuple) else self._check_input(validation)
            if val.y is None:
                raise PathwaysInputError("validation: outcome labels are required for early stopping")
        trainer = self.run_trainer(trainer)
        self.check_resume(trainer, train, val)  # a resumed fit must see the parameters and data it started with
        device = resolve_device(trainer.device)
        torch.manual_seed(int(self.seed))
        self.module_ = self._build_module().to(device)
        train_b = self._batcher(train, device)
        val_b = None if val is None else self._batcher(val, device)
        bs = int(self.batch_size)
        self.history_ = trainer.fit(
            self.module_,
            lambda epoch: train_b.iterate(bs, shuffle=True, seed=int(self.seed) + 7919 * int(epoch)),
            None if val_b is None else (lambda epoch: val_b.iterate(bs)),
        )
        self.n_epochs_ = len(self.history_)
        self.module_.eval()
        return self

    def _device(self) -> torch.device:
        return next(self.module_.parameters()).device

    def _iterate_eval(self, data: OutcomeData, batch_size: int | None = None):
        """Evaluation batches (no shuffle, length-bucketed) on the module's device."""
        batcher = self._batcher(data, self._device())
        return batcher.iterate(int(batch_size or max(self.batch_size, 256)))

    def _attributions(self, data: OutcomeData, **kwargs: Any) -> pd.DataFrame:
        """Integrated gradients of the logit (RETAIN overrides with its exact contributions)."""
        return integrated_gradients(self, data, **kwargs)

    def _positive_proba(self, data: OutcomeData) -> np.ndarray:
        out = np.empty((len(data), self.n_labels_), dtype=np.float64)
        self.module_.eval()
        with torch.no_grad():
            for batch in self._iterate_eval(data):
                logits = self.module_.logits(batch["x"], batch["lengths"], batch.get("static"))
                out[batch["index"].numpy()] = torch.sigmoid(logits.float()).cpu().numpy()
        return out
