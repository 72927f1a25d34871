"""Training from a sharded event dataset (``data=sharded``): neural models through ``fit_from_shards``, Hawkes
learners with their sums over patients totalled over the processes.

The ``data`` node ``_target_: pathways.pipelines.shards.EventShards`` opens an
:class:`~pathways.data.dataset.EventDataset` (written by :func:`pathways.io.write_snds_dataset` or
:func:`~pathways.data.dataset.write_event_dataset`) with optional filters (codes, dates). The train pipeline sees it
and, instead of building one EventLog in memory, trains through :func:`pathways.models.sharded.fit_from_shards`:
each process (``torchrun``) reads only its own shards, one at a time.

The patients are split exactly as the in-memory path splits them: :func:`pathways.encode.split.split_patients` on
each shard's patient ids with the run's ``split.fractions`` and ``seed`` (a function of each id alone, so the split
of the shards is the split of the whole dataset read in memory). A separate validation dataset can be given
(``data.validation=<path>``): it replaces the validation part, whose share of the patients then trains.

The neural estimators (RMTPP, NeuralHawkes, THP, SAHP, LogNormMix, GRUOutcome, RETAIN) train from shards; so do
the Hawkes learners whose statistics are sums over patients (HawkesExpKernel, HawkesSumExpKernel, HawkesEM without
covariates nor the nuclear penalty; :func:`fit_hawkes_from_shards`). Other full-batch learners (SCCS, the logistic
baseline) are refused before any data is read (:func:`check_shardable`), naming the in-memory alternative.

Examples
--------
>>> import tempfile
>>> from pathways.data.dataset import write_event_dataset
>>> from pathways.synthetic import simulate_cohort
>>> log, _ = simulate_cohort(60, seed=0)
>>> with tempfile.TemporaryDirectory() as d:
...     data = EventShards(write_event_dataset(log, d + "/ds", 3, np.arange(log.n_patients) % 3))
...     train, val, test = data.split([0.7, 0.15, 0.15], seed=0)
...     sum(train.shard_sizes().values()) + sum(val.shard_sizes().values()) + sum(test.shard_sizes().values())
60
"""
from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from hydra.utils import get_object
from omegaconf import DictConfig

from pathways.checkpoint import data_fingerprint, save
from pathways.data.dataset import PATIENTS_DIR, EventDataset
from pathways.data.eventlog import EventLog
from pathways.device import resolve_device
from pathways.encode.encoders import Encoder, OutcomeEncoder
from pathways.encode.sequences import Sequences
from pathways.encode.sharded import assign_shards
from pathways.encode.split import split_patients
from pathways.errors import PathwaysInputError
from pathways.models.hawkes import HawkesEM, HawkesExpKernel, HawkesSumExpKernel
from pathways.models.hawkes.base import HawkesBase
from pathways.models.hawkes.distributed import fit_least_squares_streaming
from pathways.models.recurrent.base import NeuralOutcomeModel
from pathways.models.sharded import fit_from_shards
from pathways.models.tpp.base import TPPBase
from pathways.pipelines.common import RunResult, export_checkpoint, instantiate, resolved, run_overrides, write_summary
from pathways.pipelines.report import code_counts, hawkes_factors, write_report
from pathways.training.distributed import Reducer, init_distributed, is_main_process, sharded_fit
from pathways.training.loggers import finish_run
from pathways.training.state import check_resume, run_identity
from pathways.training.trainer import Trainer

#: the model configs that train from shards (named in the error of the others)
SHARDABLE_MODELS = ("rmtpp, nhp, thp, sahp, lognormmix (next_event); gru, retain (outcome_risk); hawkes_exp, "
                    "hawkes_sumexp, hawkes_em without covariates nor the nuclear penalty (drivers)")
#: the Hawkes learners whose statistics sum over shards (pathways.models.hawkes.distributed)
_SHARDED_HAWKES = (HawkesExpKernel, HawkesSumExpKernel, HawkesEM)
_SPLIT_NAMES = ("train", "validation", "test")


