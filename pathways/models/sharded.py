"""Neural estimators trained from a sharded event dataset: each process reads only its own shards.

:func:`fit_from_shards` trains a neural TPP (:mod:`pathways.models.tpp`) or a recurrent outcome model
(:mod:`pathways.models.recurrent`) from an :class:`~pathways.data.dataset.EventDataset` (the parquet shards written
by :func:`pathways.io.write_snds_dataset` or :func:`~pathways.data.dataset.write_event_dataset`), in one
process or under ``torchrun`` (DDP, ``Trainer(strategy="ddp")``):

1. the shards are assigned to the ranks (:func:`~pathways.encode.sharded.assign_shards`, from the patient counts);
2. one pass over its shards gives each rank its sample counts and the statistics the model learns from its training
   data before training (TPPs: event count, observed time, largest gap; outcome models: label counts, static
   covariate means and variances); they are combined over the ranks, so every rank learns the attributes of the
   whole data set;
3. training reads the shards again, one at a time, every epoch (:class:`~pathways.training.shards.ShardedBatches`);
   the summed loss and event count of each step are all-reduced (per-event averages exact).

Memory holds one encoded shard per process (plus the model). The result equals one process trained on the same
global batches from the whole data in memory (:meth:`~pathways.encode.sharded.ShardPlan.global_rows`); it depends on
the number of processes through the batches only (each rank's batches come from its own shards).

Examples
--------
>>> import tempfile
>>> from pathways.data.dataset import EventDataset, write_event_dataset
>>> from pathways.synthetic import simulate_cohort
>>> from pathways.models.tpp import RMTPP
>>> from pathways.training import Trainer
>>> log, _ = simulate_cohort(40, seed=0)
>>> with tempfile.TemporaryDirectory() as d:
...     data = EventDataset(write_event_dataset(log, d + "/ds", 4, np.arange(log.n_patients) % 4))
...     model = fit_from_shards(RMTPP(hidden_size=4, max_epochs=1, batch_size=16, device="cpu"), data)
>>> model.n_codes_ == len(log.vocab), len(model.history_)
(True, 1)
"""
from __future__ import annotations

import warnings
from functools import partial
from typing import Any

import numpy as np
import torch

from pathways.data.dataset import EventDataset
from pathways.device import resolve_device
from pathways.encode.sequences import Sequences, to_sequences
from pathways.encode.sharded import ShardPlan, assign_shards
from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.models.recurrent.base import NeuralOutcomeModel
from pathways.models.tpp.base import TPPBase, _gaps
from pathways.models.tpp.lognormmix import LogNormMix
from pathways.training.distributed import Reducer, init_distributed
from pathways.training.shards import ShardedBatches, all_counts, scan_shards
from pathways.training.trainer import Trainer

__all__ = ["fit_from_shards"]

#: how the models learn from their training data, which the shard passes below reproduce
_KNOWN_LEARNING = (TPPBase._learn_data_meta, LogNormMix._learn_data_meta, NeuralOutcomeModel._learn_layout)


