"""Training neural models from a sharded event dataset (fit_from_shards): each rank reads only its shards; the result
equals one process trained on the same global batches from the equivalent in-memory EventLog (gloo, 2 CPU processes
and one process; RMTPP and GRUOutcome, float64)."""
from __future__ import annotations

import os
import socket

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pathways.data.anchors import MIDPOINT, index_times
from pathways.data.dataset import EventDataset, write_event_dataset
from pathways.encode.outcomes import outcome_dataset
from pathways.encode.sequences import to_sequences
from pathways.encode.sharded import ShardPlan, assign_shards
from pathways.errors import PathwaysInputError
from pathways.models.recurrent import GRUOutcome
from pathways.models.sharded import fit_from_shards
from pathways.models.tpp import RMTPP
from pathways.synthetic import simulate_cohort
from pathways.training import Trainer
from tests.training.float64_models import GRU64 as _GRU64, RMTPP64 as _RMTPP64
from pathways.training.distributed import RankBatch
from pathways.training.shards import ShardedBatches

pytestmark = [pytest.mark.skipif(not dist.is_available(), reason="torch built without torch.distributed"),
              pytest.mark.timeout(300)]

if dist.is_available():
    import torch._dynamo  # noqa: F401  (DDP imports it: once here, inherited by the forked ranks)

WORLD, EPOCHS = 2, 2
OUTCOME = "C10AA05"
# uneven shards (patients % 5 -> 5 shards, 2 ranks): ranks differ in batches, so padding steps run
TPP = {"hidden_size": 6, "batch_size": 9, "lr": 1e-2, "patience": None, "device": "cpu", "seed": 3}
GRU = {"embedding_dim": 6, "hidden_size": 6, "dropout": 0.0, "batch_size": 8, "lr": 1e-2, "patience": None,
       "device": "cpu", "seed": 3}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _encode(log):
    """Labelled histories with static covariates (their standardisation is learned over every shard)."""
    return outcome_dataset(log, [OUTCOME], 180.0, index_times(log, MIDPOINT), static=["age", "sex"],
                           censoring="keep")


def _log():
    return simulate_cohort(37, seed=0)[0]


@pytest.fixture(scope="module")
def dataset_path(tmp_path_factory):
    log = _log()
    return str(write_event_dataset(log, tmp_path_factory.mktemp("shards") / "ds", 5, np.arange(log.n_patients) % 5))


def _trainer(**kw) -> Trainer:
    return Trainer(device="cpu", progress=False, loggers=(), **kw)


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.module_.state_dict().items()}


def _fit_sharded(path: str, strategy: str) -> dict[str, dict[str, torch.Tensor]]:
    data = EventDataset(path)
    tpp = fit_from_shards(_RMTPP64(max_epochs=EPOCHS, **TPP), data, trainer=_trainer(strategy=strategy))
    gru = fit_from_shards(_GRU64(max_epochs=EPOCHS, **GRU), data, encode=_encode, trainer=_trainer(strategy=strategy))
    return {"tpp": _state(tpp), "gru": _state(gru)}


def _rows(path: str, encode, key_of) -> dict[int, np.ndarray]:
    """In-memory rows of every shard's samples, in the shard's order (matched by patient id)."""
    data, whole = EventDataset(path), _log()
    whole_keys = pd.Index(key_of(whole, encode(whole)))
    out = {}
    for k in data.shard_ids():
        shard = data.shard(k)
        out[k] = whole_keys.get_indexer(key_of(shard, encode(shard)))
        assert (out[k] >= 0).all()
    return out


def _seq_keys(log, seqs):
    return log.patients["patient_id"].astype(str).to_numpy()


def _outcome_keys(log, data):
    return log.patients["patient_id"].astype(str).to_numpy()[data.patient_index]


def _plan(path: str, encode, key_of, world: int, batch_size: int) -> tuple[ShardPlan, dict[int, np.ndarray]]:
    data = EventDataset(path)
    rows = _rows(path, encode, key_of)
    counts = {k: len(r) for k, r in rows.items()}
    return ShardPlan(counts, assign_shards(data.shard_sizes(), world), batch_size, seed=3), rows


def _in_memory_tpp(path: str, world: int) -> tuple[dict[str, torch.Tensor], _RMTPP64]:
    """One process, the whole EventLog in memory, trained on the global batches of the sharded run."""
    plan, rows = _plan(path, to_sequences, _seq_keys, world, TPP["batch_size"])
    seqs = to_sequences(_log())
    model = _RMTPP64(max_epochs=EPOCHS, **TPP)
    model._learn_data_meta(seqs)
    torch.manual_seed(3)
    model.module_ = model._build_module()
    trainer = model.run_trainer(_trainer(strategy="single"))
    trainer.fit(model.module_, lambda e: [seqs.pad(i) for i in plan.global_rows(e, rows, seqs.lengths)])
    return _state(model), model


