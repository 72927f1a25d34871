"""The train pipeline on a sharded event dataset (data=sharded): the split, the fit through fit_from_shards, the
checkpoint, the refusal of full-batch models, and a 2-process gloo run through the pipeline."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from pathways import pipelines
from pathways.checkpoint import load
from pathways.data.dataset import EventDataset, write_event_dataset
from pathways.data.eventlog import EventLog
from pathways.encode.encoders import SequenceEncoder
from pathways.encode.sequences import to_sequences
from pathways.errors import PathwaysInputError
from pathways.io.spark import shard_of
from pathways.models.sharded import fit_from_shards
from pathways.models.tpp import RMTPP
from pathways.pipelines.common import split_data
from pathways.pipelines.report import code_counts
from pathways.pipelines.shards import EventShards, _check_validation_shards, sharded_metrics
from pathways.synthetic import simulate_cohort
from pathways.training import Trainer

CONFIG_DIR = Path(__file__).resolve().parents[2] / "pathways" / "configs"
N_SHARDS, SEED = 4, 3
RUN = ["experiment=next_event", "data=sharded", "model=rmtpp", "trainer=debug", "model.hidden_size=8",
       "checkpoint.export=false", "report.figures=false", f"seed={SEED}"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    log, _ = simulate_cohort(120, seed=0, n_drugs=6, n_diagnoses=3, n_acts=1, n_outcomes=2, n_strong=1, n_weak=1,
                             follow_up_years=[1.0, 2.0])
    shard = shard_of(log.patients["patient_id"].to_numpy(), N_SHARDS)  # the Spark writer's patient hash
    return write_event_dataset(log, tmp_path_factory.mktemp("shards") / "ds", N_SHARDS, shard)


def _compose(*overrides: str):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("config", list(overrides))


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.module_.state_dict().items()}


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def _write_part(log, root: Path) -> EventDataset:
    shard = shard_of(log.patients["patient_id"].to_numpy(), N_SHARDS)
    return EventDataset(write_event_dataset(log, root, N_SHARDS, shard))


def test_split_of_the_shards_is_the_in_memory_split(dataset):
    whole = EventDataset(dataset).to_eventlog()
    expected = split_data(whole, [0.7, 0.15, 0.15], SEED)
    views = EventShards(dataset).split([0.7, 0.15, 0.15], SEED)
    for part, view in zip(expected, views):
        ids = np.concatenate([view.shard(k).patients["patient_id"].to_numpy() for k in view.shard_ids()])
        assert sorted(ids) == sorted(part.patients["patient_id"]) and len(ids) == sum(view.shard_sizes().values())
        assert sum(view.shard(k).n_events for k in view.shard_ids()) == part.n_events


def test_filters_and_a_separate_validation_dataset(dataset):
    whole = EventDataset(dataset).to_eventlog()
    code = str(whole.vocab.codes[int(np.argmax(np.bincount(whole.code)))])
    start = float(np.median(whole.time))  # days since 1970
    views = EventShards(dataset, codes=[code], start=start, validation=dataset).split([0.7, 0.15, 0.15], SEED)
    train = split_data(whole, [0.85, 0.0, 0.15], SEED)[0]  # the validation share trains
    logs = [views[0].shard(k) for k in views[0].shard_ids()]
    assert sum(log.n_patients for log in logs) == train.n_patients
    assert all(set(log.code_strings()) <= {code} and (log.time >= start).all() for log in logs)
    kept = sum(log.n_events for log in logs)
    in_train = train.code_strings() == code
    assert kept == int((in_train & (train.time >= start)).sum()) and 0 < kept < int(in_train.sum())
    assert sum(views[1].shard_sizes().values()) == whole.n_patients  # the validation dataset, whole


def test_validation_dataset_is_read_with_the_training_codes(dataset, tmp_path):
    codes = [str(c) for c in EventDataset(dataset).vocab.codes]
    frame = pd.DataFrame({"patient_id": ["v1", "v1", "v2"], "time": [17000.0, 17001.0, 17002.0],
                          "code": [codes[-1], codes[1], codes[-1]]})
    root = write_event_dataset(EventLog.from_pandas(frame), tmp_path / "val", 2, np.array([0, 1]))
    val = EventShards(dataset, validation=root).split([0.7, 0.15, 0.15], SEED)[1]
    logs = [val.shard(k) for k in val.shard_ids()]  # its own vocabulary has 2 codes: indices remapped
    assert sorted(np.concatenate([log.code for log in logs]).tolist()) == [1, len(codes) - 1, len(codes) - 1]
    frame.loc[0, "code"] = "NOT_IN_TRAINING"
    other = write_event_dataset(EventLog.from_pandas(frame), tmp_path / "val2", 2, np.array([0, 1]))
    with pytest.raises(PathwaysInputError, match="1 code.*absent from the training dataset's vocabulary"):
        EventShards(dataset, validation=other).split([0.7, 0.15, 0.15], SEED)


def test_seed_of_the_shard_hash_gathers_held_out_patients_in_the_last_shards(dataset):
    views = EventShards(dataset).split([0.7, 0.15, 0.15], 0)  # seed 0: the hash that chose the shards
    assert views[2].shard_ids() == [N_SHARDS - 1] and views[1].shard_ids() == [N_SHARDS - 2, N_SHARDS - 1]
    with pytest.raises(PathwaysInputError, match="validation part lies in 2 shard.*another seed"):
        _check_validation_shards(views[1], 4, 0, False)
    _check_validation_shards(views[1], 2, 0, False)  # one validation shard per process: accepted


def test_pipeline_from_shards_equals_library_fit(dataset, tmp_path):
    result = pipelines.train(_compose(*RUN, f"data.path={dataset}"), tmp_path / "run")
    loaded = load(result.checkpoint)
    assert isinstance(loaded, RMTPP) and (tmp_path / "run" / "report" / "report.md").is_file()
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "ok"
    # the library route on the same patients, written as separate training and validation datasets
    train, val, _ = split_data(EventDataset(dataset).to_eventlog(), [0.7, 0.15, 0.15], SEED)
    model = RMTPP(rnn_type="rnn", hidden_size=8, max_epochs=2, lr=0.003, batch_size=64, patience=5, seed=SEED,
                  device="cpu")
    fit_from_shards(model, _write_part(train, tmp_path / "train"), validation=_write_part(val, tmp_path / "val"),
                    trainer=Trainer(device="cpu", progress=False, loggers=()))
    assert _max_diff(_weights(loaded), _weights(model)) == 0.0
    assert loaded.time_scale_ == model.time_scale_ and len(result.history) == len(model.history_) == 2
    # float32 batches: per-shard sums in another order
    assert result.metrics["val_loglik_per_event"] == pytest.approx(model.score(to_sequences(val)), rel=1e-5)
    assert result.metrics["train_n_events"] == train.n_events


def test_full_batch_model_is_refused_with_the_alternative(dataset, tmp_path):
    cfg = _compose("experiment=outcome_risk", "data=sharded", "model=logistic", "trainer=debug",
                   f"data.path={dataset}")
    with pytest.raises(PathwaysInputError, match="full-batch.*rmtpp.*hawkes_exp.*data=parquet"):
        pipelines.train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "model.pt").exists()


def _worker(rank: int, world: int, port: str, runs: list, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=port)  # what torchrun sets: the fits join the group themselves
    try:
        saved = []
        for i, cfg in enumerate(runs):
            result = pipelines.train(cfg, os.path.join(out, str(i)))
            state = _weights(result.model) if hasattr(result.model, "module_") else _hawkes_state(result.model)
            saved.append({"weights": state, "metrics": result.metrics, "checkpoint": str(result.checkpoint)})
        torch.save(saved, os.path.join(out, f"rank{rank}.pt"))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _hawkes_state(model) -> dict[str, torch.Tensor]:
    return {"adjacency": torch.as_tensor(model.adjacency_), "baseline": torch.as_tensor(model.baseline_)}


@pytest.mark.parametrize("method", ["least-squares", "likelihood"])
def test_hawkes_from_shards_equals_the_in_memory_fit(dataset, tmp_path, method):
    cfg = _compose("experiment=care_pathway_drivers", "data=sharded", "model=hawkes_exp", "trainer=debug",
                   f"model.fit_method={method}", "checkpoint.export=false", "report.figures=false", f"seed={SEED}",
                   f"data.path={dataset}")
    result = pipelines.train(cfg, tmp_path / "run")
    loaded = load(result.checkpoint)
    train = split_data(EventDataset(dataset).to_eventlog(), [0.7, 0.15, 0.15], SEED)[0]
    memory = instantiate(cfg.model).fit(to_sequences(train), trainer=Trainer(iter_cap=20, progress=False))
    assert _max_diff(_hawkes_state(loaded), _hawkes_state(memory)) < 1e-8
    assert loaded.n_iter_ == memory.n_iter_ and result.metrics["objective"] == pytest.approx(memory.objective_,
                                                                                             rel=1e-10)
    # the report's counts per code are summed over the shards: those of the training part in memory
    counts = pd.read_csv(tmp_path / "run" / "report" / "code_counts.csv").set_index("code")
    expected = code_counts(to_sequences(train)).set_index("code")
    assert counts.loc[expected.index, ["n_events", "n_patients"]].equals(expected[["n_events", "n_patients"]])
    assert len(pd.read_csv(tmp_path / "run" / "report" / "factors.csv")) == len(loaded.codes_) ** 2


def test_two_gloo_processes_through_the_pipeline(dataset, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    run = [o if o != "trainer=debug" else "trainer=ddp" for o in RUN]
    tpp = _compose(*run, "trainer.epoch_cap=2", "trainer.progress=false", f"data.path={dataset}")
    hawkes_run = ["experiment=care_pathway_drivers", "data=sharded", "model=hawkes_exp", "trainer.iter_cap=20",
                  "trainer.progress=false", "checkpoint.export=false", "report.figures=false", f"seed={SEED}",
                  f"data.path={dataset}"]
    hawkes = _compose(*hawkes_run, "trainer=ddp")
    out = tmp_path / "run"
    out.mkdir()
    mp.start_processes(_worker, args=(2, port, [tpp, hawkes], str(out)), nprocs=2, join=True, start_method="fork")
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]
    for i in range(2):
        assert _max_diff(ranks[0][i]["weights"], ranks[1][i]["weights"]) == 0.0  # one model on both ranks
        assert ranks[0][i]["checkpoint"] == str(out / str(i) / "model.pt")
        assert ranks[1][i]["checkpoint"] == "None"  # rank 0 alone writes
    assert _max_diff(_weights(load(out / "0" / "model.pt")), ranks[0][0]["weights"]) == 0.0
    # held-out metrics all-reduced over the ranks' shards equal one process scoring every shard
    model = load(out / "0" / "model.pt")
    views = EventShards(dataset).split([0.7, 0.15, 0.15], SEED)
    one, _ = sharded_metrics(model, dict(zip(("train", "val", "test"), views)), SequenceEncoder())
    for key, value in one.items():
        assert ranks[1][0]["metrics"][key] == pytest.approx(value, rel=1e-9), key
    # the Hawkes likelihood fit over two processes equals one process on every training shard
    single = pipelines.train(_compose(*hawkes_run, "trainer=cpu"), tmp_path / "single")
    assert _max_diff(ranks[1][1]["weights"], _hawkes_state(single.model)) < 1e-8
