"""Sparse baseline covariates: windows, roll-ups, exclusions, demographics, Charlson index."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from pathways.data import EventLog, Vocabulary
from pathways.errors import PathwaysInputError
from pathways.studies.covariates import (
    baseline_covariates,
    charlson_index,
    code_features,
)


def _log() -> EventLog:
    events = pd.DataFrame({
        "patient_id": ["a", "a", "a", "a", "b", "b", "b"],
        "time": [100., 380., 395., 400., 390., 399., 500.],
        "code": ["E119", "I21", "A10BA02", "C09AA02", "C78", "N18", "I50"],
    })
    patients = pd.DataFrame({"patient_id": ["a", "b"], "birth": [400 - 70 * 365.25, 400 - 42 * 365.25],
                             "sex": ["F", "M"], "start": [0., 0.], "end": [900., 900.]})
    return EventLog.from_pandas(events, patients)


def test_windows_rollups_and_exclusions():
    log = _log()
    cov = baseline_covariates(log, np.array([0, 1]), np.array([400., 400.]), windows=(365, 30),
                              exclude_codes=["C09"])
    x = pd.DataFrame(cov.matrix.toarray(), columns=cov.names)
    assert x.loc[0, "w365:code:E119"] == 1 and "w30:code:E119" not in x  # day 100: in the year, not the month
    assert x.loc[0, "w365:icd10:E11"] == 1 and x.loc[0, "w365:icd10_chapter:IV"] == 1
    assert x.loc[0, "w30:atc3:A10B"] == 1 and x.loc[1, "w30:atc3:A10B"] == 0
    assert not any("C09" in n for n in cov.names)  # the drugs of the comparison are not covariates
    assert not any("I50" in n for n in cov.names)  # on or after index: not baseline
    assert x.loc[0, "age"] == pytest.approx(70) and x.loc[1, "sex:F"] == 0
    assert x.loc[0, "w365:log1p_events"] == pytest.approx(np.log1p(3))
    # Charlson: a: MI (1) + diabetes (1); b: metastatic (6) + renal (2)
    np.testing.assert_allclose(cov.column("charlson_index"), [2, 8])
    with pytest.raises(PathwaysInputError, match="charlson"):
        cov.column("charlson")


def test_extra_covariates_and_checks():
    log = _log()
    extra = pd.DataFrame({"bmi": [31.0, 24.0]})
    cov = baseline_covariates(log, np.array([1, 0]), np.array([400., 400.]), extra=extra, rollup=False)
    np.testing.assert_allclose(cov.column("extra:bmi"), [24.0, 31.0])
    assert not any(n.startswith("w365:atc") for n in cov.names)
    with pytest.raises(PathwaysInputError, match="extra"):
        baseline_covariates(log, np.array([0, 1]), np.array([400., 400.]), extra=pd.DataFrame({"bmi": [1.0]}))
    with pytest.raises(PathwaysInputError, match="index"):
        baseline_covariates(log, np.array([0, 1]), np.array([400.]))


def test_code_features_and_charlson_on_vocab():
    vocab = Vocabulary(["C78", "E119", "I21", "Z00"])
    m, names = code_features(vocab, rollup=False)
    assert names.tolist() == ["code:C78", "code:E119", "code:I21", "code:Z00"] and m.nnz == 4
    presence = np.eye(4)[[0, 2]]
    np.testing.assert_allclose(charlson_index(sp.csr_matrix(presence), vocab), [6, 1])
