"""Console scripts (``pathways-train``, ``pathways-evaluate``, ``pathways-predict``, ``pathways-detect-signals``,
``pathways-simulate``) and the logic of ``scripts/*.py``: thin Hydra entry points over
:mod:`pathways.training.run`.

Configs ship inside the package (``pathways/configs``), so an installed wheel finds them from any directory;
``--config-dir`` / ``-cd`` adds a folder of the user's own.
Every run writes into its Hydra run directory (``outputs/<name>/<date_time>``; sweeps: ``multirun/...``) and prints
where its checkpoint, report and tables are.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def _entry(config_name: str, pipeline: str) -> Callable[[], Any]:
    """Build a Hydra main function that runs ``pathways.training.run.<pipeline>`` in the Hydra run directory."""
    import hydra
    from omegaconf import DictConfig

    config_path = str(CONFIG_DIR) if CONFIG_DIR.is_dir() else None

    @hydra.main(config_path=config_path, config_name=config_name, version_base="1.3")
    def main(cfg: DictConfig) -> Any:
        from hydra.core.hydra_config import HydraConfig

        from pathways.training import run

        output_dir = HydraConfig.get().runtime.output_dir
        result = getattr(run, pipeline)(cfg, output_dir)
        logging.getLogger("pathways").info("%s finished: %s", pipeline, output_dir)
        print(f"[pathways] {pipeline} done\n{result.describe()}")
        return result.metrics  # the value sweepers (e.g. Optuna) optimise

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