class EventShards(EventDataset):
    """An event dataset read shard by shard, with filters and (after :meth:`split`) one part of the patient split.

    Parameters
    ----------
    path : dataset root (local path or URI).
    codes : keep only these codes (pushed down to the parquet scan); None = all.
    start, end : keep events with ``start <= time <= end`` (dates or days since 1970); None = unbounded.
    validation : root of a separate validation dataset (read with the same filters); None = the validation part
        of the split.
    filesystem : a pyarrow or fsspec filesystem (default: inferred from ``path``).
    """

    def __init__(self, path: Any, codes: Sequence[str] | None = None, start: Any = None, end: Any = None,
                 validation: Any = None, filesystem: Any = None):
        super().__init__(path, filesystem)
        self.filters: dict[str, Any] = {"codes": None if codes is None else [str(c) for c in codes],
                                        "start": start, "end": end}
        self.validation = validation
        self.part: tuple[tuple[float, ...], int, int] | None = None  # (fractions, seed, index) of a split part
        self._sizes: dict[int, int] | None = None

    def __repr__(self) -> str:
        part = "" if self.part is None else f", {_SPLIT_NAMES[self.part[2]]} part"
        return f"EventShards({self.root!r}, {self.n_shards} shards{part})"

    # -- the split ---------------------------------------------------------------------------------------------
    def split(self, fractions: Sequence[float], seed: int) -> list[EventShards | None]:
        """Train / validation / test views (None for a part without patients), by ``split_patients(fractions,
        seed)`` on each patient's id; with ``validation`` set, that dataset is the validation part and the
        validation share of this one trains."""
        frac = tuple(float(f) for f in fractions)
        if len(frac) != 3:
            raise PathwaysInputError(f"config 'split.fractions': expected 3 values (train, val, test), got {frac}")
        if self.validation is not None:
            frac = (frac[0] + frac[1], 0.0, frac[2])
        parts: list[EventShards | None] = []
        for index in range(3):
            view = copy.copy(self)
            view.part, view._sizes = (frac, int(seed), index), None
            parts.append(view if view.shard_sizes() else None)
        if parts[0] is None:
            raise PathwaysInputError(f"config 'split.fractions': no patient in the training split ({list(frac)})")
        if self.validation is not None:
            other = EventShards(self.validation, codes=self.filters["codes"], start=self.filters["start"],
                                end=self.filters["end"])
            other.vocab = self._common_vocab(other)
            parts[1] = other if other.shard_sizes() else None
        return parts

    def _common_vocab(self, other: EventDataset) -> Any:
        """This dataset's vocabulary, for reading ``other`` (a validation dataset written on its own) with the
        training code indices; refused when ``other`` holds (kept) codes this one lacks."""
        theirs = np.asarray(other.vocab.codes, dtype=str)
        if self.filters["codes"] is not None:
            theirs = np.intersect1d(theirs, np.asarray(self.filters["codes"], dtype=str))
        missing = np.setdiff1d(theirs, np.asarray(self.vocab.codes, dtype=str))
        if missing.size:
            raise PathwaysInputError(f"data.validation: {missing.size} code(s) of the validation dataset are absent "
                                     "from the training dataset's vocabulary; write both with one vocabulary or keep "
                                     "shared codes (data.codes)")
        return self.vocab

    def _positions(self, ids: np.ndarray) -> np.ndarray | None:
        """Positions, among a shard's patient ids, of this view's part (None: every patient)."""
        if self.part is None:
            return None
        fractions, seed, index = self.part
        return split_patients(ids, fractions, seed)[index] if ids.size else np.zeros(0, dtype=np.int64)

    # -- what fit_from_shards reads ----------------------------------------------------------------------------
    def shard_sizes(self) -> dict[int, int]:
        """Patients per shard of this view (shards without any are left out)."""
        if self._sizes is None:
            sizes = super().shard_sizes()
            if self.part is not None:
                patients = self._dataset(PATIENTS_DIR)
                sizes = {k: int(self._positions(patients.to_table(columns=["patient_id"], filter=pc.field("shard") == k)
                                                .column("patient_id").to_numpy(zero_copy_only=False)).size)
                         for k in sizes}  # one read of the id column per shard
            self._sizes = {k: n for k, n in sizes.items() if n > 0}
        return dict(self._sizes)

    def shard_ids(self) -> list[int]:
        """Shards holding patients of this view."""
        return sorted(self.shard_sizes())

    def shard(self, k: int, **filters: Any) -> EventLog:
        """Shard ``k``'s patients of this view as an EventLog, with the view's filters (and ``filters``)."""
        log = self._eventlog(int(k), **{**{key: v for key, v in self.filters.items() if v is not None}, **filters})
        kept = self._positions(log.patients["patient_id"].to_numpy())
        return log if kept is None else log.select_patients(kept)  # the split of the shard, as split_data's

    def fingerprint(self) -> np.ndarray:
        """What a resumed run must see again: patients per shard of the view and the dataset's event count."""
        sizes = self.shard_sizes()
        return np.array([*sizes.keys(), *sizes.values(), int(self.meta.get("n_events") or -1)], dtype=np.int64)


