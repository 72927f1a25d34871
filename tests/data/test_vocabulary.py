import numpy as np
import pytest

from pathways.data import Vocabulary
from pathways.errors import PathwaysInputError


def test_from_codes_sorted_with_counts_and_oov():
    v = Vocabulary.from_codes(["b", "a", "b", "c", "b", "a"], min_count=2)
    assert v.codes.tolist() == ["<OOV>", "a", "b"]
    assert v.counts.tolist() == [1, 2, 3]
    assert v.oov_index == 0


def test_encode_decode_round_trip():
    v = Vocabulary(["I10", "N02BE01", "Z00"])
    idx = v.encode(["Z00", "I10", "Z00"])
    assert idx.tolist() == [2, 0, 2]
    assert v.decode(idx).tolist() == ["Z00", "I10", "Z00"]


def test_unknown_code_error_names_count_and_example():
    v = Vocabulary(["a", "b"])
    with pytest.raises(PathwaysInputError, match=r"2 rows carry 1 codes unknown.*'zz'"):
        v.encode(["a", "zz", "zz"])


def test_unknown_to_oov_bucket():
    v = Vocabulary(["a"], oov_token="<OOV>")
    assert v.encode(["a", "x"], unknown="oov").tolist() == [1, 0]


def test_duplicates_rejected():
    with pytest.raises(PathwaysInputError, match="duplicated"):
        Vocabulary(["a", "a"])


def test_dict_round_trip_and_equality():
    v = Vocabulary.from_codes(list("abcab"), min_count=2)
    assert Vocabulary.from_dict(v.to_dict()) == v
    assert v != Vocabulary(["a", "b"])


def test_rollup_merges_counts_and_maps_indices():
    v = Vocabulary(["N02BE01", "N02BE05", "C09AA02"], counts=[3, 2, 5])
    new, mapping = v.rollup(lambda c: c[:3])
    assert new.codes.tolist() == ["C09", "N02"]
    assert new.counts.tolist() == [5, 5]
    assert new.decode(mapping).tolist() == ["N02", "N02", "C09"]


def test_decode_out_of_range():
    with pytest.raises(PathwaysInputError, match="out of range"):
        Vocabulary(["a"]).decode(np.array([3]))
