"""Experiment loggers: CSV (always available), TensorBoard and MLflow (optional packages), as Hydra ``_target_`` nodes.

Every logger records, for one run: per-epoch metrics (``log``, called by the :class:`~pathways.training.Trainer`),
the final metrics (``log_metrics``), the resolved config as hyper-parameters (``log_hyperparams``) and files or
folders such as the report and the checkpoint (``log_artifact``); ``close(status)`` ends the run.

The ``logger`` config group is a mapping of named nodes (``configs/logger/{csv,tensorboard,mlflow}.yaml``)::

    csv:
      _target_: pathways.training.loggers.CSVLogger
    mlflow:
      _target_: pathways.training.loggers.MLflowLogger
      tracking_uri: outputs/mlruns

:func:`build_loggers` instantiates them with the run directory as ``log_dir``; a node set to ``null`` is off.
Loggers create their files or remote run lazily, on their first record, so a run that never logs leaves nothing.
"""
from __future__ import annotations

import atexit
import csv
import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.utils import atomic_path

__all__ = ["MetricLogger", "CSVLogger", "TensorBoardLogger", "MLflowLogger", "build_loggers", "make_loggers",
           "close_loggers", "finish_run", "flatten", "tensorboard_available"]


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys (``{"model": {"decay": 1.0}}`` -> ``{"model.decay": 1.0}``).

    >>> flatten({"model": {"decay": 1.0, "penalty": None}, "seed": 0})
    {'model.decay': 1.0, 'model.penalty': None, 'seed': 0}
    """
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The finite real-valued entries of (possibly nested) ``metrics``, under dotted keys."""
    out = {}
    for key, value in flatten(metrics).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value)):
            out[key] = float(value)
    return out


class MetricLogger:
    """Interface of an experiment logger (every method but ``log`` is optional for a logger to implement)."""

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:  # pragma: no cover - interface
        """Record the metrics of epoch ``step``."""
        raise PathwaysInputError(f"{type(self).__name__} does not implement log()")

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Record the final metrics of the run (nested mappings are flattened to dotted keys)."""

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        """Record the run's resolved config (nested mappings are flattened to dotted keys)."""

    def log_artifact(self, path: str | os.PathLike, name: str | None = None) -> None:
        """Record a file or a folder (the report, the checkpoint) under ``name`` (default: its file name)."""

    def resume(self, history: Sequence[Mapping[str, Any]]) -> None:
        """A resumed run continues from the per-epoch records ``history`` of the interrupted one."""

    def close(self, status: str = "success") -> None:
        """End the run (``status`` "success" or "failed") and release resources."""


class CSVLogger(MetricLogger):
    """Plain files in ``log_dir``: ``metrics.csv`` (one row per epoch), ``final_metrics.csv`` (metric, value),
    ``hparams.json`` (the resolved config, dotted keys) and ``artifacts.csv`` (name, path, bytes).

    Every file is rewritten atomically, so it is always complete even when a run is interrupted, and a resumed
    run continues ``metrics.csv`` from the rows it is given.
    """

    def __init__(self, log_dir: str | os.PathLike, filename: str = "metrics.csv",
                 history: Sequence[Mapping[str, Any]] = ()) -> None:
        self.log_dir = Path(log_dir)
        self.path = self.log_dir / filename
        self.rows: list[dict[str, Any]] = [dict(r) for r in history]
        self.artifacts: list[dict[str, Any]] = []

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        row = {"epoch": step, **{k: v for k, v in metrics.items() if k != "epoch"}}
        self.rows.append(row)
        self._write(self.path, self.rows)

    def resume(self, history: Sequence[Mapping[str, Any]]) -> None:
        self.rows = [dict(r) for r in history]

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        rows = [{"metric": k, "value": v} for k, v in flatten(metrics).items()]
        self._write(self.log_dir / "final_metrics.csv", rows, ["metric", "value"])

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        with atomic_path(self.log_dir / "hparams.json") as tmp:
            tmp.write_text(json.dumps(flatten(params), indent=1, sort_keys=True, default=str) + "\n")

    def log_artifact(self, path: str | os.PathLike, name: str | None = None) -> None:
        p = Path(path)
        size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
        inside = p.resolve().is_relative_to(self.log_dir.resolve())
        shown = os.path.relpath(p.resolve(), self.log_dir.resolve()) if inside else str(p)
        self.artifacts.append({"name": name or p.name, "path": shown, "bytes": size})
        self._write(self.log_dir / "artifacts.csv", self.artifacts, ["name", "path", "bytes"])

    @staticmethod
    def _write(path: Path, rows: Sequence[Mapping[str, Any]], columns: list[str] | None = None) -> None:
        if columns is None:
            columns = []
            for row in rows:
                columns += [k for k in row if k not in columns]
        with atomic_path(path) as tmp:
            with open(tmp, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)


