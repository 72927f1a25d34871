"""Code-set matching: which vocabulary codes and which events belong to a code set (prefix = hierarchy roll-up)."""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from pathways.data import EventLog, Vocabulary
from pathways.errors import PathwaysInputError


def match_codes(vocab: Vocabulary, codes: Iterable[str] | None, prefix: bool = True) -> np.ndarray:
    """Boolean mask over the vocabulary: codes equal to (or, with ``prefix``, starting with) one of ``codes``.

    ``None`` matches every code. Prefix matching follows code hierarchies: ``"CIM10:C50"`` matches
    ``"CIM10:C509"`` and ``"ATC:N02"`` matches ``"ATC:N02BE01"``.
    """
    all_codes = pd.Series(vocab.codes.astype(str))
    if codes is None:
        return np.ones(len(vocab), dtype=bool)
    wanted = [str(c) for c in ([codes] if isinstance(codes, str) else codes)]
    if not wanted:
        raise PathwaysInputError("codes: empty code set")
    if prefix:
        return all_codes.str.startswith(tuple(wanted)).to_numpy(dtype=bool)
    return all_codes.isin(wanted).to_numpy(dtype=bool)


def event_mask(log: EventLog, codes: Iterable[str] | None, *, prefix: bool = True,
               categories: Iterable[str] | None = None) -> np.ndarray:
    """Boolean mask over events whose code matches ``codes`` and whose category is in ``categories``."""
    mask = match_codes(log.vocab, codes, prefix)[log.code]
    if categories is not None:
        cats = [categories] if isinstance(categories, str) else list(categories)
        mask &= np.asarray(pd.Series(log.category).isin(cats), dtype=bool)
    return mask
