"""The training pipeline: data -> split -> encode -> fit -> metrics -> checkpoint (+ export) -> report.

The model is built from ``cfg.model``; run-level settings (``seed`` and the non-null trainer keys) become its
parameters when it has parameters of those names. Fitting and the factors table are chosen by family
(``functools.singledispatch``): full-batch learners (Hawkes, SCCS) fit on the training part alone, the mini-batch
learners also receive the validation part for early stopping; Hawkes factors carry Wald intervals when affordable,
other families give ``model.to_factors(train)``.
"""
from __future__ import annotations

import os
import time
from functools import singledispatch
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from pathways.checkpoint import data_fingerprint, save
from pathways.device import resolve_device
from pathways.encode.sequences import Sequences
from pathways.errors import PathwaysInputError
from pathways.models.base import PathwaysEstimator
from pathways.models.hawkes.base import HawkesBase
from pathways.models.recurrent.base import OutcomeModelBase
from pathways.models.sccs import SCCS, ConvSCCS
from pathways.models.tpp.base import TPPBase
from pathways.pipelines.cartography import run_cartography
from pathways.pipelines.common import (RunResult, encode_for, export_checkpoint, instantiate, load_data,
                                       n_patients, plain, resolved, run_overrides, split_data, write_summary)
from pathways.pipelines.infer import evaluate_model
from pathways.pipelines.report import code_counts, hawkes_factors, write_report
from pathways.pipelines.schema import validate_config
from pathways.pipelines.signals import detect_signals
from pathways.training.trainer import training_defaults
from pathways.utils import logger

# trainer-group keys that become estimator parameters when the estimator has a parameter of that name
_MODEL_TRAINER_KEYS = ("max_epochs", "max_iter", "lr", "weight_decay", "batch_size", "patience", "device",
                       "progress")


# ----------------------------------------------------------------------------------------------------------------
# model building and fitting
# ----------------------------------------------------------------------------------------------------------------
def build_model(cfg: DictConfig) -> PathwaysEstimator:
    """Instantiate ``cfg.model`` and apply the run-level settings it has parameters for.

    ``seed`` and the non-null ``trainer`` keys among max_epochs, max_iter (iteration budget of full-batch
    learners), lr, weight_decay, batch_size, patience, device and progress override the model's own values (null
    keeps the model config's value).
    """
    model = instantiate(cfg.model)
    if not isinstance(model, PathwaysEstimator):
        raise PathwaysInputError(f"config 'model': {cfg.model.get('_target_')!r} is not a pathways estimator")
    params = model.get_params(deep=False)
    updates: dict[str, Any] = {}
    if "seed" in params:
        updates["seed"] = int(cfg.seed)
    for key in _MODEL_TRAINER_KEYS:
        value = cfg.trainer.get(key)
        if key in params and value is not None:
            updates[key] = str(resolve_device(value)) if key == "device" else value
    return model.set_params(**updates) if updates else model


def _trainer_context(cfg: DictConfig, out: Path) -> dict[str, Any]:
    """Trainer settings applied to every Trainer the model builds during fit (see ``training_defaults``)."""
    t = cfg.trainer
    ctx = {"log_dir": str(out), "loggers": list(cfg.logger.loggers), "checkpoint_dir": str(out / "trainer"),
           "resume": bool(t.get("resume", False)), "precision": str(t.get("precision", "32")),
           "deterministic": bool(t.get("deterministic", False))}
    for key in ("lr_schedule", "grad_clip"):
        if t.get(key) is not None:
            ctx[key] = t.get(key)
    return ctx


@singledispatch
def fit_family(model: PathwaysEstimator, train: Any, validation: Any) -> PathwaysEstimator:
    """Fit ``model`` on ``train``; mini-batch learners use ``validation`` for early stopping."""
    return model.fit(train, validation=validation)


@fit_family.register(HawkesBase)
@fit_family.register(SCCS)
@fit_family.register(ConvSCCS)
def _(model: PathwaysEstimator, train: Any, validation: Any) -> PathwaysEstimator:
    return model.fit(train)  # full-batch learners: the validation part only enters the metrics


def fit_model(model: PathwaysEstimator, train: Any, val: Any, cfg: DictConfig, out: Path) -> PathwaysEstimator:
    """Fit ``model`` under the run's trainer settings (log folder, loggers, precision, resume, ...)."""
    with training_defaults(**_trainer_context(cfg, out)):
        return fit_family(model, train, val)


# ----------------------------------------------------------------------------------------------------------------
# factors
# ----------------------------------------------------------------------------------------------------------------
@singledispatch
def model_factors(model: PathwaysEstimator, train: Any, counts: pd.DataFrame | None, *,
                  intervals: str | None = "fisher", max_interval_params: int = 12000) -> pd.DataFrame | None:
    """Factors table of a fitted model (the family's ``to_factors``; None for families without a factors view)."""
    return model.to_factors()


@model_factors.register
def _(model: OutcomeModelBase, train: Any, counts: pd.DataFrame | None, *, intervals: str | None = "fisher",
      max_interval_params: int = 12000) -> pd.DataFrame | None:
    return model.to_factors(train)


