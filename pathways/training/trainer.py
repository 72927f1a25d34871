"""Training loop shared by every neural model: device, seeds, optimisation, early stopping, NaN guard, resume.

A model hands the trainer an ``nn.Module`` whose ``forward(batch)`` returns ``{"loss": scalar, "n": count}`` where
``loss`` is the quantity to minimise for that batch (e.g. a summed negative log-likelihood) and ``n`` the number of
events or samples it covers; the trainer steps on ``loss / n`` and reports ``sum(loss) / sum(n)`` over the epoch.

One Trainer holds the settings of a run (device, precision, clipping, schedule, loggers, resume, progress, caps);
the training pipeline builds it from ``configs/trainer/*.yaml`` and hands it to ``model.fit(data, validation,
trainer=...)``. A neural estimator keeps its own optimisation hyper-parameters (max_epochs, lr, ...) and trains with
``trainer.configured(**its hyper-parameters)``; full-batch learners read ``device``, ``progress`` and the
iteration budget ``trainer.iterations(max_iter)`` from it.

Beyond the loop itself the trainer offers: an LR schedule, gradient clipping, mixed precision on GPU, per-epoch CSV /
TensorBoard logging, a progress bar, a stop on a non-finite loss that keeps the last good weights (and the last good
``trainer_state.pt``), and ``resume=True`` continuing from ``checkpoint_dir/trainer_state.pt`` with the same result
as an uninterrupted run (module, optimizer, scheduler, loss-scaler and RNG states are all saved after every epoch).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
import random
import time
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from pathways.errors import PathwaysInputError
from pathways.progress import progress_bar, progress_enabled
from pathways.device import resolve_device
from pathways.training.distributed import DistContext, init_distributed, rank_device
from pathways.training.loggers import MetricLogger, close_loggers, make_loggers
from pathways.training.optim import clip_gradients, make_optimizer
from pathways.training.state import capture_rng, load_state, restore_rng, save_state

logger = logging.getLogger("pathways")

BatchSource = Callable[[int], Iterable[Any]]
_PRECISIONS = ("32", "bf16", "16-mixed")

__all__ = ["Trainer", "TrainingDivergedError", "resolve_device", "seed_everything", "move_batch"]

#: per-model optimisation hyper-parameters: estimator parameters, set on the run's Trainer by ``configured``
HPARAMS = ("max_epochs", "lr", "weight_decay", "batch_size", "patience", "seed")


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the module keeps its last good weights."""


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch; optionally ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def move_batch(batch: Any, device: torch.device) -> Any:
    """Move a batch (object with ``.to``, tensor, dataclass, dict, tuple or list of them) to ``device``."""
    if hasattr(batch, "to"):
        return batch.to(device)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return dataclasses.replace(batch, **{f.name: move_batch(getattr(batch, f.name), device)
                                             for f in dataclasses.fields(batch) if f.init})
    if isinstance(batch, dict):
        return {k: move_batch(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_batch(v, device) for v in batch)
    return batch


@dataclasses.dataclass
class _Progress:
    """Where a (possibly resumed) run stands."""

    best_state: dict[str, torch.Tensor]
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    best_loss: float = math.inf
    best_epoch: int | None = None
    stale: int = 0
    next_epoch: int = 0


class Trainer:
    """Mini-batch gradient training with early stopping on a validation loss.

    Parameters
    ----------
    max_epochs : maximum number of passes over the training batches.
    lr, weight_decay : AdamW settings.
    batch_size : read by models when they build their batch sources.
    device : "auto" (CUDA when present), "cpu", "cuda[:N]"; an unavailable GPU fails with PathwaysInputError.
    patience : epochs without validation improvement before stopping (None: never stop early).
    grad_clip : max gradient norm (None: no clipping).
    lr_schedule : None, "cosine" (anneal over max_epochs) or "plateau" (halve when the monitored loss stalls).
    precision : "32", "bf16" (bfloat16 autocast) or "16-mixed" (float16 autocast + loss scaling; CUDA only, float32
        with a warning elsewhere).
    seed, deterministic : reproducibility controls.
    log_dir : folder receiving ``metrics.csv`` (and ``tensorboard/``); None writes no files.
    loggers : names among "csv", "tensorboard", "mlflow" (skipped with a warning when not installed), or
        :class:`~pathways.training.loggers.MetricLogger` objects (the pipeline's, left open for it to close).
    progress : a progress bar over epochs on stderr: True, False or "auto" (only for a person at a terminal, never
        in CI; see :mod:`pathways.progress`); without a bar, one log line per epoch when not False.
    checkpoint_dir : folder receiving ``trainer_state.pt`` after every epoch (None: nothing saved).
    resume : continue from ``checkpoint_dir/trainer_state.pt`` when present (same result as not stopping).
    epoch_cap : upper bound on ``max_epochs`` whatever the model asks (None: no cap; ``trainer=debug`` sets 2).
    iter_cap : upper bound on the iteration budget of full-batch learners (:meth:`iterations`; None: no cap).
    strategy : "auto" (data-parallel DDP when started by ``torchrun`` with several processes), "ddp" (require such a
        launch) or "single"; see :mod:`pathways.training.distributed` and ``docs/distributed.md``.

    Attributes
    ----------
    history : list of per-epoch dicts (epoch, train_loss, val_loss when validated, lr, seconds).
    best_epoch_, best_loss_ : the epoch whose weights are kept and its monitored loss (after ``fit``).
    stop_reason_ : "max_epochs" or "early_stopping" (after ``fit``).

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
                 lr_schedule: str | None = None, seed: int = 0, deterministic: bool = False,
                 progress: bool | str = "auto",
                 precision: str = "32", log_dir: str | None = None, loggers: Sequence[str] = ("csv",),
                 checkpoint_dir: str | None = None, resume: bool = False, epoch_cap: int | None = None,
                 iter_cap: int | None = None, strategy: str = "auto"):
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
        self.precision = precision
        self.log_dir = log_dir
        self.loggers = loggers
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.epoch_cap = epoch_cap
        self.iter_cap = iter_cap
        self.strategy = strategy
        self.history: list[dict[str, Any]] = []

    def configured(self, **hparams: Any) -> "Trainer":
        """A copy of this run-level trainer with a model's optimisation hyper-parameters (see ``HPARAMS``).

        ``max_epochs`` is capped by ``epoch_cap``. Run-level settings (device, precision, loggers, ...) stay.

        Examples
        --------
        >>> Trainer(epoch_cap=2, progress=False).configured(max_epochs=30, lr=0.01).max_epochs
        2
        """
        unknown = sorted(set(hparams) - set(HPARAMS))
        if unknown:
            raise PathwaysInputError(f"Trainer.configured: {unknown} are run-level settings, not model "
                                     f"hyper-parameters (expected some of {list(HPARAMS)})")
        out = copy.copy(self)
        for key, value in hparams.items():
            setattr(out, key, value)
        out.max_epochs = _capped(out.max_epochs, self.epoch_cap)
        if self.strategy != "single":  # cuda -> cuda:LOCAL_RANK under a distributed launch
            out.device = rank_device(out.device, slurm=self.strategy == "ddp")
        out.history = []
        return out

    def iterations(self, max_iter: int) -> int:
        """Iteration budget of a full-batch learner: ``max_iter`` capped by ``iter_cap``.

        >>> Trainer(iter_cap=20).iterations(500)
        20
        """
        return _capped(max_iter, self.iter_cap)

    def optimizer(self, module: torch.nn.Module) -> torch.optim.Optimizer:
        """The AdamW of ``fit`` for ``module`` (already on its device): one flat parameter buffer, one fused step
        (:mod:`pathways.training.optim`), except under DDP where each parameter stays its own tensor."""
        dist = getattr(self, "_dist", DistContext())
        return make_optimizer(module.parameters(), lr=self.lr, weight_decay=self.weight_decay, flat=not dist.active)

    # ------------------------------------------------------------------------------------------------------------
    def _scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        if self.lr_schedule is None:
            return None
        if self.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(self.max_epochs, 1))
        if self.lr_schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
        raise PathwaysInputError(f"lr_schedule: expected None, 'cosine' or 'plateau', got {self.lr_schedule!r}")

    def _precision(self, device: torch.device) -> str:
        if self.precision not in _PRECISIONS:
            raise PathwaysInputError(f"precision: expected one of {_PRECISIONS}, got {self.precision!r}")
        if self.precision == "16-mixed" and device.type != "cuda":
            logger.warning("precision '16-mixed' needs CUDA; training in float32 on %s", device.type)
            return "32"
        return str(self.precision)

    @staticmethod
    def _autocast(precision: str, device: torch.device) -> Any:
        if precision == "32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=device.type, dtype=dtype)

    # ------------------------------------------------------------------------------------------------------------
    def fit(self, module: torch.nn.Module, train_batches: BatchSource,
            val_batches: BatchSource | None = None) -> list[dict[str, Any]]:
        """Train ``module`` in place and return the per-epoch history; the best validation weights are kept.

        Parameters
        ----------
        module : ``module(batch)`` returns ``{"loss": summed loss, "n": events or samples}``.
        train_batches, val_batches : callables ``epoch -> iterable of batches``; shuffling should depend on the
            epoch only (not on hidden state) so that a resumed run sees the same batches. Under DDP every rank
            slices each global batch; a :class:`~pathways.training.distributed.RankBatch` is this rank's already
            (read from its own shards, :mod:`pathways.training.shards`) and is used as it is, with its weight.

        Raises
        ------
        TrainingDivergedError : the loss became NaN/Inf; the module holds its last good weights and
            ``checkpoint_dir/trainer_state.pt`` still holds the last good epoch.
        """
        return self._fit(module, train_batches, val_batches)

    def _check_settings(self) -> None:
        """Reject settings that would otherwise surface as a torch error, a NaN loss or a silent no-op."""
        checks = [
            ("max_epochs", self.max_epochs, lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
            ("lr", self.lr, lambda v: np.isfinite(v) and v > 0, "a finite number > 0"),
            ("weight_decay", self.weight_decay, lambda v: np.isfinite(v) and v >= 0, "a finite number >= 0"),
            ("batch_size", self.batch_size, lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
            ("patience", self.patience, lambda v: v is None or (isinstance(v, int) and v >= 1), "None or >= 1"),
            ("grad_clip", self.grad_clip, lambda v: v is None or (np.isfinite(v) and v > 0), "None or > 0"),
        ]
        for name, value, ok, expected in checks:
            try:
                valid = bool(ok(value))
            except TypeError:
                valid = False
            if not valid:
                raise PathwaysInputError(f"trainer setting '{name}': expected {expected}, got {value!r}")

    def _fit(self, module: torch.nn.Module, train_batches: BatchSource,
             val_batches: BatchSource | None) -> list[dict[str, Any]]:
        self._check_settings()
        seed_everything(self.seed, self.deterministic)
        device = resolve_device(self.device)
        self._dist = init_distributed(self.strategy, device)
        precision = self._precision(device)
        module.to(device)
        optimizer = self.optimizer(module)
        scheduler = self._scheduler(optimizer)
        scaler = torch.amp.GradScaler("cuda", enabled=precision == "16-mixed")
        run = _Progress(best_state=copy.deepcopy(module.state_dict()))
        if self.resume and self.checkpoint_dir is not None:
            self._restore(module, optimizer, scheduler, scaler, run, device)
        self._net = self._dist.wrap(module, device)  # DDP under a distributed launch, else the module itself
        self.history = run.history
        sinks = make_loggers(self.loggers, self.log_dir, history=run.history) if self._dist.is_main else []
        try:
            self._loop(module, optimizer, scheduler, scaler, run, device, precision, train_batches, val_batches,
                       sinks)
        finally:
            close_loggers(sinks, given=self.loggers)  # loggers handed in (pipeline) stay open for their owner
        module.load_state_dict(run.best_state)
        self.best_epoch_, self.best_loss_ = run.best_epoch, run.best_loss
        return self.history

    def _loop(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any,
              run: _Progress, device: torch.device, precision: str, train_batches: BatchSource,
              val_batches: BatchSource | None, sinks: list[MetricLogger]) -> None:
        self.stop_reason_ = "max_epochs"
        if self.patience is not None and run.stale >= self.patience:  # a resumed run that had already stopped
            self.stop_reason_ = "early_stopping"
            return
        bar = _progress_bar(self.progress if self._dist.is_main else False, int(self.max_epochs), run.next_epoch)
        try:
            for epoch in range(run.next_epoch, int(self.max_epochs)):
                t0 = time.perf_counter()
                self._dist.seed_epoch(self.seed, epoch)
                train_loss = self._run_epoch(module, train_batches(epoch), device, optimizer, epoch, run.best_state,
                                             scaler=scaler, precision=precision)
                record: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss,
                                          "lr": optimizer.param_groups[0]["lr"]}
                monitored = train_loss
                if val_batches is not None:
                    monitored = record["val_loss"] = self.evaluate(module, val_batches(epoch), device,
                                                                   precision=precision)
                record["seconds"] = time.perf_counter() - t0
                run.history.append(record)
                if scheduler is not None:
                    scheduler.step(monitored) if self.lr_schedule == "plateau" else scheduler.step()
                if monitored < run.best_loss - 1e-9:
                    run.best_loss, run.best_epoch, run.stale = monitored, epoch, 0
                    run.best_state = copy.deepcopy(module.state_dict())
                else:
                    run.stale += 1
                run.next_epoch = epoch + 1
                self._after_epoch(module, optimizer, scheduler, scaler, run, record, sinks, bar)
                if self.patience is not None and run.stale >= self.patience:
                    self.stop_reason_ = "early_stopping"
                    break
        finally:
            if bar is not None:
                bar.close()

    def _after_epoch(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any,
                     run: _Progress, record: dict[str, Any], sinks: list[MetricLogger], bar: Any) -> None:
        """Log the epoch, save the resumable state, update the progress display."""
        for sink in sinks:
            sink.log(record["epoch"], record)
        if self.checkpoint_dir is not None and self._dist.is_main:
            save_state(self.checkpoint_dir, {
                "module": module.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": None if scheduler is None else scheduler.state_dict(),
                "scaler": scaler.state_dict(), "rng": capture_rng(), "best_state": run.best_state,
                "run": {"history": run.history, "best_loss": run.best_loss, "best_epoch": run.best_epoch,
                        "stale": run.stale, "next_epoch": run.next_epoch},
            })
        shown = {k: round(v, 5) for k, v in record.items() if k in ("train_loss", "val_loss", "lr")}
        if bar is not None:
            bar.update(1)
            bar.set_postfix(shown)
        elif self.progress and self._dist.is_main:
            logger.info("epoch %d: %s", record["epoch"], shown)

    def _restore(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any,
                 run: _Progress, device: torch.device) -> None:
        state = load_state(self.checkpoint_dir, map_location=device)
        if state is None:
            logger.info("resume: no trainer_state.pt in %s, starting from epoch 0", self.checkpoint_dir)
            return
        try:
            module.load_state_dict(state["module"])
        except RuntimeError as exc:
            raise PathwaysInputError(
                f"resume: the trainer state in {self.checkpoint_dir} belongs to another model "
                f"({str(exc).splitlines()[0]}); use another checkpoint_dir or resume=False"
            ) from None
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        restore_rng(state["rng"])
        saved = state["run"]
        run.history = [dict(r) for r in saved["history"]]
        run.best_loss, run.best_epoch = float(saved["best_loss"]), saved["best_epoch"]
        run.stale, run.next_epoch = int(saved["stale"]), int(saved["next_epoch"])
        run.best_state = state["best_state"]
        logger.info("resume: continuing from epoch %d (%s)", run.next_epoch, self.checkpoint_dir)

    # ------------------------------------------------------------------------------------------------------------
    def _run_epoch(self, module: torch.nn.Module, batches: Iterable[Any], device: torch.device,
                   optimizer: torch.optim.Optimizer, epoch: int, good_state: dict[str, Any], *,
                   scaler: Any = None, precision: str = "32") -> float:
        net, dist = getattr(self, "_net", module), getattr(self, "_dist", DistContext())
        net.train()
        total, count = 0.0, 0
        for batch in batches:
            batch, weight = dist.shard(batch)  # this rank's rows of the global batch (all of it alone)
            with self._autocast(precision, device):
                out = net(move_batch(batch, device))
            loss = out["loss"].float()
            summed, n = dist.totals(loss, out["n"], weight)  # over ranks: per-event averages stay exact
            if not torch.isfinite(summed):
                module.load_state_dict(good_state)
                raise TrainingDivergedError(f"loss is {summed.item()} at epoch {epoch}: training stopped, the module "
                                            f"keeps its last good weights (lower lr or enable grad_clip)")
            optimizer.zero_grad(set_to_none=True)
            scaled = dist.objective(loss, weight, n)
            if scaler is not None and scaler.is_enabled():
                scaler.scale(scaled).backward()
                scaler.unscale_(optimizer)
            else:
                scaled.backward()
            if self.grad_clip is not None:
                clip_gradients(module, optimizer, self.grad_clip)
            if scaler is not None and scaler.is_enabled():
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            total += float(summed.detach())
            count += int(n)
        return total / max(count, 1)

    @torch.no_grad()
    def evaluate(self, module: torch.nn.Module, batches: Iterable[Any], device: torch.device | None = None,
                 *, precision: str = "32") -> float:
        """Mean loss per event/sample over ``batches`` (no gradient)."""
        device = device or resolve_device(self.device)
        module.eval()
        dist = getattr(self, "_dist", DistContext())
        total, count = 0.0, 0
        for batch in batches:
            batch, weight = dist.shard(batch)
            with self._autocast(precision, device):
                out = module(move_batch(batch, device))
            total += float(out["loss"].float()) * weight
            count += int(out["n"]) * int(weight)
        total, count = dist.reducer().sum(total, count)
        return total / max(count, 1)


def _capped(value: Any, cap: int | None) -> Any:
    """``value`` bounded by ``cap`` (None: no bound); non-integers pass through to the settings check."""
    if cap is None or not isinstance(value, (int, np.integer)):
        return value
    return min(int(value), int(cap))


def _progress_bar(enabled: bool | str, total: int, initial: int) -> Any:
    """A bar over epochs on stderr when ``enabled`` says so (:func:`pathways.progress.progress_enabled`), or None
    (no bar: log lines instead)."""
    if not progress_enabled(enabled):
        return None
    return progress_bar(total=total, initial=initial, desc="epochs", unit="epoch", progress=True, leave=False)