class TensorBoardLogger(MetricLogger):
    """Scalars, the config (text and HParams) and artifact paths in TensorBoard event files under
    ``log_dir/subdir`` (needs the optional ``tensorboard`` package: ``pip install 'pathways[tensorboard]'``)."""

    def __init__(self, log_dir: str | os.PathLike, subdir: str = "tensorboard") -> None:
        from torch.utils.tensorboard import SummaryWriter  # lazy: optional dependency (ImportError if absent)

        self._writer_class = SummaryWriter
        self.path = Path(log_dir) / subdir
        self._writer: Any = None
        self.params: dict[str, Any] = {}

    @property
    def writer(self) -> Any:
        if self._writer is None:
            self._writer = self._writer_class(log_dir=str(self.path))
        return self._writer

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        for key, value in _numbers(metrics).items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        self.params = flatten(params)
        self.writer.add_text("config", "```\n" + json.dumps(params, indent=1, default=str) + "\n```")

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        # the HParams dashboard pairs the config with the final metrics; its values must be numbers or strings
        hparams = {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in self.params.items()}
        self.writer.add_hparams(hparams, {f"final/{k}": v for k, v in _numbers(metrics).items()}, run_name=".")
        self.writer.flush()

    def log_artifact(self, path: str | os.PathLike, name: str | None = None) -> None:
        self.writer.add_text(f"artifacts/{name or Path(path).name}", str(Path(path).resolve()))

    def close(self, status: str = "success") -> None:
        if self._writer is not None:
            self._writer.close()


