"""What every pipeline shares: the run result, config helpers, data loading, the patient split, encoding, summary.

Encoding is an encoder object (:mod:`pathways.encode.encoders`) built from the ``encode`` config group
(``configs/encode/{sequences,outcome,sccs}.yaml``); its ``output_kind`` must equal the model's ``input_kind``
(checked by :func:`check_encoder`). The encoder is fitted on the training part (outcome codes, SCCS exposures) and
its state is stored in the checkpoint, so that inference encodes new patients identically (:func:`encoder_of`).
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, OmegaConf

from pathways.checkpoint import to_jsonable
from pathways.data.eventlog import EventLog
from pathways.encode.encoders import Encoder, encoder_from_state
from pathways.encode.sequences import Sequences
from pathways.encode.split import split_patients
from pathways.errors import PathwaysInputError
from pathways.pipelines.report import Report
from pathways.pipelines.sweep import SUMMARY_FILE
from pathways.synthetic.cohort import Truth
from pathways.utils import atomic_path


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


def instantiate(node: DictConfig, *, quote_errors: bool = True, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` with the real cause surfaced as a PathwaysInputError naming the target.

    With ``quote_errors=False`` (nodes that read or analyse patient data) a foreign error's message is withheld and
    its chain cut: DuckDB's and pandas' own messages can quote a whole input line (``Original Line: <BEN_NIR_PSA>,
    ...``), identifiers included. pathways' own errors never quote identifiers and pass through unchanged; OS errors
    (paths) and type errors (arguments) keep their message.
    """
    try:
        return hydra_instantiate(node, _convert_="all", **kwargs)
    except Exception as exc:  # Hydra wraps the real error: surface the cause with the target's name
        cause = exc.__cause__ or exc
        if isinstance(cause, PathwaysInputError):
            raise cause from None
        if not quote_errors and not isinstance(cause, (OSError, TypeError)):  # those quote paths and arguments
            raise PathwaysInputError(
                f"cannot build '{node.get('_target_')}': {type(cause).__name__} on the patient data (its message is "
                "withheld: it may quote input rows and identifiers); check the data's format, encoding and "
                "columns") from None
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
    out = instantiate(node, quote_errors=False)
    data, truth = (out[0], out[1]) if isinstance(out, tuple) and len(out) == 2 else (out, None)
    if not isinstance(data, (EventLog, Sequences)):
        raise PathwaysInputError(
            f"config 'data': target {node.get('_target_')!r} returned {type(data).__name__}; expected an EventLog "
            "or Sequences (or a pair (data, truth))"
        )
    return data, truth


def task_inputs(cfg: DictConfig, section: str, example: str, needs: str) -> tuple[DictConfig, EventLog, Truth | None]:
    """The ``_target_`` node of ``cfg.<section>`` and the EventLog (with its truth) of ``cfg.data``.

    ``example`` names a valid target and ``needs`` what the events must carry, for the error messages.
    """
    node = cfg.get(section)
    if node is None or "_target_" not in node:
        raise PathwaysInputError(f"config '{section}': needs a _target_ (e.g. {example})")
    data, truth = load_data(cfg.data)
    if not isinstance(data, EventLog):
        raise PathwaysInputError(f"{section}: the data config must give an EventLog ({needs})")
    return node, data, truth


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
# encoders
# ----------------------------------------------------------------------------------------------------------------
def build_encoder(node: DictConfig) -> Encoder:
    """Instantiate the ``encode`` config node (an encoder of :mod:`pathways.encode.encoders`)."""
    encoder = instantiate(node)
    if not isinstance(encoder, Encoder):
        raise PathwaysInputError(f"config 'encode': {node.get('_target_')!r} is not a pathways encoder "
                                 "(pathways.encode.SequenceEncoder, OutcomeEncoder or SCCSEncoder)")
    return encoder


def check_encoder(encoder: Encoder, model: Any) -> None:
    """Fail clearly when the encoder does not produce what the model eats."""
    if encoder.output_kind != model.input_kind:
        raise PathwaysInputError(
            f"config 'encode': {type(encoder).__name__} produces {encoder.output_kind!r} input but "
            f"{type(model).__name__} expects {model.input_kind!r}; select encode={model.input_kind} (e.g. in the "
            "experiment's defaults: override /encode: " + model.input_kind + ")")


def encode_for(encoder: Encoder, parts: Sequence[Any]) -> list[Any]:
    """Encode the train / validation / test parts with a fitted encoder (None parts stay None)."""
    return [None if p is None else encoder.transform(p) for p in parts]


def encoder_of(model: Any) -> Encoder:
    """The encoder a loaded model was trained with, rebuilt from its checkpoint.

    Checkpoints store the encoder state in ``extra.encode``; those written before the encoder objects hold the old
    ``encode`` dict (blocks per input kind), read for the model's ``input_kind``.
    """
    header = model.checkpoint_ or {}
    stored = (header.get("extra") or {}).get("encode") or (header.get("config") or {}).get("encode") or {}
    return encoder_from_state(stored, model.input_kind)


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
