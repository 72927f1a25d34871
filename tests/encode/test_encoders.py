"""Encoder objects: the encodings equal the functions they wrap, data-dependent choices are made by fit and
stored by get_params, and a rebuilt encoder (new or old-style checkpoint state) encodes identically."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pathways.data.anchors import index_times
from pathways.encode import (OutcomeEncoder, SCCSEncoder, SequenceEncoder, encoder_from_state,
                             most_frequent_diagnosis, outcome_dataset, to_sequences)
from pathways.encode.sccs import sccs_data
from pathways.errors import PathwaysInputError
from pathways.synthetic import simulate_cohort

TINY = dict(n_drugs=6, n_diagnoses=3, n_acts=1, n_outcomes=2, n_strong=1, n_weak=1, follow_up_years=[1.0, 2.0])


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(80, seed=0, **TINY)


def _same_outcome_data(a, b) -> None:
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.counts().toarray(), b.counts().toarray())


def test_sequence_encoder_is_to_sequences(cohort):
    log, _ = cohort
    enc = SequenceEncoder().fit(log)
    seqs, ref = enc.transform(log), to_sequences(log)
    np.testing.assert_array_equal(seqs.times, ref.times)
    np.testing.assert_array_equal(seqs.marks, ref.marks)
    assert enc.transform(seqs) is seqs and enc.output_kind == "sequences" and enc.get_params() == {}


def test_outcome_encoder_chooses_the_most_frequent_diagnosis_and_stores_it(cohort):
    log, _ = cohort
    enc = OutcomeEncoder().fit(log)
    code = most_frequent_diagnosis(log)
    assert enc.outcomes_ == [code] and enc.get_params()["outcomes"] == [code] and enc.output_kind == "outcome"
    ref = outcome_dataset(log, [code], 180.0, index_times(log, "midpoint"), lookback=365.0, bin_days=30.0,
                          value="count", censoring="keep")
    _same_outcome_data(enc.transform(log), ref)
    state = json.loads(json.dumps(enc.state()))  # JSON-able, as stored in the checkpoint
    rebuilt = encoder_from_state(state, "outcome")
    _same_outcome_data(rebuilt.transform(log), ref)
    with pytest.raises(PathwaysInputError, match="no outcome codes"):
        OutcomeEncoder().transform(log)


def test_outcome_encoder_settings_reach_the_dataset(cohort):
    log, _ = cohort
    code = str(log.vocab.codes[0])
    enc = OutcomeEncoder(outcomes=code, horizon_days=90.0, bin_days=10.0, value="indicator", censoring="drop")
    assert enc.fit(log).outcomes_ == [code]  # given outcomes are kept
    with pytest.warns(Warning, match="censored"):
        ref = outcome_dataset(log, [code], 90.0, index_times(log, "midpoint"), bin_days=10.0, value="indicator",
                              censoring="drop")
    with pytest.warns(Warning, match="censored"):
        _same_outcome_data(enc.transform(log), ref)


def test_sccs_encoder_takes_exposures_from_the_truth(cohort):
    log, truth = cohort
    enc = SCCSEncoder().fit(log, truth)
    assert enc.outcome_ and enc.exposures_ and enc.output_kind == "sccs"
    ref = sccs_data(log, enc.exposures_, enc.outcome_, 7.0)
    got = encoder_from_state(json.loads(json.dumps(enc.state())), "sccs").transform(log)
    assert got.n_cases == ref.n_cases
    with pytest.raises(PathwaysInputError, match="exposures"):
        SCCSEncoder().fit(log)  # no truth, nothing given


def test_old_style_encode_dicts_rebuild_the_same_encoders(cohort):
    log, _ = cohort
    code = most_frequent_diagnosis(log)
    old = {"sequences": {}, "sparse_series": {"bin_days": 30.0, "value": "count"}, "sccs": {},
           "labels": {"outcomes": [code], "horizon_days": 180.0, "lookback_days": 365.0, "index_time": None,
                      "censoring": "keep"}}
    for kind in ("outcome", "sparse_series"):  # the former name of the outcome kind
        enc = encoder_from_state(old, kind)
        assert isinstance(enc, OutcomeEncoder) and enc.get_params() == OutcomeEncoder(outcomes=[code]).get_params()
    assert isinstance(encoder_from_state(old, "sequences"), SequenceEncoder)
    assert isinstance(encoder_from_state({"sccs": {"exposures": ["a"], "outcome": "b"}}, "sccs"), SCCSEncoder)
    with pytest.raises(PathwaysInputError, match="not one of"):
        encoder_from_state({"_target_": "os.system"}, "sequences")