def _in_memory_gru(path: str, world: int) -> tuple[dict[str, torch.Tensor], _GRU64]:
    plan, rows = _plan(path, _encode, _outcome_keys, world, GRU["batch_size"])
    data = _encode(_log())
    model = _GRU64(max_epochs=EPOCHS, **GRU)
    model._learn_layout(data)
    torch.manual_seed(3)
    model.module_ = model._build_module()
    batcher = model._batcher(data, torch.device("cpu"))
    trainer = model.run_trainer(_trainer(strategy="single"))
    trainer.fit(model.module_, lambda e: [batcher.batch(i) for i in plan.global_rows(e, rows, batcher.lengths)])
    return _state(model), model


def _max_diff(a, b) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _worker(rank: int, world: int, port: str, out: str, path: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=port)
    try:
        torch.save(_fit_sharded(path, "ddp"), os.path.join(out, f"rank{rank}.pt"))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def test_two_processes_from_shards_equal_in_memory_training(tmp_path, dataset_path):
    mp.start_processes(_worker, args=(WORLD, _free_port(), str(tmp_path), dataset_path), nprocs=WORLD, join=True,
                       start_method="fork")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    plan, _ = _plan(dataset_path, to_sequences, _seq_keys, WORLD, TPP["batch_size"])
    assert plan.n_batches(0) != plan.n_batches(1)  # a rank pads its epoch with weight-0 steps
    references = {"tpp": _in_memory_tpp(dataset_path, WORLD)[0], "gru": _in_memory_gru(dataset_path, WORLD)[0]}
    for name, reference in references.items():
        assert _max_diff(ranks[0][name], ranks[1][name]) == 0.0  # one model on every rank
        assert _max_diff(ranks[0][name], reference) < 1e-6, name
    # the global batches depend on the number of processes: one process reads other batches
    assert _max_diff(references["tpp"], _in_memory_tpp(dataset_path, 1)[0]) > 1e-4


def test_one_process_from_shards_equals_in_memory_training(dataset_path):
    sharded = _fit_sharded(dataset_path, "single")
    tpp, tpp_model = _in_memory_tpp(dataset_path, 1)
    gru, gru_model = _in_memory_gru(dataset_path, 1)
    assert _max_diff(sharded["tpp"], tpp) < 1e-6 and _max_diff(sharded["gru"], gru) < 1e-6
    # the attributes learned from the shards are those learned from the whole log (all of them: a new learned
    # attribute of the models must be learned from the shards too)
    data = EventDataset(dataset_path)
    for model, reference, encode in ((_GRU64(max_epochs=1, **GRU), gru_model, _encode),
                                     (_RMTPP64(max_epochs=1, **TPP), tpp_model, None)):
        fitted = fit_from_shards(model, data, encode=encode, trainer=_trainer(strategy="single"))
        learned = {k: v for k, v in reference._learned_attributes().items() if k not in ("module_", "history_")}
        assert learned and set(learned) <= set(fitted._learned_attributes())
        for name, value in learned.items():
            got = getattr(fitted, name)
            if isinstance(value, (np.ndarray, float)):
                np.testing.assert_allclose(got, value, rtol=1e-12, atol=1e-14, err_msg=name)
            else:
                assert got == value, name


def test_plan_covers_every_sample_once_per_epoch_and_reads_one_shard_at_a_time(dataset_path):
    data = EventDataset(dataset_path)
    plan, rows = _plan(dataset_path, to_sequences, _seq_keys, WORLD, 9)
    lengths = to_sequences(_log()).lengths
    epochs = [plan.global_rows(e, rows, lengths) for e in (0, 1)]
    for steps in epochs:
        assert len(steps) == plan.n_steps
        assert sorted(np.concatenate(steps).tolist()) == list(range(len(lengths)))
    assert not all(np.array_equal(a, b) for a, b in zip(*epochs))  # reshuffled every epoch
    reads = []

    def encode(log):
        reads.append(log.n_patients)
        return to_sequences(log)

    source = ShardedBatches(data, plan, 1, encode, lambda s: s.lengths, lambda s, i: s.pad(i))
    batches = list(source(0))
    assert len(batches) == plan.n_steps and all(isinstance(b, RankBatch) for b in batches)
    weights = [b.weight for b in batches]
    assert weights == [1.0] * plan.n_batches(1) + [0.0] * (plan.n_steps - plan.n_batches(1))
    assert sorted(reads) == sorted(data.shard_sizes()[k] for k in plan.assignment[1])  # each of its shards once


