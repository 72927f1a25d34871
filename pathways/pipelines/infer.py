"""Inference pipelines: ``evaluate`` (metrics of a checkpoint on new data) and ``predict`` (predictions as parquet).

What a family contributes is chosen by type (``functools.singledispatch`` over the family base classes):

- Hawkes models: held-out log-likelihood per event, recovery of a synthetic truth, one prediction row per patient
  from ``score_samples`` and the excitation graph;
- neural TPPs: log-likelihood per event, next-event metrics and predictions, simulated sequences;
- outcome models: outcome metrics (AUROC, ...) and one risk per patient;
- other estimators (SCCS): their ``score``.
"""
from __future__ import annotations

import os
from functools import singledispatch
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from pathways import metrics as M
from pathways.checkpoint import data_fingerprint, load, to_jsonable
from pathways.data.eventlog import EventLog
from pathways.encode.outcomes import OutcomeData
from pathways.encode.sequences import Sequences
from pathways.errors import PathwaysInputError
from pathways.models.base import PathwaysEstimator
from pathways.models.hawkes.base import HawkesBase
from pathways.models.recurrent.base import OutcomeModelBase
from pathways.models.tpp.base import TPPBase
from pathways.pipelines.common import (
    RunResult,
    encoder_of,
    load_data,
    write_csv,
    write_parquet,
    write_summary,
)
from pathways.pipelines.report import hawkes_factors, write_report
from pathways.pipelines.schema import validate_config
from pathways.synthetic.cohort import Truth
from pathways.utils import logger

#: scalar learned attributes reported as metrics (without the trailing underscore) when a model has them
_FIT_SCALARS = ("n_iter_", "converged_", "n_epochs_", "objective_")


# ----------------------------------------------------------------------------------------------------------------
# metrics per family
# ----------------------------------------------------------------------------------------------------------------
@singledispatch
def part_metrics(model: PathwaysEstimator, name: str, data: Any) -> dict[str, Any]:
    """Metrics of a fitted model on one named data part (``train``, ``val``, ``test``, ``eval``)."""
    try:
        return {f"{name}_score": float(model.score(data))}
    except (PathwaysInputError, TypeError, ValueError) as exc:
        logger.info("no %s score for %s: %s", name, type(model).__name__, exc)
        return {}


@part_metrics.register
def _(model: HawkesBase, name: str, data: Sequences) -> dict[str, Any]:
    return {f"{name}_loglik_per_event": float(model.score(data))} if data.n_events > 0 else {}


@part_metrics.register
def _(model: TPPBase, name: str, data: Sequences) -> dict[str, Any]:
    if data.n_events == 0:
        return {}
    out: dict[str, Any] = {f"{name}_loglik_per_event": float(model.score(data))}
    if name != "train":  # held-out parts only: prediction is costly
        pred = model.predict_next(data)
        nxt = M.next_event_metrics(data.times, pred.time, data.marks, pred.mark_proba)
        out.update({f"{name}_next_{k}": v for k, v in nxt.items()})
    return out


@part_metrics.register
def _(model: OutcomeModelBase, name: str, data: OutcomeData) -> dict[str, Any]:
    if data.y is None:
        return {}
    proba = model.predict_proba(data)
    p = proba[:, 1] if proba.ndim == 2 and proba.shape[1] == 2 and data.y.shape[1] == 1 else proba
    out: dict[str, Any] = {}
    if np.unique(data.y).size > 1:
        out.update({f"{name}_{k}": v for k, v in M.outcome_metrics(data.y[:, 0] if p.ndim == 1 else data.y,
                                                                    p).items()})
    out[f"{name}_loglik_per_sample"] = float(model.score(data))
    out[f"{name}_n_samples"] = int(len(data))
    return out


@singledispatch
def truth_metrics(model: PathwaysEstimator, truth: Truth) -> dict[str, Any]:
    """Recovery of a synthetic truth by the fitted model ({} for families without a comparable estimate)."""
    return {}


