"""Training loop shared by every neural model: device, seeds, optimisation, early stopping, NaN guard.

A model hands the trainer an ``nn.Module`` whose ``forward(batch)`` returns ``{"loss": scalar, "n": count}`` where
``loss`` is the quantity to minimise for that batch (e.g. a summed negative log-likelihood) and ``n`` the number of
events or samples it covers; the trainer reports ``loss / n`` averaged over the epoch.
"""
from __future__ import annotations

import copy
import logging
import math
import random
from typing import Any, Callable, Iterable

import numpy as np
import torch

from pathways.errors import PathwaysInputError

logger = logging.getLogger("pathways")

BatchSource = Callable[[int], Iterable[Any]]


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the module keeps its last good weights."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available else CPU; ``"cuda"`` without a GPU fails with a clear message."""
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PathwaysInputError(f"device={device!r} requested but no CUDA device is available (use 'cpu' or 'auto')")
    if device not in ("cpu",) and not device.startswith("cuda") and device != "mps":
        raise PathwaysInputError(f"device: expected 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    return torch.device(device)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch; optionally ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def move_batch(batch: Any, device: torch.device) -> Any:
    """Move a batch (object with ``.to``, tensor, dict, tuple or list of them) to ``device``."""
    if hasattr(batch, "to"):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: move_batch(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_batch(v, device) for v in batch)
    return batch


class Trainer:
    """Mini-batch gradient training with early stopping on a validation loss.

    Parameters
    ----------
    max_epochs : maximum number of passes over the training batches.
    lr, weight_decay : AdamW settings.
    batch_size : read by models when they build their batch sources.
    device : "auto", "cpu" or "cuda[:N]".
    patience : epochs without validation improvement before stopping (None: never stop early).
    grad_clip : max gradient norm (None: no clipping).
    lr_schedule : None, "cosine" or "plateau".
    seed, deterministic : reproducibility controls.
    progress : log one line per epoch.

    Examples
    --------
    >>> module = torch.nn.Linear(1, 1)
    >>> class Wrapped(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__(); self.lin = module
    ...     def forward(self, batch):
    ...         x, y = batch
    ...         return {"loss": ((self.lin(x) - y) ** 2).sum(), "n": x.shape[0]}
    >>> x = torch.linspace(0, 1, 32)[:, None]; data = [(x, 2 * x)]
    >>> history = Trainer(max_epochs=300, lr=0.05, patience=None, progress=False).fit(Wrapped(), lambda e: data)
    >>> history[-1]["train_loss"] < 0.01
    True
    """

    def __init__(self, max_epochs: int = 50, lr: float = 1e-3, weight_decay: float = 0.0, batch_size: int = 64,
                 device: str = "auto", patience: int | None = 5, grad_clip: float | None = 1.0,
                 lr_schedule: str | None = None, seed: int = 0, deterministic: bool = False, progress: bool = True):
        self.max_epochs = max_epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.device = device
        self.patience = patience
        self.grad_clip = grad_clip
        self.lr_schedule = lr_schedule
        self.seed = seed
        self.deterministic = deterministic
        self.progress = progress
        self.history: list[dict[str, float]] = []

    def _scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        if self.lr_schedule is None:
            return None
        if self.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(self.max_epochs, 1))
        if self.lr_schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
        raise PathwaysInputError(f"lr_schedule: expected None, 'cosine' or 'plateau', got {self.lr_schedule!r}")

    def fit(self, module: torch.nn.Module, train_batches: BatchSource,
            val_batches: BatchSource | None = None) -> list[dict[str, float]]:
        """Train ``module`` in place and return the per-epoch history; the best validation weights are kept."""
        seed_everything(self.seed, self.deterministic)
        device = resolve_device(self.device)
        module.to(device)
        optimizer = torch.optim.AdamW(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        scheduler = self._scheduler(optimizer)
        best_loss, best_state, stale = math.inf, copy.deepcopy(module.state_dict()), 0
        self.history = []
        for epoch in range(self.max_epochs):
            train_loss = self._run_epoch(module, train_batches(epoch), device, optimizer, epoch, best_state)
            record = {"epoch": epoch, "train_loss": train_loss, "lr": optimizer.param_groups[0]["lr"]}
            monitored = train_loss
            if val_batches is not None:
                monitored = record["val_loss"] = self.evaluate(module, val_batches(epoch), device)
            self.history.append(record)
            if self.progress:
                logger.info("epoch %d: %s", epoch, {k: round(v, 5) for k, v in record.items() if k != "epoch"})
            if scheduler is not None:
                scheduler.step(monitored) if self.lr_schedule == "plateau" else scheduler.step()
            if monitored < best_loss - 1e-9:
                best_loss, best_state, stale = monitored, copy.deepcopy(module.state_dict()), 0
            else:
                stale += 1
                if self.patience is not None and stale >= self.patience:
                    break
        module.load_state_dict(best_state)
        return self.history

    def _run_epoch(self, module: torch.nn.Module, batches: Iterable[Any], device: torch.device,
                   optimizer: torch.optim.Optimizer, epoch: int, good_state: dict[str, Any]) -> float:
        module.train()
        total, count = 0.0, 0
        for batch in batches:
            out = module(move_batch(batch, device))
            loss = out["loss"]
            if not torch.isfinite(loss):
                module.load_state_dict(good_state)
                raise TrainingDivergedError(f"loss is {loss.item()} at epoch {epoch}: training stopped, the module "
                                            f"keeps its last good weights (lower lr or enable grad_clip)")
            optimizer.zero_grad(set_to_none=True)
            (loss / max(float(out["n"]), 1.0)).backward()
            if self.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(module.parameters(), self.grad_clip)
            optimizer.step()
            total += float(loss.detach())
            count += int(out["n"])
        return total / max(count, 1)

    @torch.no_grad()
    def evaluate(self, module: torch.nn.Module, batches: Iterable[Any], device: torch.device | None = None) -> float:
        """Mean loss per event/sample over ``batches`` (no gradient)."""
        device = device or resolve_device(self.device)
        module.eval()
        total, count = 0.0, 0
        for batch in batches:
            out = module(move_batch(batch, device))
            total += float(out["loss"])
            count += int(out["n"])
        return total / max(count, 1)
