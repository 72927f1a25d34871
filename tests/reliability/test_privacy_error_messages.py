"""Pipeline error paths never echo identifiers (issue 12, Privacy): a foreign error raised while reading or
analysing patient data (DuckDB's ``Original Line: <BEN_NIR_PSA>,...``, pandas' ``invalid literal ...``) reaches the
console and the sweep table without its message, and without the chained exception that would print it."""
from __future__ import annotations

import traceback

import pytest
from omegaconf import OmegaConf

from pathways.errors import PathwaysInputError
from pathways.pipelines.common import instantiate, load_data

NIR = "1840275123456"


def _raise_from(node: dict) -> PathwaysInputError:
    with pytest.raises(PathwaysInputError) as caught:
        load_data(OmegaConf.create(node))
    return caught.value


def _printed(exc: BaseException) -> str:
    """What Python prints for an uncaught exception (with HYDRA_FULL_ERROR=1 the whole chain is shown)."""
    return "".join(traceback.format_exception(exc))


def test_foreign_error_on_patient_data_is_withheld_with_its_chain():
    exc = _raise_from({"_target_": "builtins.int", "_args_": [f"{NIR},1990-01-01,M"]})  # ValueError quoting the row
    assert "ValueError on the patient data (its message is withheld" in str(exc)
    assert NIR not in _printed(exc) and exc.__cause__ is None and exc.__suppress_context__


def test_pathways_errors_pass_through_unchanged():
    exc = _raise_from({"_target_": "pathways.models.params.check_real", "name": "window", "value": "abc",
                       "ok": None, "expected": "a number"})
    assert str(exc) == "window: expected a number, got 'abc'"


def test_missing_file_keeps_its_path():
    exc = _raise_from({"_target_": "pathways.data.eventlog.EventLog.read_parquet", "path": "/no/such/events.parquet"})
    assert "/no/such/events.parquet" in str(exc)


def test_other_nodes_keep_the_cause_for_configuration_mistakes():
    with pytest.raises(PathwaysInputError, match="cannot build 'builtins.int': ValueError: invalid literal"):
        instantiate(OmegaConf.create({"_target_": "builtins.int", "_args_": ["x"]}))
