"""A failed job of a sweep gets its row (status, error without identifiers) in the results table (issue 12)."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import RunMode
from omegaconf import OmegaConf

from pathways.errors import PathwaysInputError
from pathways.pipelines.schema import ConfigValueError
from pathways.pipelines.sweep import SUMMARY_FILE, CollectResults, collect_results, error_summary

PATIENT_ID = "1840275123456"  # looks like a NIR: must never reach the results table


def _job(sweep, num: int, overrides: list[str], outcome) -> None:
    """What Hydra's launcher does for one job: run it, then call the callback's on_job_end."""
    out = sweep / str(num)
    out.mkdir(parents=True)
    config = OmegaConf.create({"hydra": {"mode": RunMode.MULTIRUN, "sweep": {"dir": str(sweep)},
                                         "runtime": {"output_dir": str(out)}, "overrides": {"task": overrides}}})
    ret = JobReturn(overrides=overrides)
    if isinstance(outcome, BaseException):
        ret.status, ret.return_value = JobStatus.FAILED, outcome
    else:
        (out / SUMMARY_FILE).write_text(json.dumps({"status": "ok", "overrides": overrides, "model": "RMTPP",
                                                    "metrics": {"val_loss": outcome}}))
        ret.status, ret.return_value = JobStatus.COMPLETED, {"val_loss": outcome}
    CollectResults().on_job_end(config, ret)


def test_failed_jobs_get_rows_with_status_and_error(tmp_path):
    sweep = tmp_path / "sweep"
    _job(sweep, 0, ["model.lr=0.01"], 1.5)
    _job(sweep, 1, ["model.lr=-1"], PathwaysInputError("lr: expected a number > 0, got -1"))
    _job(sweep, 2, ["model.lr=0.1"], RuntimeError(f"Original Line: {PATIENT_ID},1990-01-01,M"))
    _job(sweep, 3, ["report.top_k=0"], ConfigValueError("config key 'report.top_k': expected an integer >= 1"))
    table = pd.read_csv(sweep / "results.csv")
    assert table["run"].astype(str).tolist() == ["0", "1", "2", "3"]
    assert table["status"].tolist() == ["ok", "failed", "failed", "failed"]
    assert table.loc[1, "error"] == "PathwaysInputError: lr: expected a number > 0, got -1"
    assert table.loc[2, "error"] == "RuntimeError (message withheld: it may quote input data; see the job log)"
    assert table.loc[3, "error"].startswith("ConfigValueError: config key 'report.top_k'")
    assert table.loc[1, "model.lr"] == -1 and pd.isna(table.loc[0, "error"])
    for written in (sweep / "results.csv", sweep / "results.md", sweep / "2" / SUMMARY_FILE):
        assert PATIENT_ID not in written.read_text()


def test_a_job_that_wrote_ok_and_then_failed_is_recorded_as_failed(tmp_path):
    """A failure after the summary (e.g. the optimized metric is missing) still marks the row failed."""
    sweep = tmp_path / "sweep"
    _job(sweep, 0, ["seed=0"], 1.0)
    config = OmegaConf.create({"hydra": {"mode": RunMode.MULTIRUN, "sweep": {"dir": str(sweep)},
                                         "runtime": {"output_dir": str(sweep / "0")},
                                         "overrides": {"task": ["seed=0"]}}})
    ret = JobReturn(overrides=["seed=0"], status=JobStatus.FAILED)
    ret.return_value = PathwaysInputError("optimized_metric 'val_auroc' is not a metric of this run")
    CollectResults().on_job_end(config, ret)
    table = collect_results(sweep)
    assert table.loc[0, "status"] == "failed" and "val_auroc" in table.loc[0, "error"]


@pytest.mark.parametrize("exc, expected", [
    (PathwaysInputError("column 'code': 3 of 9 rows empty\nfirst at row 2"),
     "PathwaysInputError: column 'code': 3 of 9 rows empty first at row 2"),
    (PathwaysInputError("x" * 400), "PathwaysInputError: " + "x" * 297 + "..."),
    (KeyError(PATIENT_ID), "KeyError (message withheld: it may quote input data; see the job log)"),
    (ValueError(f"invalid literal for int(): '{PATIENT_ID}'"),
     "ValueError (message withheld: it may quote input data; see the job log)"),
])
def test_error_summary_is_one_line_without_foreign_messages(exc, expected):
    assert error_summary(exc) == expected