def test_sharded_training_rejects_what_it_cannot_do(dataset_path):
    data = EventDataset(dataset_path)
    with pytest.raises(PathwaysInputError, match="encode"):
        fit_from_shards(GRUOutcome(max_epochs=1), data)
    with pytest.raises(PathwaysInputError, match="at least one shard"):
        assign_shards({0: 3}, 2)
    with pytest.raises(PathwaysInputError, match="smaller than"):
        ShardPlan({0: 3, 1: 2}, [[0], [1]], batch_size=1)


class _StopAtEpoch1(Trainer):
    """A run that dies at the start of its second epoch (after the first epoch's checkpoint)."""

    def _run_epoch(self, module, batches, device, optimizer, epoch, *args, **kwargs):
        if epoch == 1:
            raise KeyboardInterrupt
        return super()._run_epoch(module, batches, device, optimizer, epoch, *args, **kwargs)


def test_resumed_fit_from_shards_equals_uninterrupted(tmp_path, dataset_path):
    data = EventDataset(dataset_path)
    with pytest.raises(KeyboardInterrupt):
        fit_from_shards(_RMTPP64(max_epochs=EPOCHS, **TPP), data,
                        trainer=_StopAtEpoch1(device="cpu", progress=False, loggers=(), checkpoint_dir=str(tmp_path)))
    resumed = fit_from_shards(_RMTPP64(max_epochs=EPOCHS, **TPP), data,
                              trainer=_trainer(checkpoint_dir=str(tmp_path), resume=True))
    assert [r["epoch"] for r in resumed.history_] == [0, 1]
    uninterrupted = fit_from_shards(_RMTPP64(max_epochs=EPOCHS, **TPP), data, trainer=_trainer(strategy="single"))
    assert _max_diff(_state(resumed), _state(uninterrupted)) == 0.0
    # other data with the same patients in the same shards (one event fewer) is refused
    events, patients = _log().to_pandas()
    fewer = type(_log()).from_pandas(events.iloc[1:], patients, vocab=_log().vocab, time_unit="days")
    other = EventDataset(write_event_dataset(fewer, tmp_path / "other", 5, np.arange(fewer.n_patients) % 5))
    assert other.shard_sizes() == data.shard_sizes()
    with pytest.raises(PathwaysInputError, match="resume"):
        fit_from_shards(_RMTPP64(max_epochs=EPOCHS, **TPP), other,
                        trainer=_trainer(checkpoint_dir=str(tmp_path), resume=True))


def test_validation_shards_give_the_in_memory_validation_loss(tmp_path, dataset_path):
    whole = _log()
    held = whole.select_patients(np.arange(20))
    valid = EventDataset(write_event_dataset(held, tmp_path / "valid", 3, np.arange(20) % 3))
    model = fit_from_shards(_RMTPP64(max_epochs=EPOCHS, **TPP), EventDataset(dataset_path), validation=valid,
                            trainer=_trainer(strategy="single"))
    losses = [r["val_loss"] for r in model.history_]
    assert len(losses) == EPOCHS and len(set(losses)) == EPOCHS
    # the kept weights are the best epoch's; their loss on the held-out patients in memory is the best val_loss
    seqs = to_sequences(held)
    in_memory = _trainer().evaluate(model.module_, seqs.batches(5), torch.device("cpu"))
    assert in_memory == pytest.approx(min(losses), rel=1e-6)  # float32 batch times: other batches, other rounding


def test_lognormmix_learns_its_log_gap_scale_over_every_shard(dataset_path):
    from pathways.models.tpp import LogNormMix

    params = {"hidden_size": 4, "batch_size": 16, "max_epochs": 1, "device": "cpu", "patience": None}
    fitted = fit_from_shards(LogNormMix(**params), EventDataset(dataset_path), trainer=_trainer(strategy="single"))
    reference = LogNormMix(**params)
    reference._learn_data_meta(to_sequences(_log()))
    for name in ("time_scale_", "max_gap_", "log_gap_mean_", "log_gap_std_"):
        assert getattr(fitted, name) == pytest.approx(getattr(reference, name), rel=1e-12), name

    class _MoreMeta(RMTPP):  # learns something the shard passes do not compute: refused, not silently wrong
        def _learn_data_meta(self, seqs):
            super()._learn_data_meta(seqs)
            self.extra_ = 1.0

    with pytest.raises(PathwaysInputError, match="not computed from shards"):
        fit_from_shards(_MoreMeta(**params), EventDataset(dataset_path))