@model_factors.register
def _(model: TPPBase, train: Any, counts: pd.DataFrame | None, *, intervals: str | None = "fisher",
      max_interval_params: int = 12000) -> pd.DataFrame | None:
    return None  # the reports of next-event runs show metrics and training curves


@model_factors.register
def _(model: HawkesBase, train: Any, counts: pd.DataFrame | None, *, intervals: str | None = "fisher",
      max_interval_params: int = 12000) -> pd.DataFrame | None:
    """Hawkes excitation with Wald intervals (``intervals="fisher"``) when affordable.

    Intervals cost a dense eigen-decomposition in the number of parameters; they are skipped, with a log line,
    above ``max_interval_params`` learned values (e.g. a nonparametric EM kernel on many codes).
    """
    return hawkes_factors(model, counts, _hawkes_intervals(model, train, intervals, max_interval_params))


def _hawkes_intervals(model: HawkesBase, train: Any, method: str | None, max_params: int) -> Any:
    existing = vars(model).get("confidence_intervals_")  # kept by fits that computed them
    if existing is not None or method is None:
        return existing
    n_params = sum(int(t.numel()) for t in model.export_state()["arrays"].values())
    if n_params > int(max_params):
        logger.info("report: %s intervals skipped for %s (%d learned values > report.max_interval_params=%d)",
                    method, type(model).__name__, n_params, int(max_params))
        return None
    try:
        return model.confidence_intervals(train, method=method)
    except Exception as exc:  # intervals are a bonus: a singular information matrix must not fail the run
        logger.info("no %s intervals for %s: %s", method, type(model).__name__, exc)
        return None


# ----------------------------------------------------------------------------------------------------------------
# train
# ----------------------------------------------------------------------------------------------------------------
def train(cfg: DictConfig, output_dir: str | os.PathLike) -> RunResult:
    """The training pipeline: data -> split -> encode -> fit -> metrics -> checkpoint (+ export) -> report.

    Parameters
    ----------
    cfg : composed config of ``configs/config.yaml``.
    output_dir : the run directory (Hydra's run dir from the scripts).

    Returns
    -------
    RunResult; ``summary.json`` in ``output_dir`` records overrides, model, metrics and paths (read by sweeps).
    """
    validate_config(cfg, "train")
    t0 = time.perf_counter()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    resolve_device(cfg.trainer.device)  # trainer=gpu without CUDA fails here, before any work
    if cfg.task == "signals":
        return detect_signals(cfg, out)
    if cfg.task == "cartography":
        return run_cartography(cfg, out)
    data, truth = load_data(cfg.data)
    model = build_model(cfg)
    train_part, val_part, test_part = split_data(data, list(cfg.split.fractions), int(cfg.seed))
    encode_cfg = plain(cfg.encode)
    train_x, val_x, test_x = encode_for(model, [train_part, val_part, test_part], encode_cfg, truth)
    t_fit = time.perf_counter()
    fit_model(model, train_x, val_x, cfg, out)
    fit_seconds = time.perf_counter() - t_fit
    metrics = evaluate_model(model, {"train": train_x, "val": val_x, "test": test_x}, truth)
    metrics.update(fit_seconds=fit_seconds, data_seconds=t_fit - t0)
    history = [dict(r) for r in (vars(model).get("history_") or [])]
    result = RunResult(output_dir=out, model=model, metrics=metrics, history=history)
    result.checkpoint = save(model, out / "model.pt", config=resolved(cfg), metrics=metrics,
                             fingerprint=data_fingerprint(train_x),
                             extra={"task": str(cfg.task), "name": str(cfg.name), "overrides": run_overrides(),
                                    "encode": encode_cfg})
    if cfg.checkpoint.export:
        result.exported = export_checkpoint(result.checkpoint, Path(str(cfg.paths.checkpoint_dir)), str(cfg.name))
    if cfg.report.enabled:
        counts = code_counts(train_x) if isinstance(train_x, Sequences) else None
        factors = model_factors(model, train_x, counts, intervals=cfg.report.get("intervals", "fisher"),
                                max_interval_params=int(cfg.report.get("max_interval_params", 12000)))
        result.report = write_report(
            out / "report", title=f"{cfg.name}: {type(model).__name__}", model=model, metrics=metrics,
            history=history, factors=factors, counts=counts, summary=_data_summary(data, train_x, cfg),
            min_cell_count=cfg.report.min_cell_count, top_k=int(cfg.report.top_k), figures=bool(cfg.report.figures))
    write_summary(out, result, "ok")
    return result


def _data_summary(data: Any, train_x: Any, cfg: DictConfig) -> dict[str, Any]:
    """Counts only (never identifiers) for the report header."""
    summary: dict[str, Any] = {"data": str(cfg.data.get("_target_")), "patients": n_patients(data),
                               "training samples": len(train_x)}
    if isinstance(train_x, Sequences):
        summary["training events"] = int(train_x.n_events)
    summary["seed"] = int(cfg.seed)
    return summary
