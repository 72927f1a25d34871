import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pathways.data import EventLog, Vocabulary
from pathways.encode import SparseSeries, to_sparse_series
from pathways.errors import PathwaysDataWarning, PathwaysInputError


def _log(patient, time, code, end=None, start=None, stop=None, n_patients=None):
    patient = np.asarray(patient)
    n_patients = int(patient.max()) + 1 if n_patients is None else n_patients
    frame = {"patient_id": patient, "time": np.asarray(time, float), "code": np.asarray(code, dtype=object)}
    if end is not None:
        frame["end"] = np.asarray(end, float)
    patients = pd.DataFrame({"patient_id": np.arange(n_patients)})
    if start is not None:
        patients["start"] = np.asarray(start, float)
        patients["end"] = np.asarray(stop, float)
    return EventLog.from_pandas(pd.DataFrame(frame), patients, duplicates="keep")


def _dense_reference(log, width, anchor, lo, lengths):
    """Per-event Python reference: cell (patient, bin, code) += 1; an event at exactly the window end, on a bin
    edge, belongs to the last (right-closed) bin."""
    out = {}
    for p, t, c in zip(log.patient, log.time, log.code):
        k = min(int(np.floor((t - anchor[p]) / width)) - lo[p], lengths[p] - 1)
        out[(int(p), int(k), int(c))] = out.get((int(p), int(k), int(c)), 0) + 1
    return out


# ---------------------------------------------------------------------------------------------------------------
# hand cases
# ---------------------------------------------------------------------------------------------------------------
def test_calendar_bins_counts_and_offsets():
    log = _log([0, 0, 0, 1, 1], [1.0, 2.0, 25.0, 10.0, 10.5], ["A", "A", "B", "B", "A"],
               start=[0.0, 5.0], stop=[29.0, 19.0])
    s = to_sparse_series(log, bin_days=10.0)
    assert s.offsets.tolist() == [0, 3, 5]  # patient 0: bins [0,10) [10,20) [20,30); patient 1: [0,10) [10,20)
    np.testing.assert_array_equal(s.bin_start, [0.0, 0.0])
    np.testing.assert_array_equal(s.matrix.toarray(), [[2, 0], [0, 0], [0, 1], [0, 0], [1, 1]])
    assert s.row_time().tolist() == [0.0, 10.0, 20.0, 0.0, 10.0]
    assert s.vocab == log.vocab and s.matrix.dtype == np.float32


def test_indicator_and_window_end_on_bin_edge():
    log = _log([0, 0, 0], [0.0, 1.0, 20.0], ["A", "A", "A"], start=[0.0], stop=[20.0])
    s = to_sparse_series(log, bin_days=10.0, value="indicator")
    # window [0, 20] closed: 2 bins, the event at exactly t=20 belongs to the last one
    assert s.offsets.tolist() == [0, 2]
    np.testing.assert_array_equal(s.matrix.toarray(), [[1], [1]])


def test_spans_fill_every_bin_they_overlap():
    log = _log([0, 0], [3.0, 12.0], ["STAY", "A"], end=[25.0, np.nan], start=[0.0], stop=[39.0])
    fill = to_sparse_series(log, bin_days=10.0)
    np.testing.assert_array_equal(fill.matrix.toarray(), [[0, 1], [1, 1], [0, 1], [0, 0]])
    first = to_sparse_series(log, bin_days=10.0, spans="start")
    np.testing.assert_array_equal(first.matrix.toarray(), [[0, 1], [1, 0], [0, 0], [0, 0]])


def test_index_alignment_with_fixed_bins_and_history():
    log = _log([0, 0, 1, 1], [5.0, 40.0, 100.0, 131.0], ["A", "B", "A", "B"], start=[0.0, 90.0],
               stop=[60.0, 200.0])
    idx = np.array([20.0, 110.0])
    s = to_sparse_series(log, bin_days=15.0, align="index", index_time=idx, n_bins=3, first_bin=-1)
    # rows cover [index - 15, index + 30): patient 0 [5, 50), patient 1 [95, 140)
    assert s.lengths.tolist() == [3, 3]
    np.testing.assert_array_equal(s.bin_start, [5.0, 95.0])
    np.testing.assert_array_equal(s.matrix.toarray(), [[1, 0], [0, 0], [0, 1], [1, 0], [0, 0], [0, 1]])
    x, lengths = s.to_torch()
    assert tuple(x.shape) == (2, 3, 2) and lengths.tolist() == [3, 3]


