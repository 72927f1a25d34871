"""Run pipelines behind the console scripts: train, evaluate, predict, simulate, detect signals.

Each function takes a composed Hydra config (see ``configs/``) and an output folder, calls library functions only,
and returns what it wrote. The training pipeline is driven by the model's ``input_kind``:

- ``"sequences"`` (Hawkes, neural TPPs): patients are split, each split encoded with ``to_sequences``;
- ``"sparse_series"`` (recurrent outcome models): ``outcome_dataset`` bins histories before an index time and labels
  an outcome within a horizon after it;
- ``"sccs"`` (ConvSCCS): ``sccs_data`` builds the self-controlled case-series buckets.

and by the model's capabilities: ``score`` gives held-out log-likelihoods, ``predict_next`` next-event metrics,
``predict_proba`` outcome metrics, ``adjacency_`` the excitation graph.
"""
from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from pathways.checkpoint import data_fingerprint, load, save, to_jsonable
from pathways.data.eventlog import EventLog
from pathways.encode.sequences import Sequences, to_sequences
from pathways.errors import PathwaysInputError
from pathways.report import Report, code_counts, hawkes_factors, suppress_small_counts, write_report
from pathways.device import resolve_device
from pathways.pipelines.schema import validate_config
from pathways.pipelines.sweep import SUMMARY_FILE
from pathways.utils import atomic_path, logger

# trainer-group keys that become estimator parameters when the estimator has a parameter of that name
_MODEL_TRAINER_KEYS = ("max_epochs", "max_iter", "lr", "weight_decay", "batch_size", "patience", "device",
                       "progress")