# ------------------------------------------------------------------------------------------------------------------
# checks before the data is read
# ------------------------------------------------------------------------------------------------------------------
def check_shardable(model: Any, encoder: Encoder) -> None:
    """Refuse, before any shard is read, a model or an encoder that cannot train from shards."""
    hawkes = isinstance(model, _SHARDED_HAWKES)
    if hawkes and (getattr(model, "covariates", None) or getattr(model, "penalty", None) == "nuclear"):
        raise PathwaysInputError(
            f"config 'model': {type(model).__name__} with covariates or the nuclear penalty is fitted in one process "
            "from an EventLog; drop them (model.covariates=null, another model.penalty) or fit it in memory "
            "(data=parquet, or the dataset read whole with EventDataset.to_eventlog)")
    if not (hawkes or isinstance(model, (TPPBase, NeuralOutcomeModel))):
        raise PathwaysInputError(
            f"config 'model': {type(model).__name__} is fitted full-batch from one EventLog and cannot train from a "
            f"sharded event dataset (data=sharded trains {SHARDABLE_MODELS}); fit it in memory (data=parquet with "
            "the events as one parquet file, or the dataset read whole with EventDataset.to_eventlog)")
    data_choices = type(encoder).fit is not Encoder.fit
    if data_choices and not (isinstance(encoder, OutcomeEncoder) and encoder.outcomes_ is not None):
        raise PathwaysInputError(
            f"config 'encode': {type(encoder).__name__} makes its choices from the whole training log, which a "
            "sharded run never holds; give them in the config (e.g. encode.outcomes=[<code>])")


def fit_hawkes_from_shards(model: HawkesBase, view: EventShards, encoder: Encoder, trainer: Trainer) -> HawkesBase:
    """Fit a Hawkes learner with its sums over patients totalled over the processes, each reading its own shards.

    The exponential-kernel least-squares fit streams the shards one at a time
    (:func:`~pathways.models.hawkes.distributed.fit_least_squares_streaming`: memory of one shard); the likelihood
    and EM fits hold the process's shards as one Sequences (:func:`~pathways.training.distributed.sharded_fit`).
    The run trainer's device and iteration cap apply.
    """
    ctx = init_distributed(trainer.strategy, resolve_device(trainer.device))
    reducer = ctx.reducer()
    mine = assign_shards(view.shard_sizes(), ctx.world_size)[ctx.rank]  # refuses fewer shards than processes
    streamed = isinstance(model, HawkesExpKernel) and not isinstance(model, HawkesSumExpKernel) and (
        model.fit_method == "least-squares" and not model.learn_decay)
    if streamed:
        with model.run_settings(trainer):
            fit_least_squares_streaming(model, [partial(_encoded, view, encoder, k) for k in mine], reducer)
        return model
    seqs = _concat([_encoded(view, encoder, k) for k in mine])
    reducer.same("n_codes", int(seqs.n_codes))
    with sharded_fit(model, reducer):
        model.fit(seqs, trainer=trainer)
    model.n_events_fit_ = int(reducer.sum(int(seqs.n_events))[0])
    return model