@truth_metrics.register
def _(model: HawkesBase, truth: Truth) -> dict[str, Any]:
    """Recovery of the true excitation graph (aligned by code): RMSE and edge-detection AUROC."""
    true_adj = np.asarray(truth.adjacency, float)
    index = pd.Index([str(c) for c in truth.codes]).get_indexer([str(c) for c in model.codes_])
    if (index < 0).any():
        return {}
    ref = true_adj[np.ix_(index, index)]
    est = np.asarray(model.adjacency_, float)
    out = {"adjacency_rmse_vs_truth": float(np.sqrt(np.mean((est - ref) ** 2)))}
    edges = (ref > 0).ravel()
    if 0 < edges.sum() < edges.size:
        out["edge_auroc_vs_truth"] = float(M.auroc(edges.astype(int), est.ravel()))
    return out


def evaluate_model(model: PathwaysEstimator, parts: Mapping[str, Any], truth: Truth | None = None) -> dict[str, Any]:
    """Metrics of a fitted model on each named data part (None parts skipped), its fit counters, truth recovery."""
    metrics: dict[str, Any] = {}
    for name, data in parts.items():
        if data is not None:
            metrics.update(part_metrics(model, name, data))
    learned = vars(model)  # fitted counters are plain learned attributes: read them, do not probe the class
    for attr in _FIT_SCALARS:
        value = learned.get(attr)
        if isinstance(value, (bool, int, float, np.integer, np.floating, np.bool_)):
            metrics[attr.rstrip("_")] = value.item() if isinstance(value, np.generic) else value
    if isinstance(truth, Truth):
        metrics.update(truth_metrics(model, truth))
    return to_jsonable(metrics)


# ----------------------------------------------------------------------------------------------------------------
# predictions per family
# ----------------------------------------------------------------------------------------------------------------
def _decode(codes: Any, marks: np.ndarray) -> np.ndarray:
    """Code strings of integer marks (the marks themselves as strings when the model has no vocabulary)."""
    marks = np.asarray(marks, dtype=np.int64)
    if codes is None:
        return marks.astype(str)
    return np.asarray(codes, dtype=object)[marks].astype(str)


def _tpp_codes(model: TPPBase) -> Any:
    return None if model.vocab_ is None else model.vocab_.codes


@singledispatch
def predictions(model: PathwaysEstimator, encoded: Any) -> pd.DataFrame:
    """Prediction rows of a fitted model (a ``patient_index`` column refers to the encoded patients)."""
    raise PathwaysInputError(f"predict: {type(model).__name__} has no prediction face (Hawkes models, neural TPPs "
                             "and outcome models have one)")


@predictions.register
def _(model: TPPBase, encoded: Sequences) -> pd.DataFrame:
    pred = model.predict_next(encoded)
    codes = _tpp_codes(model)
    return pd.DataFrame({"patient_index": np.repeat(np.arange(len(encoded)), encoded.lengths),
                         "time": encoded.times, "code": _decode(codes, encoded.marks),
                         "predicted_dt": pred.dt, "predicted_time": pred.time,
                         "predicted_code": _decode(codes, pred.mark), "predicted_proba": pred.mark_proba.max(axis=1)})


@predictions.register
def _(model: OutcomeModelBase, encoded: OutcomeData) -> pd.DataFrame:
    proba = model.predict_proba(encoded)
    index = encoded.patient_index if encoded.patient_index is not None else np.arange(len(encoded))
    frame = pd.DataFrame({"patient_index": np.asarray(index)})
    frame["risk"] = proba[:, 1] if proba.ndim == 2 and proba.shape[1] == 2 else proba[:, 0]
    return frame


@predictions.register
def _(model: HawkesBase, encoded: Sequences) -> pd.DataFrame:
    """Per-patient log-likelihood under the fitted Hawkes model (low values: unusual pathways)."""
    loglik = hawkes_patient_loglik(model, encoded)
    n = encoded.lengths
    return pd.DataFrame({"patient_index": np.arange(len(encoded)), "n_events": n, "loglik": loglik,
                         "loglik_per_event": np.where(n > 0, loglik / np.maximum(n, 1), np.nan)})


def hawkes_patient_loglik(model: HawkesBase, seqs: Sequences) -> np.ndarray:
    """Log-likelihood of each sequence under a fitted Hawkes model (float64, one value per patient)."""
    return np.asarray(model.score_samples(seqs), dtype=np.float64)


@singledispatch
def extra_predictions(model: PathwaysEstimator, cfg: DictConfig, out: Path) -> dict[str, Path]:
    """Files a family writes beside its predictions ({} by default)."""
    return {}


@extra_predictions.register
def _(model: HawkesBase, cfg: DictConfig, out: Path) -> dict[str, Path]:
    return {"factors": write_csv(hawkes_factors(model), out / "factors.csv")}


