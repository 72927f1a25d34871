"""The simulation pipeline: build the data of ``cfg.data`` and write it as parquet (with the planted truth)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from pathways.encode.sequences import Sequences
from pathways.pipelines.common import (
    RunResult,
    load_data,
    n_patients,
    write_csv,
    write_parquet,
    write_summary,
)
from pathways.pipelines.schema import validate_config
from pathways.synthetic.cohort import Truth


def simulate(cfg: DictConfig, output_dir: str | os.PathLike) -> RunResult:
    """Simulate the data of ``cfg.data`` and write it as parquet (EventLog round-trips through ``read_parquet``).

    Sequences (``simulate_hawkes``) become one row per event (``patient_id``, ``time``, ``code``); a synthetic
    cohort's true excitation graph goes to ``truth_adjacency.csv`` (``source``, ``target``, ``effect``).
    """
    validate_config(cfg, "simulate")
    out = Path(output_dir)
    data, truth = load_data(cfg.data)
    target = Path(str(cfg.output)) if cfg.get("output") else out / "events.parquet"
    if isinstance(data, Sequences):
        codes = (np.asarray(data.vocab.codes, dtype=object)[data.marks] if data.vocab is not None
                 else data.marks.astype(str))
        frame = pd.DataFrame({"patient_id": np.repeat(np.arange(len(data)), data.lengths), "time": data.times,
                              "code": codes})
        write_parquet(frame, target)
    else:
        data.to_parquet(target)
    result = RunResult(output_dir=out, files={"events": target},
                       metrics={"n_patients": n_patients(data), "n_events": int(data.n_events)})
    if isinstance(truth, Truth):
        result.files["truth"] = write_csv(_truth_frame(truth), out / "truth_adjacency.csv")
    write_summary(out, result, "ok")
    return result


def _truth_frame(truth: Truth) -> pd.DataFrame:
    """The planted excitation graph, one row per (source, target) in target-major order."""
    codes = np.asarray([str(c) for c in truth.codes])
    adj = np.asarray(truth.adjacency, float)
    tgt, src = np.divmod(np.arange(adj.size), len(codes))
    return pd.DataFrame({"source": codes[src], "target": codes[tgt], "effect": adj.ravel()})