class MLflowLogger(MetricLogger):
    """One MLflow run per training run (needs ``mlflow-skinny``: ``pip install 'pathways[mlflow]'``).

    Parameters
    ----------
    log_dir : the run directory (added by the pipeline; recorded as the tag ``pathways.run_dir``).
    tracking_uri : an MLflow server (``http://host:5000``), a database URI, or a local folder / ``file://`` URI (a
        file store; MLflow keeps it in maintenance mode, so using one opts in with ``MLFLOW_ALLOW_FILE_STORE=true``
        unless that variable is already set). None: MLflow's own default (``MLFLOW_TRACKING_URI``).
    experiment_name : the MLflow experiment, created when absent.
    run_name : the run's name (None: MLflow chooses one).
    tags : extra run tags.

    The resolved config becomes the run's params (dotted keys, values cut to MLflow's 6000 characters) and the
    artifact ``config.json``; a run left open by a crash is marked FAILED when the process exits.
    """

    _MAX_PARAM = 6000
    _BATCH = 100

    def __init__(self, log_dir: str | os.PathLike | None = None, tracking_uri: str | None = None,
                 experiment_name: str = "pathways", run_name: str | None = None,
                 tags: Mapping[str, str] | None = None) -> None:
        from mlflow.tracking import MlflowClient  # lazy: optional dependency (ImportError if absent)

        self.log_dir = None if log_dir is None else Path(log_dir)
        self.tracking_uri = _tracking_uri(tracking_uri)
        self.experiment_name = str(experiment_name)
        self.run_name = run_name
        self.tags = {str(k): str(v) for k, v in dict(tags or {}).items()}
        self._client_class = MlflowClient
        self.client: Any = None
        self.run_id: str | None = None

    def _run(self) -> str:
        """The MLflow run, created on first use."""
        if self.run_id is None:
            self.client = self._client_class(tracking_uri=self.tracking_uri)
            experiment = self.client.get_experiment_by_name(self.experiment_name)
            experiment_id = (experiment.experiment_id if experiment is not None
                             else self.client.create_experiment(self.experiment_name))
            tags = {**self.tags, **({"pathways.run_dir": str(self.log_dir)} if self.log_dir is not None else {})}
            run = self.client.create_run(experiment_id, run_name=self.run_name, tags=tags)
            self.run_id = run.info.run_id
            atexit.register(self.close, "failed")  # a crash leaves no run RUNNING forever
        return self.run_id

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        self._log_numbers({k: v for k, v in metrics.items() if k != "epoch"}, step)

    def resume(self, history: Sequence[Mapping[str, Any]]) -> None:
        for row in history:  # a resumed run is a new MLflow run: it gets the earlier epochs too
            self.log(int(row.get("epoch", 0)), row)

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        self._log_numbers(metrics, 0)

    def _log_numbers(self, metrics: Mapping[str, Any], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        entries = [Metric(k, v, stamp, int(step)) for k, v in _numbers(metrics).items()]
        if not entries:
            return
        run_id = self._run()
        for i in range(0, len(entries), self._BATCH):
            self.client.log_batch(run_id, metrics=entries[i:i + self._BATCH])

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        run_id = self._run()
        entries = [Param(k[:250], str(v)[: self._MAX_PARAM]) for k, v in flatten(params).items()]
        for i in range(0, len(entries), self._BATCH):
            self.client.log_batch(run_id, params=entries[i:i + self._BATCH])
        self.client.log_dict(run_id, json.loads(json.dumps(params, default=str)), "config.json")

    def log_artifact(self, path: str | os.PathLike, name: str | None = None) -> None:
        p = Path(path)
        run_id = self._run()
        if p.is_dir():
            self.client.log_artifacts(run_id, str(p), artifact_path=name or p.name)
        else:
            self.client.log_artifact(run_id, str(p), artifact_path=name)

    def close(self, status: str = "success") -> None:
        if self.run_id is not None and self.client is not None:
            self.client.set_terminated(self.run_id, status="FINISHED" if status == "success" else "FAILED")
            atexit.unregister(self.close)
            self.run_id = None


def _tracking_uri(uri: str | None) -> str | None:
    """An absolute ``file://`` URI for a local folder (opting in to MLflow's file store), other URIs as given."""
    if uri is None:
        return None
    text = str(uri)
    if "://" in text and not text.startswith("file://"):
        return text  # a server or database
    folder = Path(text[len("file://"):] if text.startswith("file://") else text).resolve()
    # MLflow >= 3.7 refuses file stores unless asked to keep them: giving a folder is that request
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return folder.as_uri()


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` can be imported (the ``tensorboard`` package is installed)."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


_BY_NAME = {"csv": "pathways.training.loggers.CSVLogger", "tensorboard": "pathways.training.loggers.TensorBoardLogger",
            "mlflow": "pathways.training.loggers.MLflowLogger"}


def build_loggers(group: Any, log_dir: str | os.PathLike | None) -> list[MetricLogger]:
    """Instantiate the loggers of a ``logger`` config group, writing under ``log_dir``.

    Parameters
    ----------
    group : a mapping of named ``_target_`` nodes (``configs/logger/*.yaml``; a node set to null is off), the
        former form ``{"loggers": ["csv", "tensorboard"]}``, or a list of names among "csv", "tensorboard",
        "mlflow".
    log_dir : the run directory, given to each logger as ``log_dir``. None: no loggers.

    A logger whose package is not installed warns (``PathwaysDataWarning``, naming the extra to install) and is
    skipped, so a config that asks for it still runs everywhere.

    Examples
    --------
    >>> import tempfile
    >>> [type(x).__name__ for x in build_loggers({"csv": {"_target_": "pathways.training.loggers.CSVLogger"}},
    ...                                           tempfile.mkdtemp())]
    ['CSVLogger']
    """
    if log_dir is None or group is None:
        return []
    if isinstance(group, (DictConfig, ListConfig)):
        group = OmegaConf.to_container(group, resolve=True)
    if isinstance(group, Mapping) and set(group) == {"loggers"}:
        group = group["loggers"]
    if isinstance(group, str):
        group = [group]
    if not isinstance(group, Mapping):
        group = {str(name): {"_target_": _target_of(name)} for name in group}
    out: list[MetricLogger] = []
    for name, node in group.items():
        if node is None:
            continue
        if not isinstance(node, Mapping) or "_target_" not in node:
            raise PathwaysInputError(f"config 'logger.{name}': expected a node with a _target_ (a logger class), "
                                     f"got {node!r}")
        sink = _instantiate(str(name), node, log_dir)
        if sink is not None:
            out.append(sink)
    return out


def _target_of(name: Any) -> str:
    key = str(name).lower()
    if key not in _BY_NAME:
        raise PathwaysInputError(f"argument 'loggers': unknown logger {name!r}; use one of {sorted(_BY_NAME)}")
    return _BY_NAME[key]


def _instantiate(name: str, node: Mapping[str, Any], log_dir: str | os.PathLike) -> MetricLogger | None:
    try:
        sink = instantiate(dict(node), log_dir=str(log_dir))
    except Exception as exc:  # Hydra wraps the constructor's error: surface the cause, naming the logger
        cause = exc.__cause__ or exc
        if isinstance(cause, ImportError):
            extra = name if name in ("tensorboard", "mlflow") else "<extra>"
            warnings.warn(f"logger '{name}' requested but its package is not installed ({cause}); skipping it "
                          f"(pip install 'pathways[{extra}]')", PathwaysDataWarning, stacklevel=3)
            return None
        if isinstance(cause, PathwaysInputError):
            raise cause from None
        raise PathwaysInputError(f"config 'logger.{name}': cannot build '{node.get('_target_')}': "
                                 f"{type(cause).__name__}: {cause}") from exc
    if not isinstance(sink, MetricLogger):
        raise PathwaysInputError(f"config 'logger.{name}': {node.get('_target_')!r} is not a MetricLogger")
    return sink


def make_loggers(loggers: Iterable[Any] | str | None, log_dir: str | os.PathLike | None,
                 history: Sequence[Mapping[str, Any]] = ()) -> list[MetricLogger]:
    """The Trainer's loggers: names ("csv", "tensorboard", "mlflow") are built under ``log_dir`` (none without a
    ``log_dir``); :class:`MetricLogger` objects (built by the pipeline) are used as they are. ``history`` (a resumed
    run's earlier epochs) is handed to every logger's ``resume``."""
    if loggers is None:
        return []
    items = [loggers] if isinstance(loggers, str) else list(loggers)
    names = [x for x in items if not isinstance(x, MetricLogger)]
    out = [x for x in items if isinstance(x, MetricLogger)] + build_loggers(names or None, log_dir)
    if history:
        for sink in out:
            sink.resume(history)
    return out


def close_loggers(sinks: Iterable[MetricLogger], given: Iterable[Any] | str | None = (),
                  status: str = "success") -> None:
    """Close the loggers in ``sinks`` that are not among ``given`` (those belong to whoever passed them in)."""
    keep = {id(x) for x in ([] if given is None or isinstance(given, str) else given)}
    for sink in sinks:
        if id(sink) not in keep:
            sink.close(status)


def finish_run(sinks: Iterable[Any], *, config: Mapping[str, Any] | None = None,
               metrics: Mapping[str, Any] | None = None,
               artifacts: Mapping[str, str | os.PathLike | None] | None = None, status: str = "success") -> None:
    """End a run on every logger: the resolved ``config`` as hyper-parameters, the final ``metrics``, the
    ``artifacts`` (name -> file or folder; None entries skipped), then ``close(status)``. Non-logger entries of
    ``sinks`` (logger names a Trainer builds itself) are ignored."""
    for sink in sinks:
        if not isinstance(sink, MetricLogger):
            continue
        if config is not None:
            sink.log_hyperparams(config)
        if metrics:
            sink.log_metrics(metrics)
        for name, path in dict(artifacts or {}).items():
            if path is not None and Path(path).exists():
                sink.log_artifact(path, name)
        sink.close(status)
