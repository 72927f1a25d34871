"""What every pipeline shares: the run result, config helpers, data loading, the patient split, encoding, summary.

Encoding follows the model's ``input_kind`` (the protocol of :class:`pathways.models.PathwaysEstimator`):

- ``"sequences"`` (Hawkes, neural TPPs): each split encoded with ``to_sequences``;
- ``"sparse_series"`` (recurrent outcome models): ``outcome_dataset`` bins histories before an index time and labels
  an outcome within a horizon after it;
- ``"sccs"`` (ConvSCCS): ``sccs_data`` builds the self-controlled case-series buckets.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, OmegaConf

from pathways.checkpoint import to_jsonable
from pathways.data.eventlog import EventLog
from pathways.encode.outcomes import outcome_dataset
from pathways.encode.sccs import sccs_data
from pathways.encode.sequences import Sequences, to_sequences
from pathways.encode.split import split_patients
from pathways.errors import PathwaysInputError
from pathways.pipelines.report import Report
from pathways.pipelines.sweep import SUMMARY_FILE
from pathways.synthetic.cohort import Truth
from pathways.utils import atomic_path, logger


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
def plain(node: Any) -> Any:
    """A config node as plain containers (other values unchanged)."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def resolved(cfg: DictConfig) -> dict[str, Any]:
    """The config without Hydra's own node, resolved to plain containers (what checkpoints store)."""
    container = OmegaConf.to_container(cfg, resolve=False)
    container.pop("hydra", None)
    return to_jsonable(OmegaConf.to_container(OmegaConf.create(container), resolve=True))


