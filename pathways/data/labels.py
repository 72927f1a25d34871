"""Readable names of codes: ATC, ICD-10 and CCAM nomenclatures shipped with the package, OMOP concept names, and
labels a caller supplies (e.g. the simulator's English catalogue).

A report reads better with "J069 acute upper respiratory infection -> C03CA01 furosemide" than with bare codes.
:class:`CodeLabels` looks each code up, most specific source first:

1. labels given explicitly (a mapping, an OMOP concept table through :func:`omop_concept_labels`), by the full code
   (``"ATC:C03CA01"``, ``"ICD10CM:J06.9"``) then by the code without its namespace prefix (``"C03CA01"``);
2. the nomenclature named by the prefix (``ATC:``, ``CIM10:``/``ICD10:``/``ICD10CM:``, ``CCAM:``), or, for a bare
   code, the first nomenclature whose shape it has and which holds it: CCAM ``AAAA000``, then ICD-10 ``A00`` to
   ``A00000``, then ATC ``A00AA00`` and its levels (ICD-10 dots are dropped).

The nomenclatures (French labels, see ``pathways/data/nomenclatures/README.md`` for sources and licence) are read
once, lazily, from gzip CSV files; lookups run once per distinct code (a vocabulary), never per event.
"""
from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pathways.errors import PathwaysInputError

__all__ = ["NOMENCLATURES", "CodeLabels", "omop_concept_labels"]

#: nomenclature name -> shipped file
NOMENCLATURES = {"atc": "atc.csv.gz", "icd10": "icd10.csv.gz", "ccam": "ccam.csv.gz"}
# namespace prefixes (upper-cased) -> nomenclature; other prefixes only match explicit labels
_PREFIXES = {"ATC": "atc", "CIM10": "icd10", "CIM": "icd10", "ICD10": "icd10", "ICD10CM": "icd10", "ICD-10": "icd10",
             "CCAM": "ccam"}
# shapes of bare codes, tried in this order: a bare 3-character code (``A04``) is far more often an ICD-10
# category than an ATC level-2 group, so ICD-10 is tried before ATC (7-character ATC codes never look like ICD-10)
_SHAPES = (("ccam", re.compile(r"^[A-Z]{4}\d{3}$")),
           ("icd10", re.compile(r"^[A-Z]\d{2}[0-9A-Z]{0,3}$")),
           ("atc", re.compile(r"^[A-Z]\d{2}([A-Z]([A-Z](\d{2})?)?)?$")))  # bare: level 2 and finer


@functools.cache
def _nomenclature(name: str) -> dict[str, str]:
    """code -> label of one shipped nomenclature (read once per process)."""
    with resources.files("pathways.data").joinpath("nomenclatures", NOMENCLATURES[name]).open("rb") as handle:
        frame = pd.read_csv(handle, compression="gzip", dtype=str, keep_default_na=False)
    labels = frame["label"].to_numpy(dtype=object)
    # OPENMEDIC writes ATC labels in capitals; lower-case them so they read like the others
    shouting = np.array([lab.isupper() for lab in labels], dtype=bool)
    labels[shouting] = [lab.lower() for lab in labels[shouting]]
    return dict(zip(frame["code"].tolist(), labels.tolist()))


def _split(code: str) -> tuple[str, str]:
    """(prefix, bare code): ``"ATC:C03CA01"`` -> ("ATC", "C03CA01"); no prefix -> ("", code)."""
    prefix, sep, bare = code.partition(":")
    return (prefix, bare) if sep else ("", code)


