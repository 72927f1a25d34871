"""Vocabulary: the one mapping between code strings (outside) and integer indices (inside)."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from pathways.errors import PathwaysInputError


class Vocabulary:
    """Bidirectional mapping code string <-> integer index, with frequencies and an optional OOV bucket.

    An index never changes meaning once a model is fitted: the vocabulary travels with every checkpoint.

    Parameters
    ----------
    codes : code strings in index order (unique). If ``oov_token`` is given it must be the first entry or absent
        (it is then inserted at index 0).
    counts : frequency of each code when the vocabulary was built (optional).
    oov_token : name of the out-of-vocabulary bucket, or None for no bucket.

    Examples
    --------
    >>> v = Vocabulary.from_codes(["N02BE01", "I10", "I10", "Z00"], min_count=2)
    >>> v.codes.tolist()
    ['<OOV>', 'I10']
    >>> v.encode(["I10", "N02BE01"], unknown="oov").tolist()
    [1, 0]
    """

    def __init__(self, codes: Sequence[str], counts: Sequence[int] | None = None, oov_token: str | None = None):
        codes = [str(c) for c in codes]
        counts_arr = np.zeros(len(codes), dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)
        if counts_arr.shape != (len(codes),):
            raise PathwaysInputError(f"counts: expected {len(codes)} values, got {counts_arr.shape}")
        if oov_token is not None and (not codes or codes[0] != oov_token):
            if oov_token in codes:
                raise PathwaysInputError(f"oov_token {oov_token!r} must be the first code when present")
            codes = [oov_token, *codes]
            counts_arr = np.concatenate([[0], counts_arr])
        index = pd.Index(codes)
        if not index.is_unique:
            dup = index[index.duplicated()][0]
            raise PathwaysInputError(f"codes: {int(index.duplicated().sum())} duplicated codes, e.g. {dup!r}")
        self._codes = np.asarray(codes, dtype=object)
        self._index = index
        self._counts = counts_arr
        self.oov_token = oov_token

    # -- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_codes(cls, values: Iterable[Any], min_count: int = 1, oov_token: str | None = "<OOV>") -> "Vocabulary":
        """Build from observed code values, sorted by code; codes seen fewer than ``min_count`` times go to OOV.

        With ``oov_token=None`` rare codes are dropped from the vocabulary (encoding them later is an error).
        """
        values = pd.Series(np.asarray(values, dtype=object)).astype(str)
        return cls.from_counts(values.value_counts(sort=False), min_count, oov_token)

    @classmethod
    def from_counts(cls, counts: pd.Series, min_count: int = 1, oov_token: str | None = "<OOV>") -> "Vocabulary":
        """Build from code -> count (the index holds the codes), like :meth:`from_codes` on the counted values."""
        counts = counts.groupby(counts.index.astype(str)).sum().sort_index()
        keep = counts[counts >= min_count]
        rare_total = int(counts[counts < min_count].sum())
        if oov_token is None:
            return cls(keep.index.tolist(), keep.to_numpy())
        return cls([oov_token, *keep.index.tolist()], [rare_total, *keep.to_numpy().tolist()], oov_token=oov_token)

    # -- properties ---------------------------------------------------------------------------------------------
    @property
    def codes(self) -> np.ndarray:
        """Index -> code string (object array)."""
        return self._codes

    @property
    def counts(self) -> np.ndarray:
        """Frequency of each code when the vocabulary was built."""
        return self._counts

    @property
    def oov_index(self) -> int | None:
        """Index of the OOV bucket, or None."""
        return 0 if self.oov_token is not None else None

    def __len__(self) -> int:
        return len(self._codes)

    def __contains__(self, code: object) -> bool:
        return str(code) in self._index

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Vocabulary)
            and self.oov_token == other.oov_token
            and len(self) == len(other)
            and bool(np.all(self._codes == other._codes))
        )

    def __hash__(self) -> int:
        return hash((self.oov_token, tuple(self._codes)))

    def __repr__(self) -> str:
        head = ", ".join(map(str, self._codes[:5]))
        return f"Vocabulary({len(self)} codes: {head}{', ...' if len(self) > 5 else ''})"

    # -- mapping ------------------------------------------------------------------------------------------------
    def encode(self, values: Iterable[Any], unknown: str = "error") -> np.ndarray:
        """Map code strings to indices.

        Parameters
        ----------
        values : code values (converted to str).
        unknown : ``"error"`` raises naming the count and an example; ``"oov"`` maps them to the OOV bucket.
        """
        if unknown not in ("error", "oov"):
            raise PathwaysInputError(f"unknown: expected 'error' or 'oov', got {unknown!r}")
        arr = np.asarray(values, dtype=object)
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        # Encode unique values once: codes repeat massively in claims data.
        uniques, inverse = np.unique(arr.astype(str), return_inverse=True)
        idx = self._index.get_indexer(uniques).astype(np.int64)
        missing = idx < 0
        if missing.any():
            if unknown == "oov" and self.oov_token is not None:
                idx[missing] = self.oov_index
            else:
                n_rows = int(missing[inverse].sum())
                hint = "" if self.oov_token is None else " (pass unknown='oov' to map them to the OOV bucket)"
                raise PathwaysInputError(
                    f"column 'code': {n_rows} rows carry {int(missing.sum())} codes unknown to the vocabulary, "
                    f"e.g. {uniques[missing][0]!r}{hint}"
                )
        return idx[inverse.reshape(-1)]

    def encode_column(self, values: pd.Series, unknown: str = "error") -> np.ndarray:
        """:meth:`encode` a column; a Categorical is encoded through its distinct values only."""
        if not isinstance(values.dtype, pd.CategoricalDtype):
            return self.encode(values.astype(str).to_numpy(dtype=object), unknown=unknown)
        codes = values.cat.codes.to_numpy(np.int64)
        used = np.flatnonzero(np.bincount(codes, minlength=len(values.cat.categories)))
        lookup = np.full(len(values.cat.categories), -1, dtype=np.int64)
        lookup[used] = self.encode(values.cat.categories[used].astype(str).to_numpy(dtype=object), unknown=unknown)
        return lookup[codes]

    def decode(self, indices: Iterable[int]) -> np.ndarray:
        """Map indices back to code strings."""
        idx = np.asarray(indices, dtype=np.int64)
        bad = (idx < 0) | (idx >= len(self))
        if bad.any():
            raise PathwaysInputError(f"indices: {int(bad.sum())} out of range [0, {len(self)}), e.g. {idx[bad][0]}")
        return self._codes[idx]

    def rollup(self, fn: Callable[[str], str]) -> tuple["Vocabulary", np.ndarray]:
        """Apply a code transform (e.g. ATC level 3) and return the new vocabulary and old -> new index map.

        Counts are summed over merged codes; the OOV bucket maps to itself.
        """
        new_codes = np.array([c if c == self.oov_token else str(fn(c)) for c in self._codes], dtype=object)
        frame = pd.DataFrame({"code": new_codes, "count": self._counts})
        is_oov = frame["code"] == self.oov_token if self.oov_token is not None else np.zeros(len(frame), bool)
        grouped = frame[~np.asarray(is_oov)].groupby("code", sort=True)["count"].sum()
        oov_count = int(self._counts[np.asarray(is_oov)].sum())
        if self.oov_token is not None:
            vocab = Vocabulary([self.oov_token, *grouped.index], [oov_count, *grouped.to_numpy()], self.oov_token)
        else:
            vocab = Vocabulary(grouped.index.tolist(), grouped.to_numpy())
        return vocab, vocab._index.get_indexer(new_codes).astype(np.int64)

    # -- serialisation ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe representation (for checkpoints)."""
        return {"codes": self._codes.tolist(), "counts": self._counts.tolist(), "oov_token": self.oov_token}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Vocabulary":
        """Inverse of :meth:`to_dict`."""
        missing = {"codes", "counts", "oov_token"} - set(d)
        if missing:
            raise PathwaysInputError(f"vocabulary dict lacks keys {sorted(missing)}")
        return cls(d["codes"], d["counts"], d["oov_token"])
