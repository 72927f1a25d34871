"""benchmarks/scale.py's EventLog equality check, whole and shard by shard (the 100 M-line run uses the latter)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pathways.data import EventLog
from pathways.data.dataset import write_event_dataset
from pathways.synthetic import simulate_cohort

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scale.py"


@pytest.fixture(scope="module")
def scale():
    spec = importlib.util.spec_from_file_location("scale_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def log():
    """A cohort with one float extra (the simulator's integer prescriber ids come back from the sharded layout
    as floats, a difference of that layout, not of the check)."""
    sim = simulate_cohort(40, seed=0, n_drugs=3, n_diagnoses=2, n_acts=1, n_outcomes=1, n_strong=1, n_weak=0,
                          follow_up_years=[1.0, 2.0])[0]
    paid = np.round(np.linspace(1.0, 9.0, sim.n_events), 2)
    return EventLog(sim.patient, sim.time, sim.code, sim.end, sim.value, sim.category, sim.patients, sim.vocab,
                    sim.time_unit, sim.origin, {"paid": paid})


REPORT = pd.DataFrame({"step": ["read", "merge"], "decision": ["kept", "duplicates"], "count": [10, 2],
                       "total": [12, 12]})


def _outputs(tmp_path: Path, duck: EventLog, spark: EventLog, report: pd.DataFrame = REPORT) -> tuple[str, str]:
    duck_path, spark_path = str(tmp_path / "duck.parquet"), str(tmp_path / "spark_ds")
    duck.to_parquet(duck_path)
    write_event_dataset(spark, spark_path, 4, (np.arange(spark.n_patients) * 7) % 4)
    REPORT.to_parquet(duck_path + ".report.parquet")
    report.to_parquet(spark_path + ".report.parquet")
    return duck_path, spark_path


@pytest.mark.parametrize("mode", ["full", "shards"])
def test_same_outputs_are_equal(scale, log, tmp_path, mode):
    out = scale.equal_logs(*_outputs(tmp_path, log, log), mode)
    assert out["same"] == "True" and (out["events"], out["patients"]) == (log.n_events, log.n_patients)
    assert out.get("shards") == (4 if mode == "shards" else None)


@pytest.mark.parametrize("mode", ["full", "shards"])
def test_one_changed_event_time_is_found(scale, log, tmp_path, mode):
    time = log.time.copy()
    time[log.n_events // 2] += 0.5
    changed = EventLog(log.patient, time, log.code, log.end, log.value, log.category, log.patients, log.vocab,
                       log.time_unit, log.origin, log.extras)
    assert scale.equal_logs(*_outputs(tmp_path, log, changed), mode)["same"].startswith("False")


def test_a_patient_missing_from_the_shards_is_found(scale, log, tmp_path):
    fewer = log.select_patients(np.arange(1, log.n_patients))
    out = scale.equal_logs(*_outputs(tmp_path, log, fewer), "shards")
    assert out["same"].startswith("False") and "shards hold" in out["same"]


def test_a_different_report_count_is_found(scale, log, tmp_path):
    report = REPORT.assign(count=[10, 3])
    assert scale.equal_logs(*_outputs(tmp_path, log, log, report), "shards")["same"].startswith("False")