def test_fixed_bins_are_half_open():
    # history bins [index - 20, index) leave out an event at exactly the index time, even when the window ends there
    log = _log([0, 0], [5.0, 20.0], ["A", "A"], start=[0.0], stop=[20.0])
    s = to_sparse_series(log, bin_days=10.0, align="index", index_time=[20.0], n_bins=2, first_bin=-2)
    np.testing.assert_array_equal(s.matrix.toarray(), [[1], [0]])
    own = to_sparse_series(log, bin_days=10.0, align="index", index_time=[20.0], first_bin=-2)
    np.testing.assert_array_equal(own.matrix.toarray(), [[1], [1]])  # own window end: last bin right-closed


def test_index_time_from_patients_column_and_row_observed():
    log = _log([0, 1], [12.0, 3.0], ["A", "A"], start=[10.0, 0.0], stop=[30.0, 5.0])
    s = to_sparse_series(log, bin_days=10.0, align="index", n_bins=3)  # index time = patients.start
    np.testing.assert_array_equal(s.bin_start, [10.0, 0.0])
    assert s.row_observed().tolist() == [True, True, True, True, False, False]


def test_patient_without_events_keeps_its_empty_bins():
    # a patient observed without any event is data (a row of zeros), not an error and not a dropped row
    log = _log([0, 0, 1], [0.0, 15.0, 3.0], ["A", "B", "A"], start=[0.0, 0.0, 5.0], stop=[30.0, 30.0, 25.0],
               n_patients=3)
    s = to_sparse_series(log, 10.0)
    assert len(s) == 3 and s.lengths.tolist() == [3, 3, 3]  # calendar bins [0, 10), [10, 20), [20, 30) overlap [5, 25)
    np.testing.assert_array_equal(s.totals().toarray(), [[1, 1], [1, 0], [0, 0]])
    assert s.matrix[s.offsets[2]:s.offsets[3]].nnz == 0
    dense, lengths = s.to_torch([2, 0])
    assert lengths.tolist() == [3, 3] and dense[0].abs().sum() == 0 and dense[1].sum() == 2


def test_unknown_codes_with_foreign_vocabulary():
    log = _log([0, 0], [0.0, 1.0], ["A", "Z"])
    vocab = Vocabulary(["<OOV>", "A", "B"], oov_token="<OOV>")
    with pytest.raises(PathwaysInputError, match="1 events carry 1 codes unknown.*'Z'"):
        to_sparse_series(log, 10.0, vocab=vocab)
    oov = to_sparse_series(log, 10.0, vocab=vocab, unknown="oov")
    np.testing.assert_array_equal(oov.matrix.toarray(), [[1, 1, 0]])
    with pytest.warns(PathwaysDataWarning, match="dropped"):
        dropped = to_sparse_series(log, 10.0, vocab=vocab, unknown="drop")
    np.testing.assert_array_equal(dropped.matrix.toarray(), [[0, 1, 0]])


@pytest.mark.parametrize("kwargs,match", [
    ({"bin_days": 0.0}, "bin_days"),
    ({"bin_days": float("nan")}, "bin_days"),
    ({"bin_days": "30"}, "bin_days"),
    ({"align": "weekly"}, "align"),
    ({"value": "sum"}, "value"),
    ({"spans": "end"}, "spans"),
    ({"n_bins": 0}, "n_bins"),
    ({"align": "index", "index_time": "surgery"}, "index_time.*surgery"),
    ({"align": "index", "index_time": [1.0]}, "index_time: expected 2"),
    ({"align": "index", "index_time": [1.0, np.nan]}, r"index_time.*1 of 2 rows have no finite index time"),
    ({"index_time": [1.0, 2.0]}, "only used with align='index'"),
])
def test_bad_arguments_raise(kwargs, match):
    log = _log([0, 1], [0.0, 1.0], ["A", "B"])
    kwargs = {"bin_days": 10.0, **kwargs}
    with pytest.raises(PathwaysInputError, match=match):
        to_sparse_series(log, **kwargs)


def test_subset_totals_and_torch_batches():
    log = _log([0, 0, 1, 2, 2, 2], [0.0, 15.0, 3.0, 0.0, 1.0, 35.0], ["A", "B", "B", "A", "A", "C"])
    s = to_sparse_series(log, bin_days=10.0, align="index")
    sub = s[[2, 0]]
    assert sub.lengths.tolist() == [s.lengths[2], s.lengths[0]]
    np.testing.assert_array_equal(sub.totals().toarray(), s.totals().toarray()[[2, 0]])
    dense, lengths = s.to_torch([0, 2])
    sparse, _ = s.to_torch([0, 2], dense=False)
    assert sparse.is_sparse
    torch.testing.assert_close(sparse.to_dense(), dense)
    assert dense[1, :, 0].tolist() == [2.0, 0.0, 0.0, 0.0]  # patient 2: two A's in its first bin
    assert dense[0, 2:].abs().sum() == 0  # padding after patient 0's 2 bins
    seen = np.concatenate([idx for _, _, idx in s.batches(2, shuffle=True, seed=0)])
    assert sorted(seen.tolist()) == [0, 1, 2]