def _encoded(view: EventShards, encoder: Encoder, k: int) -> Any:
    return encoder.transform(view.shard(k))


def _concat(parts: list[Sequences]) -> Sequences:
    """Sequences of several shards back to back (one vocabulary; a copy per array, no loop over sequences)."""
    lengths = np.concatenate([p.lengths for p in parts])
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return Sequences(np.concatenate([p.times for p in parts]), np.concatenate([p.marks for p in parts]), offsets,
                     np.concatenate([p.start for p in parts]), np.concatenate([p.end for p in parts]),
                     parts[0].n_codes, parts[0].vocab, validate=False)


# ------------------------------------------------------------------------------------------------------------------
# held-out metrics, shard by shard over the ranks
# ------------------------------------------------------------------------------------------------------------------
def sharded_metrics(model: Any, parts: dict[str, EventShards | None], encoder: Encoder
                    ) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """Log-likelihood per event (point processes) or per sample (outcome models) of each part, summed over its
    shards, and the events and patients per code of the first part (sequences input; None otherwise).

    Each rank scores its own shards and the sums are all-reduced: the totals of the whole parts (patients are
    disjoint across shards, so patient counts per code add up too).
    """
    reducer = Reducer()
    out: dict[str, Any] = {}
    counts: pd.DataFrame | None = None
    for index, (name, view) in enumerate(parts.items()):
        if view is None:
            continue
        mine = view.shard_ids()[reducer.rank::reducer.world_size]  # a part may hold fewer shards than processes
        total, count, per_code = 0.0, 0, None
        for k in mine:
            data = encoder.transform(view.shard(k))
            if isinstance(data, Sequences):
                if data.n_events:
                    total, count = total + float(model.log_likelihood(data)), count + int(data.n_events)
                if index == 0:
                    table = code_counts(data)[["n_events", "n_patients"]].to_numpy(np.float64)
                    per_code = table if per_code is None else per_code + table
            elif getattr(data, "y", None) is not None and len(data):
                total, count = total + float(np.sum(model.score_samples(data))), count + len(data)
        total, count = reducer.sum(total, count)
        if count:
            unit = "sample" if isinstance(model, NeuralOutcomeModel) else "event"
            out[f"{name}_loglik_per_{unit}"] = total / count
            out[f"{name}_n_{unit}s"] = int(count)
        if index == 0 and encoder.output_kind == "sequences":
            n_codes = len(view.vocab)
            (per_code,) = reducer.sum(np.zeros((n_codes, 2)) if per_code is None else per_code)
            counts = pd.DataFrame({"code": [str(c) for c in view.vocab.codes], "n_events": per_code[:, 0].astype(
                np.int64), "n_patients": per_code[:, 1].astype(np.int64)})
    return out, counts


def _check_validation_shards(view: EventShards | None, world_size: int, seed: int, separate: bool) -> None:
    """Every process reads validation shards of its own: refuse, before training, a part held in fewer shards."""
    n = 0 if view is None else len(view.shard_ids())
    if view is None or n >= world_size:
        return
    remedy = ("write it with more shards" if separate else
              f"the dataset's shards are buckets of the patient hash, so with seed={seed} equal to the writer's hash "
              "seed (0 for write_snds_dataset) the validation patients gather in a few shards: set another seed, "
              "or give data.validation=<dataset path>")
    raise PathwaysInputError(f"data: the validation part lies in {n} shard(s) for {world_size} processes; "
                             f"{remedy}, or use fewer processes")


# ------------------------------------------------------------------------------------------------------------------
# the pipeline's sharded route
# ------------------------------------------------------------------------------------------------------------------
def is_sharded(node: DictConfig) -> bool:
    """True when the ``data`` node builds an event dataset (its ``_target_`` is EventDataset or a subclass)."""
    target = node.get("_target_") if node is not None else None
    try:
        built = get_object(str(target)) if target else None
    except Exception:  # an unknown target fails later, in load_data, with its own message
        return False
    return isinstance(built, type) and issubclass(built, EventDataset)


