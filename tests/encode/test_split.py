import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pathways.data import EventLog
from pathways.encode import split_patients
from pathways.encode.split import patient_uniforms
from pathways.errors import PathwaysInputError


def test_partition_and_shares():
    parts = split_patients(20000, seed=1)
    allidx = np.concatenate(parts)
    assert sorted(allidx.tolist()) == list(range(20000))
    shares = np.array([len(p) for p in parts]) / 20000
    np.testing.assert_allclose(shares, [0.7, 0.15, 0.15], atol=0.015)
    assert all(np.all(np.diff(p) > 0) for p in parts)


def test_deterministic_and_seed_dependent():
    a = split_patients(1000, seed=3)
    b = split_patients(1000, seed=3)
    c = split_patients(1000, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 300), extra=st.integers(1, 300), seed=st.integers(0, 2**31))
def test_adding_patients_never_moves_existing_ones(n, extra, seed):
    ids = np.array([f"BEN{i:06d}" for i in range(n + extra)], dtype=object)
    small = split_patients(ids[:n], seed=seed)
    large = split_patients(ids, seed=seed)
    for part_small, part_large in zip(small, large):
        np.testing.assert_array_equal(part_small, part_large[part_large < n])


def test_order_of_patients_does_not_matter():
    ids = np.arange(500) * 7 + 11
    perm = np.random.default_rng(0).permutation(500)
    u = patient_uniforms(ids, seed=2)
    np.testing.assert_array_equal(patient_uniforms(ids[perm], seed=2), u[perm])


def test_event_log_uses_patient_ids():
    events = pd.DataFrame({"patient_id": ["b", "a", "c", "a"], "time": [0.0, 1.0, 2.0, 3.0],
                           "code": ["X", "X", "Y", "Y"]})
    log = EventLog.from_pandas(events)
    parts = split_patients(log, (0.5, 0.5), seed=0)
    ids = log.patients["patient_id"].to_numpy()
    expected = split_patients(ids, (0.5, 0.5), seed=0)
    assert all(np.array_equal(x, y) for x, y in zip(parts, expected))


def test_zero_fraction_gives_empty_split():
    train, val, test = split_patients(100, (0.8, 0.0, 0.2))
    assert val.size == 0 and train.size + test.size == 100


@pytest.mark.parametrize("args,match", [
    ((10, (0.5, 0.6)), "sum to 1"),
    ((10, (1.2, -0.2)), "non-negative"),
    ((10, ()), "fractions"),
    ((-1,), "n_or_log"),
    (("abc",), "n_or_log"),
    ((["a", "b", "a"],), "1 of 3 patient ids repeat"),
    (([1.0, np.nan],), "1 of 2 patient ids are missing"),
])
def test_bad_input(args, match):
    with pytest.raises(PathwaysInputError, match=match):
        split_patients(*args)


def test_bad_seed():
    with pytest.raises(PathwaysInputError, match="seed"):
        split_patients(10, seed=1.5)
