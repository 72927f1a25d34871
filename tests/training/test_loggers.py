"""Experiment loggers: CSV files, Hydra ``_target_`` nodes, MLflow against a local file store (alone, under the
Trainer and through the training pipeline), missing optional packages."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.pipelines.schema import ConfigKeyError, validate_config
from pathways.training import Trainer
from pathways.training.loggers import CSVLogger, MetricLogger, MLflowLogger, build_loggers, finish_run

CONFIG_DIR = Path(__file__).resolve().parents[2] / "pathways" / "configs"
TINY = ["trainer=debug", "data.n_patients=60", "+data.n_drugs=4", "+data.n_diagnoses=2", "+data.n_acts=1",
        "+data.n_outcomes=1", "+data.n_strong=1", "+data.n_weak=0", "+data.follow_up_years=[1.0,2.0]",
        "checkpoint.export=false", "report.figures=false"]


def _compose(overrides: list[str]):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=overrides)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def file_store(tmp_path, monkeypatch):
    """A local MLflow file store; the opt-in variable is restored (to absent) after the test."""
    pytest.importorskip("mlflow", reason="pathways[mlflow] not installed")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "unset-by-test")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # the logger itself must opt in for a folder URI
    return tmp_path / "mlruns"


def _client(store: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=store.resolve().as_uri())


def _only_run(store: Path, experiment: str):
    client = _client(store)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    return client, runs[0]


# ---------------------------------------------------------------------------------------------------------------
def test_csv_logger_writes_every_record(tmp_path):
    sink = CSVLogger(tmp_path)
    sink.log(0, {"train_loss": 2.0, "lr": 0.1})
    sink.log(1, {"train_loss": 1.5, "val_loss": 1.7, "lr": 0.1})
    sink.log_metrics({"test": {"loglik": -3.25}, "fit_seconds": 1.0})
    sink.log_hyperparams({"model": {"decay": 1.0, "penalty": None}, "seed": 3})
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.md").write_text("# report\n")
    sink.log_artifact(tmp_path / "report")
    rows = _read_csv(tmp_path / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["0", "1"] and rows[1]["val_loss"] == "1.7" and rows[0]["val_loss"] == ""
    assert _read_csv(tmp_path / "final_metrics.csv") == [{"metric": "test.loglik", "value": "-3.25"},
                                                          {"metric": "fit_seconds", "value": "1.0"}]
    assert json.loads((tmp_path / "hparams.json").read_text()) == {"model.decay": 1.0, "model.penalty": None,
                                                                   "seed": 3}
    assert _read_csv(tmp_path / "artifacts.csv") == [{"name": "report", "path": "report", "bytes": "9"}]


def test_build_loggers_accepts_nodes_names_and_the_former_group(tmp_path):
    node = {"_target_": "pathways.training.loggers.CSVLogger", "filename": "epochs.csv"}
    built = build_loggers({"csv": node, "tensorboard": None}, tmp_path)  # a null node is off
    assert [type(x) for x in built] == [CSVLogger] and built[0].path == tmp_path / "epochs.csv"
    assert [type(x) for x in build_loggers({"loggers": ["csv"]}, tmp_path)] == [CSVLogger]
    assert [type(x) for x in build_loggers(["csv"], tmp_path)] == [CSVLogger]
    assert build_loggers({"csv": node}, None) == []
    with pytest.raises(PathwaysInputError, match="unknown logger 'wandb'"):
        build_loggers(["wandb"], tmp_path)
    with pytest.raises(PathwaysInputError, match="config 'logger.csv': expected a node with a _target_"):
        build_loggers({"csv": {"filename": "x.csv"}}, tmp_path)
    with pytest.raises(PathwaysInputError, match="logger.bad.*is not a MetricLogger"):
        build_loggers({"bad": {"_target_": "builtins.dict"}}, tmp_path)


def test_missing_optional_package_warns_and_skips(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)  # as if mlflow were not installed
    group = {"csv": {"_target_": "pathways.training.loggers.CSVLogger"},
             "mlflow": {"_target_": "pathways.training.loggers.MLflowLogger"}}
    with pytest.warns(PathwaysDataWarning, match=r"logger 'mlflow' requested .*pip install 'pathways\[mlflow\]'"):
        built = build_loggers(group, tmp_path)
    assert [type(x) for x in built] == [CSVLogger]


def test_logger_groups_compose_and_validate():
    for name, expected in (("csv", {"csv"}), ("tensorboard", {"csv", "tensorboard"}), ("mlflow", {"csv", "mlflow"})):
        cfg = _compose([f"logger={name}"])
        assert set(cfg.logger) == expected
        validate_config(cfg, "train")
    with pytest.raises(ConfigKeyError, match=r"'logger\.mlflow\.experiment_nam'.*did you mean "
                                             r"'logger\.mlflow\.experiment_name'"):
        validate_config(_compose(["logger=mlflow", "+logger.mlflow.experiment_nam=x"]), "train")


# ---------------------------------------------------------------------------------------------------------------
def test_mlflow_logger_records_metrics_params_and_artifacts(tmp_path, file_store):
    sink = MLflowLogger(log_dir=tmp_path, tracking_uri=str(file_store), experiment_name="unit", run_name="r1")
    assert not file_store.exists()  # nothing is created before the first record
    sink.log(0, {"epoch": 0, "train_loss": 2.0, "note": "text is not a metric"})
    sink.log(1, {"epoch": 1, "train_loss": 1.25, "val_loss": float("nan")})  # NaN is not sent
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"\x00" * 10)
    (tmp_path / "report" / "figures").mkdir(parents=True)
    (tmp_path / "report" / "report.md").write_text("# r\n")
    (tmp_path / "report" / "figures" / "a.png").write_bytes(b"png")
    finish_run([sink], config={"model": {"decay": 1.0, "name": "x" * 7000}, "seed": 0},
               metrics={"test": {"loglik": -3.5}}, artifacts={"checkpoint": checkpoint, "report": tmp_path / "report",
                                                              "absent": tmp_path / "none.pt"})
    client, run = _only_run(file_store, "unit")
    assert run.info.status == "FINISHED" and run.info.run_name == "r1"
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train_loss")] == [(0, 2.0),
                                                                                                   (1, 1.25)]
    assert run.data.metrics == {"train_loss": 1.25, "test.loglik": -3.5}
    assert run.data.params["model.decay"] == "1.0" and run.data.params["seed"] == "0"
    assert run.data.params["model.name"] == "x" * 6000  # MLflow's limit on a param value
    assert run.data.tags["pathways.run_dir"] == str(tmp_path)
    artifacts = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"checkpoint", "report", "config.json"}
    assert [f.path for f in client.list_artifacts(run.info.run_id, "checkpoint")] == ["checkpoint/model.pt"]
    assert {f.path for f in client.list_artifacts(run.info.run_id, "report")} == {"report/report.md",
                                                                                  "report/figures"}
    stored = Path(client.download_artifacts(run.info.run_id, "config.json", str(tmp_path / "dl")))
    assert json.loads(stored.read_text())["model"]["decay"] == 1.0


def test_tensorboard_logger_records_scalars_config_and_hparams(tmp_path):
    pytest.importorskip("tensorboard", reason="optional tensorboard package not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from pathways.training.loggers import TensorBoardLogger

    sink = TensorBoardLogger(tmp_path)
    assert not (tmp_path / "tensorboard").exists()  # nothing before the first record
    sink.log(0, {"epoch": 0, "train_loss": 2.0})
    sink.log(1, {"epoch": 1, "train_loss": 1.5})
    finish_run([sink], config={"model": {"decay": 1.0, "penalty": None}}, metrics={"test": {"loglik": -3.5}},
               artifacts={"checkpoint": tmp_path / "missing.pt"})
    events = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    assert [(e.step, e.value) for e in events.Scalars("train_loss")] == [(0, 2.0), (1, 1.5)]
    assert "config/text_summary" in events.Tags()["tensors"]
    assert "final/test.loglik" in events.Tags()["scalars"]  # the HParams run's metric, beside the config


class _Recorder(MetricLogger):
    def __init__(self) -> None:
        self.steps: list[int] = []
        self.closed = False

    def log(self, step, metrics):
        self.steps.append(step)

    def close(self, status="success"):
        self.closed = True


def test_trainer_logs_to_given_loggers_and_leaves_them_open(tmp_path):
    net = torch.nn.Linear(1, 1)

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = net

        def forward(self, batch):
            return {"loss": ((self.lin(batch) - 1) ** 2).sum(), "n": batch.shape[0]}

    given = _Recorder()
    Trainer(max_epochs=3, patience=None, progress=False, log_dir=str(tmp_path), loggers=[given, "csv"]).fit(
        Wrapped(), lambda e: [torch.ones(4, 1)])
    assert given.steps == [0, 1, 2] and not given.closed  # its owner (the pipeline) closes it
    assert [r["epoch"] for r in _read_csv(tmp_path / "metrics.csv")] == ["0", "1", "2"]


def test_training_pipeline_logs_to_mlflow(tmp_path, file_store):
    from pathways import pipelines

    cfg = _compose(["experiment=next_event", "model=rmtpp", "model.hidden_size=4", "logger=mlflow",
                    f"logger.mlflow.tracking_uri={file_store}", "name=mlflow_test", *TINY])
    result = pipelines.train(cfg, tmp_path / "run")
    client, run = _only_run(file_store, "mlflow_test")
    assert run.info.status == "FINISHED"
    epochs = _read_csv(tmp_path / "run" / "metrics.csv")
    assert len(epochs) == 2  # trainer=debug: 2 epochs
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert [(m.step, m.value) for m in history] == [(int(r["epoch"]), float(r["train_loss"])) for r in epochs]
    for key, value in result.metrics.items():
        if isinstance(value, float):
            assert run.data.metrics[key] == pytest.approx(value, rel=1e-12)
    assert run.data.params["model.hidden_size"] == "4" and run.data.params["trainer.epoch_cap"] == "2"
    assert run.data.params["model._target_"] == cfg.model._target_ and "RMTPP" in cfg.model._target_
    assert [f.path for f in client.list_artifacts(run.info.run_id, "checkpoint")] == ["checkpoint/model.pt"]
    assert "report/report.md" in {f.path for f in client.list_artifacts(run.info.run_id, "report")}
    assert json.loads((tmp_path / "run" / "hparams.json").read_text())["model.hidden_size"] == 4
    assert {r["name"] for r in _read_csv(tmp_path / "run" / "artifacts.csv")} == {"checkpoint", "report"}
