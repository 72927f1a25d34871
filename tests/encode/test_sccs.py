"""SCCS encoder: SCCSData validation, tick round trip, subsets, and sccs_data from an EventLog."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from pathways.data import EventLog
from pathways.encode.sccs import SCCSData, sccs_data
from pathways.errors import PathwaysDataWarning, PathwaysInputError


def small_data() -> SCCSData:
    return SCCSData(
        n_buckets=5, censoring=[5, 3, 4],
        exposure_case=[0, 0, 1, 2], exposure_bucket=[1, 3, 0, 2], exposure_feature=[0, 1, 1, 0],
        exposure_value=[1.0, 1.0, 1.0, 2.0],
        outcome_case=[0, 1, 2, 2], outcome_bucket=[2, 1, 0, 3], outcome_count=[1, 1, 1, 2],
        feature_names=["a", "b"])


def test_tick_round_trip_keeps_every_array():
    data = small_data()
    features, labels, censoring = data.to_tick()
    assert len(features) == 3 and all(sp.issparse(f) and f.shape == (5, 2) for f in features)
    assert features[2].toarray()[2, 0] == 2.0 and features[0].toarray()[3, 1] == 1.0
    np.testing.assert_array_equal(labels[2], [1, 0, 0, 2, 0])
    assert censoring.dtype == np.uint64 and list(censoring) == [5, 3, 4]
    back = SCCSData.from_tick(features, labels, censoring, feature_names=["a", "b"])
    for name in ("censoring", "exposure_case", "exposure_bucket", "exposure_feature", "exposure_value",
                 "outcome_case", "outcome_bucket", "outcome_count"):
        np.testing.assert_array_equal(getattr(back, name), getattr(data, name), err_msg=name)


def test_from_tick_drops_what_lies_beyond_censoring():
    features = [np.array([[1.0], [0.0], [1.0]])]
    labels = [np.array([0, 1, 1])]
    with pytest.warns(PathwaysDataWarning, match="dropped 1 labels"):
        data = SCCSData.from_tick(features, labels, np.array([2]))
    assert list(data.exposure_bucket) == [0] and list(data.outcome_bucket) == [1]
    assert data.info["dropped_censored_exposures"] == 1


def test_subset_with_repetitions_renumbers_cases():
    data = small_data()
    sub = data.subset([2, 0, 2])
    assert sub.n_cases == 3 and list(sub.censoring) == [4, 5, 4]
    np.testing.assert_array_equal(sub.label_matrix(), data.label_matrix()[[2, 0, 2]])
    dense = sub.feature_matrix().toarray().reshape(3, 5, 2)
    np.testing.assert_array_equal(dense, data.feature_matrix().toarray().reshape(3, 5, 2)[[2, 0, 2]])
    assert data.subset(np.array([False, True, False])).n_cases == 1


def test_outcomes_per_case_and_repr():
    data = small_data()
    assert list(data.outcomes_per_case()) == [1, 1, 3]
    assert "n_cases=3" in repr(data) and len(data) == 3


@pytest.mark.parametrize("field, value, match", [
    ("censoring", [6, 3, 4], "censoring must lie in"),
    ("outcome_bucket", [2, 3, 0, 3], "outcome_bucket must lie in"),
    ("exposure_feature", [0, 2, 1, 0], "exposure_feature must lie in"),
    ("exposure_value", [1.0, np.nan, 1.0, 1.0], "exposure_value must be finite"),
    ("outcome_count", [1, -1, 1, 1], "outcome_count must be >= 0"),
    ("exposure_bucket", [1.5, 3, 0, 2], "must hold integers"),
])
def test_bad_arrays_are_named(field, value, match):
    base = small_data()
    kwargs = {k: getattr(base, k) for k in ("n_buckets", "censoring", "exposure_case", "exposure_bucket",
                                             "exposure_feature", "exposure_value", "outcome_case",
                                             "outcome_bucket", "outcome_count", "feature_names")}
    kwargs[field] = value
    with pytest.raises(PathwaysInputError, match=match):
        SCCSData(**kwargs)


def test_from_tick_rejects_ragged_shapes():
    with pytest.raises(PathwaysInputError, match="equal shape"):
        SCCSData.from_tick([np.zeros((3, 2)), np.zeros((4, 2))], [np.zeros(3), np.zeros(4)])
    with pytest.raises(PathwaysInputError, match="labels has 1 cases"):
        SCCSData.from_tick([np.zeros((3, 2)), np.zeros((3, 2))], [np.zeros(3)])


# -- EventLog encoder -------------------------------------------------------------------------------------------
def make_log() -> EventLog:
    events = pd.DataFrame({
        "patient_id": ["p1", "p1", "p1", "p1", "p2", "p2", "p3", "p3", "p4", "p4"],
        "time": [0.0, 3.0, 5.0, 12.0, 2.0, 9.0, 1.0, 4.0, 0.0, 2.0],
        "code": ["DRUG_A", "DRUG_A", "MI", "MI", "DRUG_B", "MI", "DRUG_C", "DRUG_A", "DRUG_A", "DRUG_B"],
    })
    patients = pd.DataFrame({
        "patient_id": ["p1", "p2", "p3", "p4"],
        "birth": [-3650.0, -7300.0, -1000.0, -500.0],
        "start": [0.0, 1.0, 0.0, 0.0], "end": [13.0, 10.0, 6.0, 9.0], "death": [np.nan, 9.5, np.nan, np.nan],
    })
    return EventLog.from_pandas(events, patients)


def test_eventlog_cases_buckets_and_censoring():
    log = make_log()
    data = sccs_data(log, ["DRUG_A", "DRUG_B"], "MI", bucket_size=4.0)
    # p3 and p4 have no MI: not cases; p1 window [0, 13] -> 4 buckets, p2 window [1, 9.5] -> 3 buckets
    assert data.n_cases == 2 and data.n_buckets == 4 and list(data.censoring) == [4, 3]
    assert list(data.case_patient) == [0, 1]
    # first outcome only: p1 at t=5 -> bucket 1, p2 at t=9 -> (9-1)/4 = bucket 2
    assert list(data.outcome_bucket) == [1, 2] and list(data.outcome_count) == [1, 1]
    # p1 starts A at buckets 0 (t=0, t=3 merged as an indicator); p2 starts B at bucket 0 (t=2)
    assert list(zip(data.exposure_case, data.exposure_bucket, data.exposure_feature, data.exposure_value)) == [
        (0, 0, 0, 1.0), (1, 0, 1, 1.0)]
    assert list(data.feature_names) == ["DRUG_A", "DRUG_B"] and data.outcome_name == "MI"


def test_eventlog_options_count_all_outcomes_and_groups():
    log = make_log()
    data = sccs_data(log, {"any": ["DRUG_A", "DRUG_B"]}, ["MI"], bucket_size=4.0, outcome_mode="all",
                     exposure_value="count")
    assert list(data.outcome_case) == [0, 0, 1] and list(data.outcome_bucket) == [1, 3, 2]
    assert list(data.exposure_value) == [2.0, 1.0] and list(data.feature_names) == ["any"]
    first = sccs_data(log, ["DRUG_A"], "MI", bucket_size=1.0, first_exposure_only=True)
    assert list(first.exposure_bucket) == [0]  # the t=3 restart is dropped
    every = sccs_data(log, ["DRUG_A"], "MI", bucket_size=1.0)
    assert list(every.exposure_bucket) == [0, 3]


def test_eventlog_age_groups_are_reference_coded():
    log = make_log()
    data = sccs_data(log, ["DRUG_A"], "MI", bucket_size=4.0, age_edges=[0.0, 3660.0, 7000.0])
    assert list(data.feature_names) == ["DRUG_A", "age[3660,7000)", "age[7000,inf)"]
    assert list(data.feature_kind) == ["exposure", "age", "age"]
    dense = data.feature_matrix().toarray().reshape(2, 4, 3)
    # p1 born -3650: age 3650 at bucket 0 (reference), 3654 at bucket 1 (still < 3660), 3658, then 3662 -> group 1
    np.testing.assert_array_equal(dense[0, :, 1], [0, 0, 0, 1])
    # p2 born -7300, window starts at 1: always >= 7000 -> group 2 at its 3 observed buckets only
    np.testing.assert_array_equal(dense[1, :, 2], [1, 1, 1, 0])


def test_eventlog_bad_arguments():
    log = make_log()
    with pytest.raises(PathwaysInputError, match="absent from the log's vocabulary"):
        sccs_data(log, ["NOPE"], "MI", bucket_size=1.0)
    with pytest.raises(PathwaysInputError, match="bucket_size"):
        sccs_data(log, ["DRUG_A"], "MI", bucket_size=0.0)
    with pytest.raises(PathwaysInputError, match="outcome_mode"):
        sccs_data(log, ["DRUG_A"], "MI", bucket_size=1.0, outcome_mode="last")
    with pytest.raises(PathwaysInputError, match="age_edges"):
        sccs_data(log, ["DRUG_A"], "MI", bucket_size=1.0, age_edges=[5.0, 1.0])


def test_eventlog_exposures_after_death_are_counted():
    log = make_log()
    events = pd.DataFrame({"patient_id": ["p1", "p1"], "time": [1.0, 8.0], "code": ["MI", "DRUG_A"]})
    patients = pd.DataFrame({"patient_id": ["p1"], "start": [0.0], "end": [10.0], "death": [5.0]})
    log = EventLog.from_pandas(events, patients)
    with pytest.warns(PathwaysDataWarning, match="1 after censoring"):
        data = sccs_data(log, ["DRUG_A"], "MI", bucket_size=1.0)
    assert data.exposure_case.size == 0 and data.info["exposures_after_censoring"] == 1
    assert list(data.censoring) == [6]


def test_cohort_input_is_read_through_its_eventlog():
    from pathways.cohort import Cohort
    log = make_log()
    cohort = Cohort("cases", [0, 1], log)  # the two patients with an MI, all their events
    data = sccs_data(cohort, ["DRUG_A", "DRUG_B"], "MI", bucket_size=4.0)
    direct = sccs_data(log, ["DRUG_A", "DRUG_B"], "MI", bucket_size=4.0)
    np.testing.assert_array_equal(data.outcome_bucket, direct.outcome_bucket)
    np.testing.assert_array_equal(data.exposure_feature, direct.exposure_feature)
    assert data.n_cases == 2