def instantiate(node: DictConfig, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` with the real cause surfaced as a PathwaysInputError naming the target."""
    try:
        return hydra_instantiate(node, _convert_="all", **kwargs)
    except Exception as exc:  # Hydra wraps the real error: surface the cause with the target's name
        cause = exc.__cause__ or exc
        if isinstance(cause, PathwaysInputError):
            raise cause from None
        raise PathwaysInputError(f"cannot build '{node.get('_target_')}': {type(cause).__name__}: {cause}") from exc


def run_overrides() -> list[str]:
    """Command-line overrides of the current Hydra job ([] outside Hydra)."""
    try:
        return list(HydraConfig.get().overrides.task)
    except Exception:  # not inside a Hydra job (tests, library use)
        return []


# ----------------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------------
def load_data(node: DictConfig) -> tuple[EventLog | Sequences, Truth | None]:
    """Build the data of a ``data`` config node: ``(EventLog or Sequences, ground truth or None)``.

    A target returning a pair ``(data, truth)`` (the synthetic cohort) keeps the truth for the report.
    """
    out = instantiate(node)
    data, truth = (out[0], out[1]) if isinstance(out, tuple) and len(out) == 2 else (out, None)
    if not isinstance(data, (EventLog, Sequences)):
        raise PathwaysInputError(
            f"config 'data': target {node.get('_target_')!r} returned {type(data).__name__}; expected an EventLog "
            "or Sequences (or a pair (data, truth))"
        )
    return data, truth


def n_patients(data: EventLog | Sequences) -> int:
    """Number of patients (sequences) of the data."""
    return data.n_patients if isinstance(data, EventLog) else len(data)


def _subset(data: EventLog | Sequences, idx: np.ndarray) -> EventLog | Sequences:
    return data.select_patients(idx) if isinstance(data, EventLog) else data[idx]


def split_data(data: EventLog | Sequences, fractions: Sequence[float], seed: int) -> list[EventLog | Sequences]:
    """Train / validation / test subsets (patients split with ``split_patients``; empty splits become None)."""
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
def encode_for(model: Any, parts: Sequence[Any], encode_cfg: dict[str, Any], truth: Truth | None = None) -> list[Any]:
    """Encode train / val / test parts in the form ``model.input_kind`` asks for (None parts stay None).

    ``truth`` (the synthetic cohort's) supplies SCCS exposures / outcome when ``encode.sccs`` leaves them unset.
    Choices made here (outcome codes, SCCS exposures) are written back into ``encode_cfg`` (a plain dict), which
    the checkpoint stores so that inference encodes new patients the same way.
    """
    kind = model.input_kind
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
    labels = dict(encode_cfg.get("labels") or {})
    series = dict(encode_cfg.get("sparse_series") or {})
    return outcome_dataset(log, outcomes, float(labels.get("horizon_days", 180.0)), _index_times(log, labels),
                           lookback=float(labels.get("lookback_days", 365.0)),
                           bin_days=float(series.get("bin_days", 30.0)), value=str(series.get("value", "count")),
                           censoring=str(labels.get("censoring", "keep")))


def _sccs_spec(spec: dict[str, Any], truth: Truth | None) -> dict[str, Any]:
    """Complete ``encode.sccs`` from the synthetic truth: the first outcome and the drugs planted on it + 2 nulls."""
    effects = truth.drug_effects if isinstance(truth, Truth) else None
    if (not spec.get("exposures") or not spec.get("outcome")) and effects is not None:
        outcome = spec.get("outcome") or str(effects["event"].iloc[0])
        planted = [str(d) for d in effects.loc[effects["event"].astype(str) == outcome, "drug"].unique()]
        spec.setdefault("outcome", outcome)
        if not spec.get("exposures"):
            spec["exposures"] = planted + [str(d) for d in list(truth.null_drugs)[:2]]
    if not spec.get("exposures") or not spec.get("outcome"):
        raise PathwaysInputError("config 'encode.sccs': set 'exposures' (drug codes) and 'outcome' (event code)")
    return spec


def _sccs_data(log: EventLog, spec: Mapping[str, Any]) -> Any:
    spec = dict(spec)
    return sccs_data(log, spec.pop("exposures"), spec.pop("outcome"), float(spec.pop("bucket_size", 7.0)), **spec)


def encoding_of(model: Any) -> dict[str, Any]:
    """The encode settings stored in a loaded model's checkpoint (what training chose), {} when none."""
    header = model.checkpoint_ or {}
    return dict((header.get("extra") or {}).get("encode") or (header.get("config") or {}).get("encode") or {})


# ----------------------------------------------------------------------------------------------------------------
# outputs
# ----------------------------------------------------------------------------------------------------------------
def write_parquet(frame: Any, path: Path) -> Path:
    """Write a DataFrame as parquet atomically; returns ``path``."""
    with atomic_path(path, suffix=".parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    return path


def write_csv(frame: Any, path: Path) -> Path:
    """Write a DataFrame as CSV atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def export_checkpoint(checkpoint: Path, directory: Path, name: str) -> Path:
    """Copy the run's checkpoint to ``directory/<name>[-<overrides>].pt`` atomically."""
    suffix = _override_tag(run_overrides())
    target = directory / f"{name}{'-' + suffix if suffix else ''}.pt"
    with atomic_path(target) as tmp:
        shutil.copyfile(checkpoint, tmp)
    return target


def _override_tag(overrides: Sequence[str]) -> str:
    """File-name-safe tag of the overrides of a sweep job (empty for single runs without overrides)."""
    try:
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            return ""
    except Exception:  # not inside a Hydra job
        return ""
    tag = ",".join(o for o in overrides if not o.startswith("hydra"))
    return re.sub(r"[^A-Za-z0-9_.,=-]+", "_", tag)[:120]


def write_summary(out: Path, result: RunResult, status: str) -> None:
    """``summary.json``: status, overrides, model, metrics and paths of the run (read by sweeps)."""
    summary = {"status": status, "overrides": run_overrides(), "metrics": result.metrics,
               "model": None if result.model is None else type(result.model).__name__,
               "checkpoint": None if result.checkpoint is None else str(result.checkpoint),
               "exported": None if result.exported is None else str(result.exported)}
    with atomic_path(out / SUMMARY_FILE) as tmp:
        tmp.write_text(json.dumps(to_jsonable(summary), indent=2) + "\n")