class CodeLabels:
    """Lookup of readable code labels (see the module docstring for the order of sources).

    Parameters
    ----------
    labels : explicit code -> label, consulted first (full code, then the code without its prefix).
    nomenclatures : also consult the shipped ATC, ICD-10 and CCAM nomenclatures.

    Examples
    --------
    >>> labels = CodeLabels({"C03CA01": "furosemide"})
    >>> labels.describe(["ATC:C03CA01", "CIM10:I10", "XYZ"])
    ['ATC:C03CA01 furosemide', 'CIM10:I10 Hypertension essentielle (primitive)', 'XYZ']
    >>> labels.label(["CCAM:DEQP003", "nope"]).tolist()
    ['Électrocardiographie sur au moins 12 dérivations', '']
    """

    def __init__(self, labels: Mapping[Any, Any] | None = None, *, nomenclatures: bool = True):
        self.labels = {str(k): str(v) for k, v in (labels or {}).items() if v is not None and str(v) != ""}
        self.nomenclatures = bool(nomenclatures)

    def with_labels(self, labels: Mapping[Any, Any]) -> CodeLabels:
        """A copy where ``labels`` take precedence over the current explicit labels."""
        return CodeLabels({**self.labels, **{str(k): v for k, v in labels.items()}}, nomenclatures=self.nomenclatures)

    def _one(self, code: str) -> str:
        if code in self.labels:
            return self.labels[code]
        prefix, bare = _split(code)
        if bare in self.labels:
            return self.labels[bare]
        if not self.nomenclatures:
            return ""
        key = bare.replace(".", "")  # ICD-10 with a dot (OMOP's ICD10CM) -> the SNDS spelling
        if prefix:
            name = _PREFIXES.get(prefix.upper())
            return _nomenclature(name).get(key, "") if name else ""
        for name, shape in _SHAPES:
            if shape.match(key) and key in _nomenclature(name):
                return _nomenclature(name)[key]
        return ""

    def label(self, codes: Iterable[Any]) -> np.ndarray:
        """Label of each code (object array; ``""`` when unknown). One lookup per distinct code."""
        values = pd.Series(list(codes) if not isinstance(codes, (np.ndarray, pd.Series)) else codes, dtype=object)
        values = values.astype(str)
        distinct = pd.unique(values)
        found = {c: self._one(c) for c in distinct}
        return values.map(found).to_numpy(dtype=object)

    def describe(self, codes: Iterable[Any], max_length: int | None = None) -> list[str]:
        """``"<code> <label>"`` per code (the code alone when unknown); labels cut to ``max_length`` characters."""
        values = [str(c) for c in codes]
        out = []
        for code, lab in zip(values, self.label(values)):
            if max_length is not None and len(lab) > max_length:
                lab = lab[: max(int(max_length) - 1, 1)].rstrip() + "…"
            out.append(f"{code} {lab}" if lab else code)
        return out


def omop_concept_labels(concept: pd.DataFrame | str | os.PathLike, *, codes: Iterable[str] | None = None
                        ) -> dict[str, str]:
    """Concept names of an OMOP ``concept`` table, keyed like :func:`pathways.io.read_omop` codes.

    Keys are ``"<vocabulary_id>:<concept_code>"`` and the concept id as text (codes when the concept table was
    absent at read time).

    Parameters
    ----------
    concept : the table (DataFrame with ``concept_id``, ``concept_name``, ``vocabulary_id``, ``concept_code``) or
        a CSV (comma or tab separated) / parquet file of it.
    codes : keep only these keys (e.g. a model's vocabulary), so a full vocabulary table yields a small mapping.

    Examples
    --------
    >>> concept = pd.DataFrame({"concept_id": [1], "concept_name": ["Furosemide"], "vocabulary_id": ["RxNorm"],
    ...                         "concept_code": ["4603"]})
    >>> omop_concept_labels(concept)
    {'RxNorm:4603': 'Furosemide', '1': 'Furosemide'}
    """
    frame = concept if isinstance(concept, pd.DataFrame) else _read_concept(Path(concept))
    need = ("concept_id", "concept_name", "vocabulary_id", "concept_code")
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise PathwaysInputError(f"argument 'concept': missing column(s) {missing} (columns: {list(frame.columns)})")
    names = frame["concept_name"].astype(str).to_numpy(dtype=object)
    keyed = frame["vocabulary_id"].astype(str) + ":" + frame["concept_code"].astype(str)
    ids = pd.to_numeric(frame["concept_id"], errors="coerce").astype("Int64").astype(str)
    out = dict(zip(keyed.tolist(), names.tolist()))
    out.update(zip(ids.tolist(), names.tolist()))
    out.pop("<NA>", None)
    if codes is not None:
        wanted = {str(c) for c in codes}
        out = {k: v for k, v in out.items() if k in wanted}
    return out


def _read_concept(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise PathwaysInputError(f"argument 'concept': no file at {path}")
    if path.suffix == ".parquet":
        return pd.read_parquet(path, columns=["concept_id", "concept_name", "vocabulary_id", "concept_code"])
    with path.open(encoding="utf-8") as handle:
        header = handle.readline()
    sep = "\t" if "\t" in header else ","
    return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, quoting=3 if sep == "\t" else 0,
                       usecols=lambda c: c in ("concept_id", "concept_name", "vocabulary_id", "concept_code"))