def fit_from_shards(model: Any, dataset: EventDataset, *, encode: Any = None, validation: EventDataset | None = None,
                    trainer: Trainer | None = None) -> Any:
    """Train ``model`` from the shards of ``dataset``, each process reading only its own (module docstring).

    Parameters
    ----------
    model : a neural TPP (RMTPP, NeuralHawkes, ...) or a neural outcome model (GRUOutcome, RETAIN).
    dataset : the training shards.
    encode : shard EventLog -> the model's input: a callable or an encoder with ``transform``
        (:mod:`pathways.encode.encoders`). Default for TPPs: :func:`~pathways.encode.sequences.to_sequences`;
        outcome models need one (e.g. ``OutcomeEncoder(outcomes=[...])``).
    validation : held-out shards for early stopping (read the same way, in a fixed order).
    trainer : the run's Trainer (``strategy="ddp"`` under torchrun), configured with the model's hyper-parameters.

    Returns
    -------
    model, fitted (every rank holds the same weights; ``history_`` from the Trainer).
    """
    kind = getattr(model, "input_kind", None)
    if not isinstance(model, (TPPBase, NeuralOutcomeModel)):
        raise PathwaysInputError(f"fit_from_shards: expected a neural TPP or outcome model, got "
                                 f"{type(model).__name__}")
    learns = type(model)._learn_data_meta if kind == "sequences" else type(model)._learn_layout
    if learns not in _KNOWN_LEARNING:  # a model learning more from its data than the shard passes compute
        raise PathwaysInputError(f"fit_from_shards: {type(model).__name__} learns attributes from its training "
                                 f"data that are not computed from shards yet; fit it in memory")
    if not isinstance(dataset, EventDataset):
        raise PathwaysInputError(f"fit_from_shards: 'dataset' must be an EventDataset, got {type(dataset).__name__}")
    if encode is None and kind != "sequences":
        raise PathwaysInputError(f"fit_from_shards: {type(model).__name__} needs 'encode' (e.g. "
                                 f"OutcomeEncoder(outcomes=[...])) to turn a shard into labelled histories")
    encoder = to_sequences if encode is None else getattr(encode, "transform", encode)
    model._check_params()
    trainer = model.run_trainer(trainer)
    device = resolve_device(trainer.device)
    ctx = init_distributed(trainer.strategy, device)
    reducer = ctx.reducer()
    sizes = dataset.shard_sizes()
    shard_ids, assignment = sorted(sizes), assign_shards(sizes, ctx.world_size)
    positions = [shard_ids.index(k) for k in assignment[ctx.rank]]
    summarise = _tpp_summary if kind == "sequences" else _outcome_summary
    local, summaries = scan_shards(dataset, assignment[ctx.rank], encoder, summarise)
    counts = all_counts(local, shard_ids, reducer)
    if kind == "sequences":
        totals = _learn_tpp_meta(model, summaries, reducer)
        if isinstance(model, LogNormMix):  # its log-gap standardisation needs the time scale: one more pass
            parts = scan_shards(dataset, assignment[ctx.rank], encoder, partial(_log_gap_summary, model))[1]
            _learn_log_gaps(model, parts, positions, len(shard_ids), reducer)
    else:
        totals = _learn_outcome_layout(model, summaries, positions, len(shard_ids), reducer)
    plan = ShardPlan(counts, assignment, batch_size=int(model.batch_size), seed=int(model.seed))
    _check_every_rank_has_samples(plan, "dataset")
    # the data a resumed fit must see again: sample counts and the statistics summed over every shard
    model.check_resume(trainer, np.r_[[counts[k] for k in shard_ids], totals], None)
    torch.manual_seed(int(model.seed))
    model.module_ = model._build_module().to(device)
    train = _source(model, dataset, plan, ctx.rank, encoder, device)
    val = None
    if validation is not None:
        v_ids = sorted(validation.shard_sizes())
        v_assign = assign_shards(validation.shard_sizes(), ctx.world_size)
        v_counts = all_counts(scan_shards(validation, v_assign[ctx.rank], encoder, len)[0], v_ids, reducer)
        v_plan = ShardPlan(v_counts, v_assign, batch_size=int(model.batch_size), shuffle=False)
        _check_every_rank_has_samples(v_plan, "validation")
        val = _source(model, validation, v_plan, ctx.rank, encoder, device)
    model.history_ = trainer.fit(model.module_, train, val)
    if kind != "sequences":
        model.n_epochs_ = len(model.history_)
    model.module_.eval()
    return model


def _check_every_rank_has_samples(plan: ShardPlan, name: str) -> None:
    """A rank without any sample would have no batch to run its (padding) steps with."""
    empty = [r for r in range(plan.world_size) if plan.n_batches(r) == 0]
    if empty:
        raise PathwaysInputError(f"{name}: the shards of {len(empty)} of {plan.world_size} process(es) encode to no "
                                 f"sample; write the dataset with more, smaller shards or use fewer processes")


def _source(model: Any, dataset: EventDataset, plan: ShardPlan, rank: int, encoder: Any,
            device: torch.device) -> ShardedBatches:
    if isinstance(model, TPPBase):
        return ShardedBatches(dataset, plan, rank, encoder, lambda s: s.lengths,
                              lambda s, idx: s.pad(idx, device=device))
    return ShardedBatches(dataset, plan, rank, encoder, lambda b: b.lengths, lambda b, idx: b.batch(idx),
                          prepare=lambda data: model._batcher(data, device))


# -- what the models learn from their training data, over every shard of every rank ---------------------------------
def _tpp_summary(seqs: Sequences) -> dict[str, Any]:
    gaps = _gaps(seqs)
    return {"n_events": int(seqs.n_events), "time": float(np.sum(seqs.end - seqs.start)),
            "gap": float(gaps.max()) if gaps.size else -np.inf, "n_codes": int(seqs.n_codes), "vocab": seqs.vocab}


def _learn_tpp_meta(model: TPPBase, parts: list[dict[str, Any]], reducer: Reducer) -> np.ndarray:
    """``TPPBase._learn_data_meta`` over all shards: time scale = observed time / events, largest scaled gap."""
    n_events, total_time = reducer.sum(sum(p["n_events"] for p in parts), float(sum(p["time"] for p in parts)))
    (gap,) = reducer.max(max([p["gap"] for p in parts], default=-np.inf))
    if n_events == 0:
        raise PathwaysInputError("argument 'dataset': no event to learn from in any shard")
    reducer.same("n_codes", parts[0]["n_codes"])
    model.time_scale_ = total_time / n_events if total_time > 0 else 1.0
    model.max_gap_ = float(gap / model.time_scale_)
    model.n_codes_ = parts[0]["n_codes"]
    model.vocab_ = parts[0]["vocab"]
    return np.array([n_events, total_time, gap], dtype=np.float64)


