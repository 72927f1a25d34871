"""The training pipeline: data -> split -> encode -> fit -> metrics -> checkpoint -> report (-> export).

The whole config (keys and plain values) and the model's parameters are checked before any data is read; a resumed
run must have the config and data it was started with (:func:`pathways.training.state.check_resume`); the checkpoint
is exported to ``paths.checkpoint_dir`` only once everything else succeeded, so a failed run never replaces the last
good exported checkpoint.

Three config groups meet here, each a ``_target_`` node whose defaults live once, in a signature:

- ``encode`` builds the encoder (:mod:`pathways.encode.encoders`); it is fitted on the training part, must produce
  the model's ``input_kind``, and its state goes into the checkpoint;
- ``model`` builds the estimator. Its parameters are its own: per-model optimisation hyper-parameters (max_epochs,
  lr, weight_decay, batch_size, patience for neural models; max_iter for full-batch learners) have their ONE home
  in the model config (``model.max_epochs=5``); ``seed: ${seed}`` there follows the run's seed;
- ``trainer`` builds the run's :class:`pathways.training.Trainer` (device, precision, grad_clip, lr_schedule,
  deterministic, progress, resume, epoch_cap, iter_cap); the pipeline adds log_dir, checkpoint_dir and the logger
  group's loggers.

The trainer reaches the model by ONE route: ``model.fit(train, validation=val, trainer=trainer)``. Neural models
train with ``trainer.configured(<their hyper-parameters>)``; full-batch learners (Hawkes, EM, SCCS, the logistic
baseline) take its device and progress and cap their ``max_iter`` with ``trainer.iterations`` (they ignore the
validation part, which only enters the metrics). ``trainer=debug`` makes every model fast through the caps
(2 epochs, 20 iterations). The factors table is chosen by family (``functools.singledispatch``): Hawkes factors
carry Wald intervals when affordable, other families give ``model.to_factors(train)``.

A ``data`` node building an event dataset (``data=sharded``: :class:`pathways.pipelines.shards.EventShards`) takes
the sharded route of :func:`pathways.pipelines.shards.train_from_shards`: the neural models train through
``fit_from_shards``, each process reading only its own shards; no EventLog of the whole data is built.
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
from pathways.models.tpp.base import TPPBase
from pathways.pipelines.abuse import run_abuse
from pathways.pipelines.cartography import run_cartography
from pathways.pipelines.common import (
    RunResult,
    build_encoder,
    check_encoder,
    encode_for,
    export_checkpoint,
    instantiate,
    load_data,
    n_patients,
    resolved,
    run_overrides,
    split_data,
    write_summary,
)
from pathways.pipelines.infer import evaluate_model
from pathways.pipelines.report import (
    code_counts,
    hawkes_factors,
    source_code_labels,
    write_report,
)
from pathways.pipelines.schema import validate_config
from pathways.pipelines.shards import is_sharded, train_from_shards
from pathways.pipelines.signals import detect_signals
from pathways.pipelines.study import run_cohort_study
from pathways.training.distributed import is_main_process
from pathways.training.state import check_resume, run_identity
from pathways.training.loggers import build_loggers, finish_run
from pathways.training.trainer import Trainer
from pathways.utils import logger


# ----------------------------------------------------------------------------------------------------------------
# model, trainer and fitting
# ----------------------------------------------------------------------------------------------------------------
def build_model(cfg: DictConfig) -> PathwaysEstimator:
    """Instantiate ``cfg.model`` (its parameters come from the model config alone)."""
    model = instantiate(cfg.model)
    if not isinstance(model, PathwaysEstimator):
        raise PathwaysInputError(f"config 'model': {cfg.model.get('_target_')!r} is not a pathways estimator")
    return model


def build_trainer(cfg: DictConfig, out: Path) -> Trainer:
    """The run's Trainer from ``cfg.trainer``, writing its logs in ``out`` and its resumable state in
    ``out/trainer``."""
    trainer = instantiate(cfg.trainer, log_dir=str(out), checkpoint_dir=str(out / "trainer"))
    if not isinstance(trainer, Trainer):
        raise PathwaysInputError(f"config 'trainer': {cfg.trainer.get('_target_')!r} is not a "
                                 "pathways.training.Trainer")
    trainer.loggers = build_loggers(cfg.get("logger"), out)  # the logger group's nodes; they open lazily
    return trainer


def fit_model(model: PathwaysEstimator, train: Any, val: Any, trainer: Trainer) -> PathwaysEstimator:
    """Fit ``model`` under the run's trainer: the one route of the run-level settings (module docstring)."""
    return model.fit(train, validation=val, trainer=trainer)


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
    validate_config(cfg, "train")  # every key and plain value (report.*, split.*), before any work
    t0 = time.perf_counter()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    trainer = build_trainer(cfg, out)
    resolve_device(trainer.device)  # trainer=gpu without CUDA fails here, before any work
    if cfg.task == "signals":
        return detect_signals(cfg, out)
    if cfg.task == "abuse":
        return run_abuse(cfg, out)
    if cfg.task == "cartography":
        return run_cartography(cfg, out)
    if cfg.task == "cohort_study":
        return run_cohort_study(cfg, out)
    model = build_model(cfg)
    model.validate_params()  # a bad model.decay fails before the data is read
    encoder = build_encoder(cfg.encode)
    check_encoder(encoder, model)
    if is_sharded(cfg.data):  # data=sharded: fit_from_shards, each process reading its own shards
        return train_from_shards(cfg, out, model, encoder, trainer)
    data, truth = load_data(cfg.data)
    parts = split_data(data, list(cfg.split.fractions), int(cfg.seed))
    check_resume(str(trainer.checkpoint_dir), run_identity(resolved(cfg), parts), bool(trainer.resume))
    train_part, val_part, test_part = parts
    encoder.fit(train_part, truth)
    train_x, val_x, test_x = encode_for(encoder, [train_part, val_part, test_part])
    t_fit = time.perf_counter()
    fit_model(model, train_x, val_x, trainer)
    fit_seconds = time.perf_counter() - t_fit
    metrics = evaluate_model(model, {"train": train_x, "val": val_x, "test": test_x}, truth)
    metrics.update(fit_seconds=fit_seconds, data_seconds=t_fit - t0)
    history = [dict(r) for r in (vars(model).get("history_") or [])]
    result = RunResult(output_dir=out, model=model, metrics=metrics, history=history)
    if not is_main_process():  # under torchrun every rank fits; rank 0 alone writes the run's files
        return result
    result.checkpoint = save(model, out / "model.pt", config=resolved(cfg), metrics=metrics,
                             fingerprint=data_fingerprint(train_x),
                             extra={"task": str(cfg.task), "name": str(cfg.name), "overrides": run_overrides(),
                                    "encode": encoder.state()})
    if cfg.report.enabled:
        counts = code_counts(train_x) if isinstance(train_x, Sequences) else None
        factors = model_factors(model, train_x, counts, intervals=cfg.report.get("intervals", "fisher"),
                                max_interval_params=int(cfg.report.get("max_interval_params", 12000)))
        result.report = write_report(
            out / "report", title=f"{cfg.name}: {type(model).__name__}", model=model, metrics=metrics,
            history=history, factors=factors, counts=counts, summary=_data_summary(data, train_x, cfg),
            min_cell_count=cfg.report.min_cell_count, top_k=int(cfg.report.top_k), figures=bool(cfg.report.figures),
            data=train_x if isinstance(train_x, Sequences) else None,  # diagnostics figures of Hawkes models
            labels=source_code_labels(cfg.data, getattr(data, "vocab", None)))  # OMOP concept names
    if cfg.checkpoint.export:  # last: a run that failed above leaves the previously exported checkpoint in place
        result.exported = export_checkpoint(result.checkpoint, Path(str(cfg.paths.checkpoint_dir)), str(cfg.name))
    write_summary(out, result, "ok")
    finish_run(trainer.loggers, config=resolved(cfg), metrics=metrics,
               artifacts={"report": out / "report", "checkpoint": result.checkpoint})
    return result


def _data_summary(data: Any, train_x: Any, cfg: DictConfig) -> dict[str, Any]:
    """Counts only (never identifiers) for the report header."""
    summary: dict[str, Any] = {"data": str(cfg.data.get("_target_")), "patients": n_patients(data),
                               "training samples": len(train_x)}
    if isinstance(train_x, Sequences):
        summary["training events"] = int(train_x.n_events)
    summary["seed"] = int(cfg.seed)
    return summary