@extra_predictions.register
def _(model: TPPBase, cfg: DictConfig, out: Path) -> dict[str, Path]:
    if not cfg.get("horizon"):
        return {}
    seqs = model.sample(int(cfg.n_samples), float(cfg.horizon), seed=int(cfg.seed))
    samples = pd.DataFrame({"sample": np.repeat(np.arange(len(seqs)), seqs.lengths), "time": seqs.times,
                            "code": _decode(_tpp_codes(model), seqs.marks)})
    return {"samples": write_parquet(samples, out / "samples.parquet")}


# ----------------------------------------------------------------------------------------------------------------
# pipelines
# ----------------------------------------------------------------------------------------------------------------
def _checkpoint_path(cfg: DictConfig) -> Path:
    path = cfg.get("checkpoint")
    if path is None or str(path) in ("???", ""):
        raise PathwaysInputError("config 'checkpoint': give the checkpoint file, e.g. "
                                 "checkpoint=checkpoints/care_pathway_drivers.pt")
    return Path(str(path))


def _loaded(cfg: DictConfig) -> tuple[PathwaysEstimator, Any]:
    model = load(_checkpoint_path(cfg), device=str(cfg.device))
    data, _ = load_data(cfg.data)
    return model, data


def encode_like(model: PathwaysEstimator, data: Any) -> Any:
    """Encode new data for a loaded model with the encoder stored in its checkpoint (:func:`encoder_of`; old
    checkpoints' ``encode`` dicts included).

    New patients carry their own code list: an EventLog is re-indexed onto the model's vocabulary (unknown codes
    fail, named).
    """
    vocab = vars(model).get("vocab_")  # the fitted vocabulary (absent for families that do not keep one)
    if isinstance(data, EventLog) and vocab is not None and not data.vocab == vocab:
        data = data.with_vocab(vocab, unknown="error")
    return encoder_of(model).transform(data)


def evaluate(cfg: DictConfig, output_dir: str | os.PathLike) -> RunResult:
    """Score a checkpoint on the data of ``cfg.data``; writes metrics.json and a report in ``output_dir``."""
    validate_config(cfg, "evaluate")
    out = Path(output_dir)
    model, data = _loaded(cfg)
    encoded = encode_like(model, data)
    metrics = evaluate_model(model, {"eval": encoded})
    metrics["data_fingerprint_matches_training"] = data_fingerprint(encoded) == model.checkpoint_.get(
        "data_fingerprint")
    result = RunResult(output_dir=out, model=model, metrics=metrics)
    result.report = write_report(out / "report", title=f"evaluation of {_checkpoint_path(cfg).name}", model=model,
                                 metrics=metrics, min_cell_count=cfg.report.min_cell_count, figures=False)
    write_summary(out, result, "ok")
    return result


def predict(cfg: DictConfig, output_dir: str | os.PathLike) -> RunResult:
    """Predictions of a checkpoint for the patients of ``cfg.data``, written as parquet.

    - Hawkes models: one row per patient (``patient_index``, ``patient_id``, ``n_events``, ``loglik``,
      ``loglik_per_event``) plus the excitation graph (``factors.csv``);
    - neural TPPs: one row per event with the predicted time and type of that event from the history before it
      (``predicted_dt``, ``predicted_time``, ``predicted_code``, ``predicted_proba``, observed ``time`` / ``code``),
      and ``n_samples`` sequences simulated on ``[0, horizon]`` when ``horizon`` is set (``samples.parquet``);
    - outcome models: one row per patient with ``risk`` (probability of the outcome within the horizon).
    """
    validate_config(cfg, "predict")
    out = Path(output_dir)
    model, data = _loaded(cfg)
    encoded = encode_like(model, data)
    target = Path(str(cfg.output)) if cfg.get("output") else out / "predictions.parquet"
    frame = predictions(model, encoded)
    if isinstance(data, EventLog):
        frame.insert(1, "patient_id", data.patients["patient_id"].to_numpy()[frame["patient_index"].to_numpy()])
    result = RunResult(output_dir=out, model=model, files={"predictions": write_parquet(frame, target)})
    result.metrics = {"n_rows": int(len(frame))}
    result.files.update(extra_predictions(model, cfg, out))
    write_summary(out, result, "ok")
    return result