def _log_gap_summary(model: LogNormMix, seqs: Sequences) -> dict[str, Any]:
    gaps = _gaps(seqs) / model.time_scale_
    logs = np.log(np.maximum(gaps, model.min_gap))
    mean = float(logs.mean()) if logs.size else 0.0
    return {"n": logs.size, "ties": int((gaps <= model.min_gap).sum()), "mean": mean,
            "m2": float(((logs - mean) ** 2).sum())}


def _learn_log_gaps(model: LogNormMix, parts: list[dict[str, Any]], positions: list[int], n_shards: int,
                    reducer: Reducer) -> None:
    """``LogNormMix._learn_data_meta``'s log-gap mean and standard deviation over all shards (shard by shard)."""
    table = np.zeros((n_shards, 4))
    for pos, part in zip(positions, parts):
        table[pos] = part["n"], part["ties"], part["mean"], part["m2"]
    (table,) = reducer.sum(table)
    n, ties, means, m2 = table.T
    total = float(n.sum())
    if ties.sum() > 0:
        warnings.warn(f"train: {int(ties.sum())} of {int(total)} gaps are ties (<= min_gap={model.min_gap} mean "
                      f"gaps); LogNormMix floors them at min_gap", PathwaysDataWarning, stacklevel=3)
    mean = float((n * means).sum() / total) if total else 0.0
    std = float(np.sqrt((m2.sum() + (n * (means - mean) ** 2).sum()) / total)) if total else 0.0
    model.log_gap_mean_ = mean
    model.log_gap_std_ = max(std, 1e-3) if total > 1 else 1.0


def _outcome_summary(data: Any) -> dict[str, Any]:
    n = len(data)
    static = np.zeros((n, 0)) if data.static is None else np.asarray(data.static, dtype=np.float64)
    mean = static.mean(axis=0) if n else np.zeros(static.shape[1])
    return {"n": n, "positives": data.y.sum(axis=0), "mean": mean, "m2": ((static - mean) ** 2).sum(axis=0),
            "layout": data}


def _learn_outcome_layout(model: NeuralOutcomeModel, parts: list[dict[str, Any]], positions: list[int],
                          n_shards: int, reducer: Reducer) -> np.ndarray:
    """``OutcomeModelBase._learn_layout`` over all shards: static means and variances combined shard by shard
    (Chan et al.'s pairwise update, the same on every rank), label counts summed."""
    first = parts[0]["layout"]
    if first.y is None:
        raise PathwaysInputError("encode: the encoded shards carry no outcome labels (y)")
    k, s = first.y.shape[1], 0 if first.static is None else first.static.shape[1]
    table = np.zeros((n_shards, 1 + k + 2 * s))
    for pos, part in zip(positions, parts):
        if part["layout"].y is None or part["layout"].y.shape[1] != k or part["mean"].size != s:
            raise PathwaysInputError("encode: shards encode to different label or static columns")
        table[pos] = np.r_[part["n"], part["positives"], part["mean"], part["m2"]]
    reducer.same("n_codes", int(first.n_codes))
    (table,) = reducer.sum(table)
    n, positives, means, m2 = table[:, 0], table[:, 1:1 + k], table[:, 1 + k:1 + k + s], table[:, 1 + k + s:]
    total = float(n.sum())
    for name, value in (("n_codes_", first.n_codes), ("codes_", [str(c) for c in first.code_names]),
                        ("labels_", list(first.labels)), ("n_labels_", k), ("bin_width_", float(first.bin_width)),
                        ("vocab_", first.vocab), ("static_names_", list(first.static_names)), ("n_static_", s)):
        setattr(model, name, value)
    if s:
        mean = (n[:, None] * means).sum(axis=0) / total
        scale = np.sqrt((m2.sum(axis=0) + (n[:, None] * (means - mean) ** 2).sum(axis=0)) / total)
        model.static_mean_ = mean
        model.static_scale_ = np.where(scale > 1e-12 * np.maximum(np.abs(mean), 1.0), scale, 1.0)
    else:
        model.static_mean_, model.static_scale_ = np.zeros(0), np.ones(0)
    pos = positives.sum(axis=0)
    single = (pos == 0) | (pos == total)
    if single.any():
        j = int(np.flatnonzero(single)[0])
        raise PathwaysInputError(f"y: outcome '{model.labels_[j]}' has a single class in the {int(total)} training "
                                 f"samples of the shards ({int(pos[j])} positives); a classifier needs both")
    return table.reshape(-1)