@dataclass
class RunResult:
    """What a pipeline produced: the fitted model, its metrics and the files written."""

    output_dir: Path
    model: Any = None
    metrics: dict[str, Any] = field(default_factory=dict)
    checkpoint: Path | None = None
    exported: Path | None = None
    report: Report | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    def describe(self) -> str:
        """Human-readable lines saying where everything is."""
        lines = [f"run directory : {self.output_dir}"]
        if self.checkpoint is not None:
            lines.append(f"checkpoint    : {self.checkpoint}")
        if self.exported is not None:
            lines.append(f"exported to   : {self.exported}")
        if self.report is not None:
            lines.append(f"report        : {self.report.markdown}")
            lines += [f"  {k:<20}: {v}" for k, v in self.report.files.items() if k != "report"]
        lines += [f"{k:<14}: {v}" for k, v in self.files.items()]
        if self.metrics:
            shown = {k: v for k, v in self.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            lines.append("metrics       : " + ", ".join(f"{k}={v:.4g}" for k, v in list(shown.items())[:8]))
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# config helpers
# ----------------------------------------------------------------------------------------------------------------
def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def _resolved(cfg: DictConfig) -> dict[str, Any]:
    """The config without Hydra's own node, resolved to plain containers (what checkpoints store)."""
    container = OmegaConf.to_container(cfg, resolve=False)
    container.pop("hydra", None)
    return to_jsonable(OmegaConf.to_container(OmegaConf.create(container), resolve=True))


def _instantiate(node: DictConfig, **kwargs: Any) -> Any:
    from hydra.utils import instantiate

    try:
        return instantiate(node, _convert_="all", **kwargs)
    except Exception as exc:  # Hydra wraps the real error: surface the cause with the target's name
        cause = exc.__cause__ or exc
        if isinstance(cause, PathwaysInputError):
            raise cause from None
        raise PathwaysInputError(f"cannot build '{node.get('_target_')}': {type(cause).__name__}: {cause}") from exc


def run_overrides() -> list[str]:
    """Command-line overrides of the current Hydra job ([] outside Hydra)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except Exception:  # not inside a Hydra job (tests, library use)
        return []


# ----------------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------------
def load_data(node: DictConfig) -> tuple[EventLog | Sequences, Any]:
    """Build the data of a ``data`` config node: ``(EventLog or Sequences, ground truth or None)``.

    A target returning a pair ``(data, truth)`` (the synthetic cohort) keeps the truth for the report.
    """
    out = _instantiate(node)
    data, truth = (out[0], out[1]) if isinstance(out, tuple) and len(out) == 2 else (out, None)
    if not isinstance(data, (EventLog, Sequences)):
        raise PathwaysInputError(
            f"config 'data': target {node.get('_target_')!r} returned {type(data).__name__}; expected an EventLog "
            "or Sequences (or a pair (data, truth))"
        )
    return data, truth


def _n_patients(data: EventLog | Sequences) -> int:
    return data.n_patients if isinstance(data, EventLog) else len(data)


def _subset(data: EventLog | Sequences, idx: np.ndarray) -> EventLog | Sequences:
    return data.select_patients(idx) if isinstance(data, EventLog) else data[idx]


def split_data(data: EventLog | Sequences, fractions: Sequence[float], seed: int) -> list[EventLog | Sequences]:
    """Train / validation / test subsets (patients split with ``split_patients``; empty splits become None)."""
    from pathways.encode.split import split_patients

    if len(fractions) != 3:
        raise PathwaysInputError(f"config 'split.fractions': expected 3 values (train, val, test), got {fractions}")
    source = data if isinstance(data, EventLog) else len(data)
    parts = split_patients(source, fractions=[float(f) for f in fractions], seed=int(seed))
    if parts[0].size == 0:
        raise PathwaysInputError(f"config 'split.fractions': no patient in the training split ({fractions})")
    return [_subset(data, idx) if idx.size else None for idx in parts]


# ----------------------------------------------------------------------------------------------------------------
# encoders per input_kind
# ----------------------------------------------------------------------------------------------------------------
def encode_for(model: Any, parts: Sequence[Any], encode_cfg: dict[str, Any], truth: Any = None) -> list[Any]:
    """Encode train / val / test parts in the form ``model.input_kind`` asks for (None parts stay None).

    ``truth`` (the synthetic cohort's) supplies SCCS exposures / outcome when ``encode.sccs`` leaves them unset.
    Choices made here (outcome codes, SCCS exposures) are written back into ``encode_cfg`` (a plain dict), which
    the checkpoint stores so that inference encodes new patients the same way.
    """
    kind = getattr(model, "input_kind", "sequences")
    if kind == "sequences":
        return [None if p is None else (to_sequences(p) if isinstance(p, EventLog) else p) for p in parts]
    if not isinstance(parts[0], EventLog):
        raise PathwaysInputError(f"model input_kind '{kind}' needs an EventLog; the data config gave "
                                 f"{type(parts[0]).__name__}")
    if kind == "sparse_series":
        labels = _outcome_spec(parts[0], encode_cfg)
        encode_cfg.setdefault("labels", {})["outcomes"] = labels
        return [None if p is None else _outcome_data(p, labels, encode_cfg) for p in parts]
    if kind == "sccs":
        spec = _sccs_spec(dict(encode_cfg.get("sccs") or {}), truth)
        encode_cfg["sccs"] = spec
        return [None if p is None else _sccs_data(p, spec) for p in parts]
    raise PathwaysInputError(f"model input_kind {kind!r} is unknown; expected sequences, sparse_series or sccs")


def _outcome_spec(log: EventLog, encode_cfg: Mapping[str, Any]) -> list[str]:
    """Outcome codes from ``encode.labels.outcomes``, or the most frequent diagnosis code of the training log."""
    chosen = (encode_cfg.get("labels") or {}).get("outcomes")
    if chosen:
        return [chosen] if isinstance(chosen, str) else [str(c) for c in chosen]
    counts = np.bincount(log.code, minlength=log.n_codes)
    category = np.asarray(log.category.astype(str)) if log.category is not None else np.array([])
    diag = np.isin(category, ["diagnosis", "outcome", "event"]) if category.size else np.zeros(0, bool)
    if diag.any():
        counts = np.bincount(log.code[diag], minlength=log.n_codes)
    code = str(log.vocab.codes[int(np.argmax(counts))])
    logger.info("outcome_risk: no encode.labels.outcomes given, using the most frequent diagnosis code")
    return [code]


def _index_times(log: EventLog, labels_cfg: Mapping[str, Any]) -> Any:
    column = labels_cfg.get("index_time")
    if column:
        return str(column)
    start = log.patients["start"].to_numpy(float)
    end = log.patients["end"].to_numpy(float)
    return start + 0.5 * (end - start)  # middle of each observation window: history before, outcome after


def _outcome_data(log: EventLog, outcomes: list[str], encode_cfg: Mapping[str, Any]) -> Any:
    from pathways.encode.outcomes import outcome_dataset

    labels = dict(encode_cfg.get("labels") or {})
    series = dict(encode_cfg.get("sparse_series") or {})
    return outcome_dataset(log, outcomes, float(labels.get("horizon_days", 180.0)), _index_times(log, labels),
                           lookback=float(labels.get("lookback_days", 365.0)),
                           bin_days=float(series.get("bin_days", 30.0)), value=str(series.get("value", "count")),
                           censoring=str(labels.get("censoring", "keep")))


def _sccs_spec(spec: dict[str, Any], truth: Any) -> dict[str, Any]:
    """Complete ``encode.sccs`` from the synthetic truth: the first outcome and the drugs planted on it + 2 nulls."""
    if (not spec.get("exposures") or not spec.get("outcome")) and getattr(truth, "drug_effects", None) is not None:
        effects = truth.drug_effects
        outcome = spec.get("outcome") or str(effects["event"].iloc[0])
        planted = [str(d) for d in effects.loc[effects["event"].astype(str) == outcome, "drug"].unique()]
        spec.setdefault("outcome", outcome)
        if not spec.get("exposures"):
            spec["exposures"] = planted + [str(d) for d in list(getattr(truth, "null_drugs", []))[:2]]
    if not spec.get("exposures") or not spec.get("outcome"):
        raise PathwaysInputError("config 'encode.sccs': set 'exposures' (drug codes) and 'outcome' (event code)")
    return spec


def _sccs_data(log: EventLog, spec: Mapping[str, Any]) -> Any:
    from pathways.encode.sccs import sccs_data

    spec = dict(spec)
    return sccs_data(log, spec.pop("exposures"), spec.pop("outcome"), float(spec.pop("bucket_size", 7.0)), **spec)


# ----------------------------------------------------------------------------------------------------------------
# model building and fitting
# ----------------------------------------------------------------------------------------------------------------
def build_model(cfg: DictConfig) -> Any:
    """Instantiate ``cfg.model`` and apply the run-level settings it has parameters for.

    ``seed`` and the non-null ``trainer`` keys among max_epochs, max_iter (iteration budget of full-batch
    learners), lr, weight_decay, batch_size, patience, device and progress override the model's own values (null
    keeps the model config's value).
    """
    model = _instantiate(cfg.model)
    if not hasattr(model, "fit") or not hasattr(model, "get_params"):
        raise PathwaysInputError(f"config 'model': {cfg.model.get('_target_')!r} is not an estimator")
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


def fit_model(model: Any, train: Any, val: Any, cfg: DictConfig, out: Path) -> Any:
    """Fit ``model`` on ``train`` (validation data passed when ``fit`` accepts it), under the run's trainer settings."""
    from pathways.training.trainer import training_defaults

    kwargs: dict[str, Any] = {}
    if val is not None and "validation" in inspect.signature(model.fit).parameters:
        kwargs["validation"] = val
    with training_defaults(**_trainer_context(cfg, out)):
        return model.fit(train, **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------------------------------------------------
def evaluate_model(model: Any, parts: Mapping[str, Any], truth: Any = None) -> dict[str, Any]:
    """Metrics of a fitted model on each named data part, by capability (score, predict_next, predict_proba)."""
    metrics: dict[str, Any] = {}
    for name, data in parts.items():
        if data is None:
            continue
        metrics.update(_part_metrics(model, name, data))
    for attr in ("n_iter_", "converged_", "n_epochs_", "objective_"):
        value = getattr(model, attr, None)
        if isinstance(value, (bool, int, float, np.integer, np.floating, np.bool_)):
            metrics[attr.rstrip("_")] = value.item() if hasattr(value, "item") else value
    if truth is not None and hasattr(model, "adjacency_"):
        metrics.update(_truth_metrics(model, truth))
    return to_jsonable(metrics)


def _part_metrics(model: Any, name: str, data: Any) -> dict[str, Any]:
    from pathways import metrics as M

    out: dict[str, Any] = {}
    kind = getattr(model, "input_kind", "sequences")
    if kind == "sequences" and getattr(data, "n_events", 0) > 0:
        out[f"{name}_loglik_per_event"] = float(model.score(data))
        if hasattr(model, "predict_next") and name != "train":  # held-out parts only: prediction is costly
            pred = model.predict_next(data)
            nxt = M.next_event_metrics(data.times, pred.time, data.marks, pred.mark_proba)
            out.update({f"{name}_next_{k}": v for k, v in nxt.items()})
    elif kind == "sparse_series" and hasattr(model, "predict_proba") and getattr(data, "y", None) is not None:
        proba = model.predict_proba(data)
        p = proba[:, 1] if proba.ndim == 2 and proba.shape[1] == 2 and data.y.shape[1] == 1 else proba
        if np.unique(data.y).size > 1:
            out.update({f"{name}_{k}": v for k, v in M.outcome_metrics(data.y[:, 0] if p.ndim == 1 else data.y,
                                                                        p).items()})
        out[f"{name}_loglik_per_sample"] = float(model.score(data))
        out[f"{name}_n_samples"] = int(len(data))
    elif hasattr(model, "score"):
        try:
            out[f"{name}_score"] = float(model.score(data))
        except (PathwaysInputError, TypeError, ValueError) as exc:
            logger.info("no %s score for %s: %s", name, type(model).__name__, exc)
    return out


def _truth_metrics(model: Any, truth: Any) -> dict[str, Any]:
    """Recovery of the true excitation graph (aligned by code): RMSE and edge-detection AUROC."""
    from pathways.metrics import auroc

    true_adj = getattr(truth, "adjacency", None)
    true_codes = getattr(truth, "codes", None)
    if true_adj is None or true_codes is None:
        return {}
    true_adj = np.asarray(true_adj, float)
    index = pd.Index([str(c) for c in true_codes]).get_indexer([str(c) for c in model.codes_])
    if (index < 0).any():
        return {}
    ref = true_adj[np.ix_(index, index)]
    est = np.asarray(model.adjacency_, float)
    out = {"adjacency_rmse_vs_truth": float(np.sqrt(np.mean((est - ref) ** 2)))}
    edges = (ref > 0).ravel()
    if 0 < edges.sum() < edges.size:
        out["edge_auroc_vs_truth"] = float(auroc(edges.astype(int), est.ravel()))
    return out


# ----------------------------------------------------------------------------------------------------------------
# factors
# ----------------------------------------------------------------------------------------------------------------
def model_factors(model: Any, train: Any, counts: pd.DataFrame | None, *, intervals: str | None = "fisher",
                  max_interval_params: int = 12000) -> pd.DataFrame | None:
    """Factors table of a fitted model: Hawkes excitation (with intervals when affordable), SCCS curves, attributions.

    Hawkes intervals (``intervals="fisher"``: Wald intervals from the observed information) cost a dense
    eigen-decomposition in the number of parameters; they are skipped, with a log line, above
    ``max_interval_params`` learned values (e.g. a nonparametric EM kernel on many codes).
    """
    if hasattr(model, "adjacency_"):
        return hawkes_factors(model, counts, _hawkes_intervals(model, train, intervals, max_interval_params))
    if hasattr(model, "to_factors"):
        return model.to_factors()
    if getattr(model, "input_kind", None) == "sparse_series":
        from pathways.factors.attribution import attribution_factors

        return attribution_factors(model, train)
    return None


def _hawkes_intervals(model: Any, train: Any, method: str | None, max_params: int) -> Any:
    existing = getattr(model, "confidence_intervals_", None)
    if existing is not None or method is None or not hasattr(model, "confidence_intervals"):
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
    data, truth = load_data(cfg.data)
    model = build_model(cfg)
    train_part, val_part, test_part = split_data(data, list(cfg.split.fractions), int(cfg.seed))
    encode_cfg = _plain(cfg.encode)
    train_x, val_x, test_x = encode_for(model, [train_part, val_part, test_part], encode_cfg, truth)
    t_fit = time.perf_counter()
    fit_model(model, train_x, val_x, cfg, out)
    fit_seconds = time.perf_counter() - t_fit
    metrics = evaluate_model(model, {"train": train_x, "val": val_x, "test": test_x}, truth)
    metrics.update(fit_seconds=fit_seconds, data_seconds=t_fit - t0)
    history = [dict(r) for r in (getattr(model, "history_", None) or [])]
    result = RunResult(output_dir=out, model=model, metrics=metrics, history=history)
    result.checkpoint = save(model, out / "model.pt", config=_resolved(cfg), metrics=metrics,
                             fingerprint=data_fingerprint(train_x),
                             extra={"task": str(cfg.task), "name": str(cfg.name), "overrides": run_overrides(),
                                    "encode": encode_cfg})
    if cfg.checkpoint.export:
        result.exported = _export(result.checkpoint, Path(str(cfg.paths.checkpoint_dir)), str(cfg.name))
    if cfg.report.enabled:
        counts = code_counts(train_x) if hasattr(train_x, "marks") else None
        factors = model_factors(model, train_x, counts, intervals=cfg.report.get("intervals", "fisher"),
                                max_interval_params=int(cfg.report.get("max_interval_params", 12000)))
        result.report = write_report(
            out / "report", title=f"{cfg.name}: {type(model).__name__}", model=model, metrics=metrics,
            history=history, factors=factors, counts=counts, summary=_data_summary(data, train_x, cfg),
            min_cell_count=cfg.report.min_cell_count, top_k=int(cfg.report.top_k), figures=bool(cfg.report.figures))
    _write_summary(out, result, "ok")
    return result


def _data_summary(data: Any, train_x: Any, cfg: DictConfig) -> dict[str, Any]:
    """Counts only (never identifiers) for the report header."""
    summary = {"data": str(cfg.data.get("_target_")), "patients": _n_patients(data),
               "training samples": len(train_x) if hasattr(train_x, "__len__") else "?"}
    if hasattr(train_x, "n_events"):
        summary["training events"] = int(train_x.n_events)
    summary["seed"] = int(cfg.seed)
    return summary


def _export(checkpoint: Path, directory: Path, name: str) -> Path:
    """Copy the run's checkpoint to ``directory/<name>[-<overrides>].pt`` atomically."""
    suffix = _override_tag(run_overrides())
    target = directory / f"{name}{'-' + suffix if suffix else ''}.pt"
    with atomic_path(target) as tmp:
        shutil.copyfile(checkpoint, tmp)
    return target


def _override_tag(overrides: Sequence[str]) -> str:
    """File-name-safe tag of the overrides of a sweep job (empty for single runs without overrides)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.get().mode != RunMode.MULTIRUN:
            return ""
    except Exception:
        return ""
    tag = ",".join(o for o in overrides if not o.startswith("hydra"))
    return re.sub(r"[^A-Za-z0-9_.,=-]+", "_", tag)[:120]


def _write_summary(out: Path, result: RunResult, status: str) -> None:
    summary = {"status": status, "overrides": run_overrides(), "metrics": result.metrics,
               "model": None if result.model is None else type(result.model).__name__,
               "checkpoint": None if result.checkpoint is None else str(result.checkpoint),
               "exported": None if result.exported is None else str(result.exported)}
    with atomic_path(out / SUMMARY_FILE) as tmp:
        tmp.write_text(json.dumps(to_jsonable(summary), indent=2) + "\n")


# ----------------------------------------------------------------------------------------------------------------
# evaluate / predict
# ----------------------------------------------------------------------------------------------------------------
def _checkpoint_path(cfg: DictConfig) -> Path:
    path = cfg.get("checkpoint")
    if path is None or str(path) in ("???", ""):
        raise PathwaysInputError("config 'checkpoint': give the checkpoint file, e.g. "
                                 "checkpoint=checkpoints/care_pathway_drivers.pt")
    return Path(str(path))


def _loaded(cfg: DictConfig) -> tuple[Any, Any]:
    model = load(_checkpoint_path(cfg), device=str(cfg.device))
    data, _ = load_data(cfg.data)
    return model, data


def _encode_like(model: Any, data: Any) -> Any:
    """Encode new data for a loaded model with the settings stored in its checkpoint."""
    header = getattr(model, "checkpoint_", {}) or {}
    encode_cfg = dict((header.get("extra") or {}).get("encode") or (header.get("config") or {}).get("encode") or {})
    vocab = getattr(model, "vocab_", None)
    if isinstance(data, EventLog) and vocab is not None and not data.vocab == vocab:
        # new patients carry their own code list: re-index onto the model's (unknown codes fail, named)
        data = data.with_vocab(vocab, unknown="error")
    return encode_for(model, [data], encode_cfg)[0]


def evaluate(cfg: DictConfig, output_dir: str | os.PathLike) -> RunResult:
    """Score a checkpoint on the data of ``cfg.data``; writes metrics.json and a report in ``output_dir``."""
    validate_config(cfg, "evaluate")
    out = Path(output_dir)
    model, data = _loaded(cfg)
    encoded = _encode_like(model, data)
    metrics = evaluate_model(model, {"eval": encoded})
    metrics["data_fingerprint_matches_training"] = data_fingerprint(encoded) == model.checkpoint_.get(
        "data_fingerprint")
    result = RunResult(output_dir=out, model=model, metrics=metrics)
    result.report = write_report(out / "report", title=f"evaluation of {_checkpoint_path(cfg).name}", model=model,
                                 metrics=metrics, min_cell_count=cfg.report.min_cell_count, figures=False)
    _write_summary(out, result, "ok")
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
    encoded = _encode_like(model, data)
    target = Path(str(cfg.output)) if cfg.get("output") else out / "predictions.parquet"
    frame = _predictions(model, encoded, data)
    with atomic_path(target, suffix=".parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    result = RunResult(output_dir=out, model=model, files={"predictions": target})
    result.metrics = {"n_rows": int(len(frame))}
    if hasattr(model, "adjacency_"):
        factors = hawkes_factors(model)
        result.files["factors"] = out / "factors.csv"
        with atomic_path(result.files["factors"]) as tmp:
            factors.to_csv(tmp, index=False)
    if cfg.get("horizon") and hasattr(model, "sample"):
        seqs = model.sample(int(cfg.n_samples), float(cfg.horizon), seed=int(cfg.seed))
        samples = pd.DataFrame({"sample": np.repeat(np.arange(len(seqs)), seqs.lengths), "time": seqs.times,
                                "code": _decode(model, seqs.marks)})
        result.files["samples"] = out / "samples.parquet"
        with atomic_path(result.files["samples"], suffix=".parquet") as tmp:
            samples.to_parquet(tmp, index=False)
    _write_summary(out, result, "ok")
    return result


def _decode(model: Any, marks: np.ndarray) -> np.ndarray:
    codes = np.asarray(getattr(model, "codes_", None) if getattr(model, "codes_", None) is not None
                       else model.vocab_.codes, dtype=object)
    return codes[np.asarray(marks, dtype=np.int64)].astype(str)


def _patient_ids(data: Any, index: np.ndarray) -> np.ndarray | None:
    if isinstance(data, EventLog):
        return data.patients["patient_id"].to_numpy()[index]
    return None


def _predictions(model: Any, encoded: Any, data: Any) -> pd.DataFrame:
    if hasattr(model, "predict_next"):
        pred = model.predict_next(encoded)
        seq = np.repeat(np.arange(len(encoded)), encoded.lengths)
        frame = pd.DataFrame({"patient_index": seq, "time": encoded.times, "code": _decode(model, encoded.marks),
                              "predicted_dt": pred.dt, "predicted_time": pred.time,
                              "predicted_code": _decode(model, pred.mark),
                              "predicted_proba": pred.mark_proba.max(axis=1)})
    elif hasattr(model, "predict_proba"):
        proba = model.predict_proba(encoded)
        index = np.asarray(getattr(encoded, "patient_index", None) if getattr(encoded, "patient_index", None)
                           is not None else np.arange(len(encoded)))
        frame = pd.DataFrame({"patient_index": index})
        frame["risk"] = proba[:, 1] if proba.ndim == 2 and proba.shape[1] == 2 else proba[:, 0]
    elif hasattr(model, "adjacency_"):
        frame = _hawkes_patient_scores(model, encoded)
    else:
        raise PathwaysInputError(f"predict: {type(model).__name__} has no prediction face")
    ids = _patient_ids(data, frame["patient_index"].to_numpy())
    if ids is not None:
        frame.insert(1, "patient_id", ids)
    return frame


def _hawkes_patient_scores(model: Any, seqs: Sequences) -> pd.DataFrame:
    """Per-patient log-likelihood under the fitted Hawkes model (low values: unusual pathways)."""
    aligned, baselines = model._prepared(seqs)
    lam = model._event_intensities(aligned, baselines)
    _, total = model._compensators(aligned, baselines)
    with np.errstate(divide="ignore"):
        logs = np.log(lam)
    per_seq = np.zeros(len(aligned))
    np.add.at(per_seq, np.repeat(np.arange(len(aligned)), aligned.lengths), logs)
    loglik = per_seq - total.sum(axis=1)
    n = aligned.lengths
    return pd.DataFrame({"patient_index": np.arange(len(aligned)), "n_events": n, "loglik": loglik,
                         "loglik_per_event": np.where(n > 0, loglik / np.maximum(n, 1), np.nan)})


# ----------------------------------------------------------------------------------------------------------------
# simulate / signals
# ----------------------------------------------------------------------------------------------------------------
def simulate(cfg: DictConfig, output_dir: str | os.PathLike) -> RunResult:
    """Simulate the data of ``cfg.data`` and write it as parquet (EventLog round-trips through ``read_parquet``)."""
    validate_config(cfg, "simulate")
    out = Path(output_dir)
    data, truth = load_data(cfg.data)
    target = Path(str(cfg.output)) if cfg.get("output") else out / "events.parquet"
    if isinstance(data, Sequences):
        frame = pd.DataFrame({"patient_id": np.repeat(np.arange(len(data)), data.lengths), "time": data.times,
                              "code": (np.asarray(data.vocab.codes, dtype=object)[data.marks] if data.vocab
                                       is not None else data.marks.astype(str))})
        with atomic_path(target, suffix=".parquet") as tmp:
            frame.to_parquet(tmp, index=False)
    else:
        data.to_parquet(target)
    result = RunResult(output_dir=out, files={"events": target},
                       metrics={"n_patients": _n_patients(data), "n_events": int(data.n_events)})
    if truth is not None and hasattr(truth, "adjacency") and hasattr(truth, "codes"):
        codes = [str(c) for c in truth.codes]
        adj = np.asarray(truth.adjacency, float)
        d = len(codes)
        tgt, src = np.divmod(np.arange(d * d), d)
        frame = pd.DataFrame({"source": np.asarray(codes)[src], "target": np.asarray(codes)[tgt],
                              "effect": adj.ravel()})
        result.files["truth"] = out / "truth_adjacency.csv"
        with atomic_path(result.files["truth"]) as tmp:
            frame.to_csv(tmp, index=False)
    _write_summary(out, result, "ok")
    return result


def detect_signals(cfg: DictConfig, output_dir: str | os.PathLike) -> RunResult:
    """Screen the data of ``cfg.data`` for drug-safety signals with ``cfg.signals`` (``pathways.signals.detect``)."""
    out = Path(output_dir)
    node = cfg.get("signals")
    if node is None or "_target_" not in node:
        raise PathwaysInputError("config 'signals': needs a _target_ (e.g. pathways.signals.detect)")
    data, truth = load_data(cfg.data)
    if not isinstance(data, EventLog):
        raise PathwaysInputError("detect_signals: the data config must give an EventLog (drugs and events)")
    table = _instantiate(node, log=data, **_signal_defaults(node, truth))
    if isinstance(table, tuple):
        table = table[0]
    if not isinstance(table, pd.DataFrame):
        raise PathwaysInputError(f"config 'signals': {node.get('_target_')} returned {type(table).__name__}, "
                                 "expected the signal table")
    metrics = {"n_signals": int(len(table)),
               "n_flagged": int(table["flag"].sum()) if "flag" in table.columns else None}
    metrics.update(_signal_truth_metrics(table, truth))
    result = RunResult(output_dir=out, metrics=metrics)
    report_cfg = cfg.get("report") or {}
    min_cell = report_cfg.get("min_cell_count")
    figures = bool(report_cfg.get("figures", True))
    result.report = write_report(out / "report", title=f"{cfg.get('name', 'signals')}: signal table",
                                 metrics=metrics, signals=table, min_cell_count=min_cell,
                                 top_k=int(report_cfg.get("top_k", 20)), figures=figures)
    result.files.update(_write_signal_outputs(out, data, table, node, min_cell, figures))
    _write_summary(out, result, "ok")
    return result


def _write_signal_outputs(out: Path, log: EventLog, table: pd.DataFrame, node: DictConfig,
                          min_cell_count: int | None, figures: bool) -> dict[str, Path]:
    """signals.parquet, anomalies.parquet, relative-incidence curves of the flagged SCCS pairs, volcano plot."""
    from pathways.signals import count_anomaly_scores
    from pathways.signals.detect import relative_incidence_curves

    files: dict[str, Path] = {}
    signals = suppress_small_counts(table, min_cell_count)
    signals.attrs = {}  # parquet metadata must stay JSON: the fitted nulls live in the report's metrics
    files["signals_parquet"] = _write_parquet(signals, out / "signals.parquet")
    units = ["patient"] + [u for u in ("prescriber", "pharmacy") if u in log.extras]
    anomalies = pd.concat([count_anomaly_scores(log, unit=u) for u in units], ignore_index=True)
    anomalies["unit_index"] = anomalies["unit_index"].astype(str)
    if min_cell_count is not None:  # per-code counts inside the explanation could be small: keep the codes only
        anomalies["top_codes"] = anomalies["top_codes"].str.replace(r" \([^)]*\)", "", regex=True)
    files["anomalies"] = _write_parquet(suppress_small_counts(anomalies, min_cell_count), out / "anomalies.parquet")
    flagged = table[(table["method"] == "SCCS") & table["flag"].astype(bool)].sort_values("rank").head(12)
    curves = pd.DataFrame()
    if not flagged.empty:
        curves = relative_incidence_curves(log, list(zip(flagged["exposure"], flagged["outcome"])),
                                           bucket_days=float(node.get("bucket_days", 7.0)),
                                           outcome_mode=str(node.get("outcome_mode", "first")),
                                           exposure_coding=str(node.get("exposure_coding", "exposed")))
        curves = suppress_small_counts(curves, min_cell_count)
        files["ri_curves"] = _write_parquet(curves, out / "relative_incidence_curves.parquet")
    if figures:
        files.update(_signal_figures(out / "report" / "figures", signals, curves))
    return files


def _write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path, suffix=".parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    return path


def _signal_figures(fig_dir: Path, signals: pd.DataFrame, curves: pd.DataFrame) -> dict[str, Path]:
    try:
        from pathways import plots
        import matplotlib  # noqa: F401
    except ImportError:
        logger.info("detect_signals: matplotlib not installed, figures skipped (pip install 'pathways[plot]')")
        return {}
    files = {"volcano": fig_dir / "volcano.png"}
    plots.plot_volcano(signals, files["volcano"])
    if not curves.empty:
        files["ri_curves_figure"] = fig_dir / "relative_incidence.png"
        plots.plot_relative_incidence(curves, files["ri_curves_figure"])
    return files


def _signal_defaults(node: DictConfig, truth: Any) -> dict[str, Any]:
    """Outcomes and negative controls from the synthetic truth when the signals config leaves them unset."""
    extra: dict[str, Any] = {}
    outcomes = list(getattr(truth, "outcomes", []) or [])
    if node.get("outcomes") is None and outcomes:
        extra["outcomes"] = outcomes
    nulls = list(getattr(truth, "null_drugs", []) or [])
    if node.get("negative_controls") is None and nulls and outcomes:
        extra["negative_controls"] = [(d, o) for d in nulls for o in outcomes]
    return extra


def _signal_truth_metrics(table: pd.DataFrame, truth: Any) -> dict[str, Any]:
    """When the synthetic truth lists risky drug-event pairs: how many flagged pairs are true."""
    effects = getattr(truth, "drug_effects", None)
    if effects is None or not isinstance(effects, pd.DataFrame) or "flag" not in table.columns:
        return {}
    true_pairs = set(zip(effects["drug"].astype(str), effects["event"].astype(str)))
    flagged = table[table["flag"].astype(bool)]
    pairs = set(zip(flagged["exposure"].astype(str), flagged["outcome"].astype(str)))
    hits = len(pairs & true_pairs)
    return {"flagged_true_pairs": hits, "flagged_pairs": len(pairs), "true_pairs": len(true_pairs)}
