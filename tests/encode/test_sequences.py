import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pathways import EventLog, PathwaysInputError
from pathways.encode import Sequences, to_sequences


def _log():
    ev = pd.DataFrame({"patient_id": [1, 1, 1, 2, 3, 3], "time": [0.5, 0.1, 2.0, 4.0, 1.0, 1.0],
                       "code": ["a", "b", "a", "c", "b", "a"]})
    patients = pd.DataFrame({"patient_id": [1, 2, 3, 4], "start": [0.0, 1.0, 0.0, 0.0], "end": [5.0, 6.0, 2.0, 3.0]})
    return EventLog.from_pandas(ev, patients)


def test_to_sequences_keeps_windows_and_order():
    seq = to_sequences(_log())
    assert len(seq) == 4 and seq.n_events == 6
    assert seq.lengths.tolist() == [3, 1, 2, 0]
    assert seq.times[:3].tolist() == [0.1, 0.5, 2.0]
    assert seq.end.tolist() == [5.0, 6.0, 2.0, 3.0]
    assert seq.relative_times()[3] == 3.0  # 4.0 - start 1.0


def test_tick_round_trip():
    seq = to_sequences(_log())
    back = Sequences.from_tick(seq.to_tick(), end_times=seq.tick_end_times(), start_times=seq.start)
    np.testing.assert_allclose(back.times, seq.times)
    np.testing.assert_array_equal(back.marks, seq.marks)
    np.testing.assert_array_equal(back.offsets, seq.offsets)


def test_subset_gathers_right_events():
    seq = to_sequences(_log())
    sub = seq[[2, 0]]
    assert sub.lengths.tolist() == [2, 3]
    assert sub.times.tolist() == [1.0, 1.0, 0.1, 0.5, 2.0]
    assert sub.patient_index.tolist() == [2, 0]


def test_batches_cover_every_sequence_once_and_pad_correctly():
    seq = to_sequences(_log())
    batches = list(seq.batches(batch_size=3, shuffle=True, seed=0))
    seen = torch.cat([b.index for b in batches]).sort().values
    assert seen.tolist() == [0, 1, 2, 3]
    for b in batches:
        assert b.mask.sum().item() == b.lengths.sum().item()
        for row, i in enumerate(b.index.tolist()):
            n = seq.lengths[i]
            rel = seq.times[seq.offsets[i]:seq.offsets[i + 1]] - seq.start[i]
            np.testing.assert_allclose(b.times[row, :n].numpy(), rel, rtol=1e-6)
            assert b.end[row].item() == pytest.approx(seq.end[i] - seq.start[i])


def test_bucketing_reduces_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=256)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    times = np.concatenate([np.sort(rng.uniform(0, 10, n)) for n in lengths])
    seq = Sequences(times, np.zeros(times.size, int), offsets, np.zeros(256), np.full(256, 10.0), 1)
    pad = lambda bucket: sum(b.mask.numel() for b in seq.batches(32, bucket=bucket))  # noqa: E731
    assert pad(True) < 0.7 * pad(False)


def test_validation_errors():
    with pytest.raises(PathwaysInputError, match="out of time order"):
        Sequences(np.array([2.0, 1.0]), np.array([0, 0]), np.array([0, 2]), np.zeros(1), np.full(1, 3.0), 1)
    with pytest.raises(PathwaysInputError, match="non-finite"):
        Sequences(np.array([np.nan]), np.array([0]), np.array([0, 1]), np.zeros(1), np.ones(1), 1)
    with pytest.raises(PathwaysInputError, match="outside their observation window"):
        Sequences(np.array([5.0]), np.array([0]), np.array([0, 1]), np.zeros(1), np.ones(1), 1)
    with pytest.raises(PathwaysInputError, match="codes unseen"):
        Sequences(np.array([0.5]), np.array([3]), np.array([0, 1]), np.zeros(1), np.ones(1), 2)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.tuples(st.floats(0, 100, allow_nan=False), st.integers(0, 4)), max_size=12),
                min_size=1, max_size=8))
def test_sequences_decode_to_original_events(patients):
    rows = [(p, t, f"c{c}") for p, evs in enumerate(patients) for t, c in evs]
    if not rows:
        return
    ev = pd.DataFrame(rows, columns=["patient_id", "time", "code"])
    log = EventLog.from_pandas(ev, duplicates="keep")
    seq = to_sequences(log)
    decoded = pd.DataFrame({"patient_id": log.patients["patient_id"].to_numpy()[seq.sequence_ids],
                            "time": seq.times, "code": log.vocab.decode(seq.marks)})
    expected = ev.sort_values(["patient_id", "time", "code"]).reset_index(drop=True)
    got = decoded.sort_values(["patient_id", "time", "code"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