def test_sparse_series_validates_offsets():
    with pytest.raises(PathwaysInputError, match="offsets"):
        SparseSeries(sp.csr_matrix((3, 2)), np.array([0, 2]), np.zeros(1), 1.0, None)


# ---------------------------------------------------------------------------------------------------------------
# property-based round trips
# ---------------------------------------------------------------------------------------------------------------
@st.composite
def point_logs(draw):
    n_patients = draw(st.integers(1, 6))
    n_events = draw(st.integers(n_patients, 40))
    patient = np.array(draw(st.lists(st.integers(0, n_patients - 1), min_size=n_events, max_size=n_events)))
    patient[:n_patients] = np.arange(n_patients)  # every patient has an event
    time = np.array(draw(st.lists(st.floats(-50.0, 300.0, allow_nan=False), min_size=n_events, max_size=n_events)))
    code = np.array(draw(st.lists(st.sampled_from(["A", "B", "C", "D"]), min_size=n_events, max_size=n_events)))
    return _log(patient, np.round(time, 3), code)


@settings(max_examples=60, deadline=None)
@given(log=point_logs(), width=st.sampled_from([1.0, 7.0, 30.0, 365.25]), align=st.sampled_from(["calendar", "index"]))
def test_bins_summed_give_code_counts_per_patient(log, width, align):
    s = to_sparse_series(log, bin_days=width, align=align)
    counts = np.zeros((log.n_patients, log.n_codes))
    np.add.at(counts, (log.patient, log.code), 1)
    np.testing.assert_array_equal(s.totals().toarray(), counts)
    assert s.matrix.sum() == log.n_events
    # each cell agrees with a per-event Python reference
    anchor = np.zeros(log.n_patients) if align == "calendar" else log.patients["start"].to_numpy()
    lo = np.floor((log.patients["start"].to_numpy() - anchor) / width).astype(int)
    ref = _dense_reference(log, width, anchor, lo, s.lengths)
    coo = s.matrix.tocoo()
    got = {(int(p), int(r - s.offsets[p]), int(c)): v
           for r, c, v, p in zip(coo.row, coo.col, coo.data, s.row_patient()[coo.row])}
    assert got == ref


@settings(max_examples=40, deadline=None)
@given(log=point_logs(), width=st.sampled_from([2.0, 10.0, 60.0]))
def test_indicator_counts_distinct_bins(log, width):
    counts = to_sparse_series(log, bin_days=width)
    ind = to_sparse_series(log, bin_days=width, value="indicator")
    assert set(np.unique(ind.matrix.data)) <= {1.0}
    np.testing.assert_array_equal(ind.matrix.toarray(), (counts.matrix.toarray() > 0).astype(np.float32))
    x, lengths = ind.to_torch()
    assert int(x.sum()) == ind.matrix.nnz and lengths.tolist() == ind.lengths.tolist()


@settings(max_examples=30, deadline=None)
@given(log=point_logs(), width=st.sampled_from([3.0, 30.0]))
def test_agrees_with_to_sequences(log, width):
    from pathways.encode import to_sequences

    seq = to_sequences(log)
    s = to_sparse_series(log, bin_days=width, align="index")
    np.testing.assert_array_equal(np.asarray(s.totals().sum(axis=1)).ravel(), seq.lengths)


def test_simulated_cohort_spans_and_points():
    from pathways.synthetic import simulate_cohort

    log, truth = simulate_cohort(200, seed=1)
    s = to_sparse_series(log, bin_days=7.0)
    counts = np.zeros((log.n_patients, log.n_codes))
    np.add.at(counts, (log.patient, log.code), 1)
    totals = s.totals().toarray()
    stays = truth.categories == "stay"
    np.testing.assert_array_equal(totals[:, ~stays], counts[:, ~stays])
    assert (totals[:, stays] >= counts[:, stays]).all() and totals[:, stays].sum() > counts[:, stays].sum()
    # a stay fills exactly the weeks it overlaps (end inclusive)
    is_stay = np.isin(log.code, np.flatnonzero(stays))
    weeks = (np.floor(log.end[is_stay] / 7.0) - np.floor(log.time[is_stay] / 7.0) + 1).sum()
    assert totals[:, stays].sum() == weeks