def open_shards(node: DictConfig) -> EventShards:
    """The ``data`` node's dataset as :class:`EventShards` (an EventDataset target is opened without filters)."""
    data = instantiate(node)
    return data if isinstance(data, EventShards) else EventShards(data.root, filesystem=data.filesystem)


def train_from_shards(cfg: DictConfig, out: Path, model: Any, encoder: Encoder, trainer: Trainer) -> RunResult:
    """The train pipeline on a sharded dataset: split -> fit_from_shards -> held-out metrics -> checkpoint, report
    and summary (rank 0 alone writes them under torchrun): the in-memory route's outputs, but Hawkes factors without
    Wald intervals (they need every event in one process) and no factors table for the other families."""
    check_shardable(model, encoder)
    t0 = time.perf_counter()
    data = open_shards(cfg.data)
    parts = data.split(list(cfg.split.fractions), int(cfg.seed))
    fingerprints = [None if p is None else p.fingerprint() for p in parts]
    check_resume(str(trainer.checkpoint_dir), run_identity(resolved(cfg), fingerprints), bool(trainer.resume))
    t_fit = time.perf_counter()
    _check_validation_shards(parts[1], init_distributed(trainer.strategy, resolve_device(trainer.device)).world_size,
                             int(cfg.seed), data.validation is not None)
    if isinstance(model, HawkesBase):  # full-batch: its sums over patients are totalled over the processes
        fit_hawkes_from_shards(model, parts[0], encoder, trainer)
    else:
        fit_from_shards(model, parts[0], encode=encoder, validation=parts[1], trainer=trainer)
    fit_seconds = time.perf_counter() - t_fit
    metrics, counts = sharded_metrics(model, dict(zip(("train", "val", "test"), parts)), encoder)
    history = [dict(r) for r in (vars(model).get("history_") or [])]
    fitted = {k.rstrip("_"): np.asarray(vars(model)[k]).item() for k in ("n_iter_", "converged_", "objective_")
              if np.ndim(vars(model).get(k, ())) == 0}  # the in-memory route's fit counters
    epochs = {} if isinstance(model, HawkesBase) else {"n_epochs": len(history)}
    metrics.update(**fitted, **epochs, fit_seconds=fit_seconds, data_seconds=t_fit - t0)
    result = RunResult(output_dir=out, model=model, metrics=metrics, history=history)
    if not is_main_process():
        return result
    result.checkpoint = save(model, out / "model.pt", config=resolved(cfg), metrics=metrics,
                             fingerprint=data_fingerprint(fingerprints[0]),
                             extra={"task": str(cfg.task), "name": str(cfg.name), "overrides": run_overrides(),
                                    "encode": encoder.state(), "data": "sharded"})
    if cfg.report.enabled:
        summary = {"data": f"sharded event dataset ({data.n_shards} shards)",
                   "training patients": sum(parts[0].shard_sizes().values()), "seed": int(cfg.seed)}
        result.report = write_report(
            out / "report", title=f"{cfg.name}: {type(model).__name__}", model=model, metrics=metrics,
            history=history, factors=hawkes_factors(model, counts) if isinstance(model, HawkesBase) else None,
            counts=counts, summary=summary, min_cell_count=cfg.report.min_cell_count, top_k=int(cfg.report.top_k),
            figures=bool(cfg.report.figures))
    if cfg.checkpoint.export:
        result.exported = export_checkpoint(result.checkpoint, Path(str(cfg.paths.checkpoint_dir)), str(cfg.name))
    write_summary(out, result, "ok")
    finish_run(trainer.loggers, config=resolved(cfg), metrics=metrics,
               artifacts={"report": out / "report", "checkpoint": result.checkpoint})
    return result


__all__ = ["SHARDABLE_MODELS", "EventShards", "check_shardable", "fit_hawkes_from_shards", "is_sharded",
           "open_shards", "sharded_metrics", "train_from_shards"]
