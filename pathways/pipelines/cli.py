"""Console scripts (``pathways-train``, ``pathways-evaluate``, ``pathways-predict``, ``pathways-detect-signals``,
``pathways-simulate``) and the logic of ``scripts/*.py``: thin Hydra entry points over :mod:`pathways.pipelines`.

Configs ship inside the package (``pathways/configs``), so an installed wheel finds them from any directory;
``--config-dir`` / ``-cd`` adds a folder of the user's own.
Every run writes into its Hydra run directory (``outputs/<name>/<date_time>``; sweeps: ``multirun/...``) and prints
where its checkpoint, report and tables are. With ``optimized_metric`` set (``hparams_search=...``), the task
function returns that metric as a float, the value a sweeper such as Optuna optimises.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Callable, Mapping

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from pathways import pipelines
from pathways.errors import PathwaysInputError
from pathways.pipelines.schema import validate_config
from pathways.progress import use_progress

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
#: entry points whose pipeline function also serves another entry (detect_signals runs as train's task=signals
#: with the train schema): their own schema is checked here
_VALIDATED_HERE = ("detect_signals",)


def objective(metrics: Mapping[str, Any], key: str) -> float:
    """The value of metric ``key`` as a finite float (what a sweeper optimises).

    Raises
    ------
    PathwaysInputError : naming the key and the metrics the run produced, when the metric is missing, not a
        number or not finite.

    Examples
    --------
    >>> objective({"val_loglik_per_event": -2.5, "fit_seconds": 1.0}, "val_loglik_per_event")
    -2.5
    >>> objective({"fit_seconds": 1.0}, "val_loss")
    Traceback (most recent call last):
    ...
    pathways.errors.PathwaysInputError: optimized_metric 'val_loss' is not a metric of this run; available: fit_seconds
    >>> objective({"val_loglik_per_event": float("nan")}, "val_loglik_per_event")
    Traceback (most recent call last):
    ...
    pathways.errors.PathwaysInputError: optimized_metric 'val_loglik_per_event' is nan (not finite): the run diverged or the metric is undefined for this data; numeric metrics: val_loglik_per_event
    """
    numeric = sorted(k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
    if key not in metrics:
        raise PathwaysInputError(
            f"optimized_metric '{key}' is not a metric of this run; available: {', '.join(numeric) or '<none>'}")
    value = metrics[key]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PathwaysInputError(
            f"optimized_metric '{key}' is {value!r}, not a number; numeric metrics: {', '.join(numeric)}") from None
    if not math.isfinite(number):
        raise PathwaysInputError(
            f"optimized_metric '{key}' is {number} (not finite): the run diverged or the metric is undefined for "
            f"this data; numeric metrics: {', '.join(numeric)}")
    return number


def _entry(config_name: str, pipeline: str) -> Callable[[], Any]:
    """Build a Hydra main function that runs ``pathways.pipelines.<pipeline>`` in the Hydra run directory."""
    config_path = str(CONFIG_DIR) if CONFIG_DIR.is_dir() else None

    @hydra.main(config_path=config_path, config_name=config_name, version_base="1.3")
    def main(cfg: DictConfig) -> Any:
        output_dir = HydraConfig.get().runtime.output_dir
        if pipeline in _VALIDATED_HERE:  # the other pipelines validate their config themselves, before any work
            validate_config(cfg, pipeline)
        with use_progress((cfg.get("trainer") or {}).get("progress")):  # the one switch of every bar of the run
            result = getattr(pipelines, pipeline)(cfg, output_dir)
        logging.getLogger("pathways").info("%s finished: %s", pipeline, output_dir)
        print(f"[pathways] {pipeline} done\n{result.describe()}")
        key = cfg.get("optimized_metric")
        # a sweeper optimises one float; plain runs and basic sweeps keep the metrics dict as the job's return
        return result.metrics if key is None else objective(result.metrics, str(key))

    return main


def train() -> Any:
    """``pathways-train`` / ``python scripts/train.py``: fit a model (default: the care_pathway_drivers study)."""
    return _entry("config", "train")()


def evaluate() -> Any:
    """``pathways-evaluate checkpoint=...``: score a checkpoint on a data source."""
    return _entry("evaluate", "evaluate")()


def predict() -> Any:
    """``pathways-predict checkpoint=...``: predictions for new patients, written as parquet."""
    return _entry("predict", "predict")()


def detect_signals() -> Any:
    """``pathways-detect-signals``: the drug-safety signal table of a cohort."""
    return _entry("detect_signals", "detect_signals")()


def simulate() -> Any:
    """``pathways-simulate``: draw the synthetic cohort and write it as parquet."""
    return _entry("simulate", "simulate")()
