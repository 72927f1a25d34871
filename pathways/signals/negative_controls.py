"""A curated starter list of negative-control (ATC class, ICD-10 outcome) pairs for calibration on SNDS-coded data.

Each row of ``signals/data/negative_controls.csv`` pairs a drug class (ATC prefix) with an outcome (ICD-10 prefix)
that has no known or plausible causal link with it, with the reasoning. The outcomes are chosen, as in OHDSI
practice (Voss et al. 2017), among conditions without pharmacological pathway and without link to the indication
(impacted cerumen, ingrowing nail, viral warts, presbyopia, myopia); for every class the outcomes it is known or
suspected to cause (bleeding, falls, fractures, hyponatraemia, ...) are deliberately left out. It is a starting
point to review, not a validated reference set: pass your own list (``path`` or explicit pairs) to override it.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Iterable

import pandas as pd

from pathways.errors import PathwaysInputError

__all__ = ["default_negative_controls", "load_negative_controls"]

_COLUMNS = ("atc", "icd10", "drug_class", "outcome", "reasoning")


def load_negative_controls(path: str | Path | None = None) -> pd.DataFrame:
    """The curated list (or the CSV at ``path``, same columns: ``atc, icd10`` and optionally the others).

    Examples
    --------
    >>> table = load_negative_controls()
    >>> {"atc", "icd10", "reasoning"} <= set(table.columns), len(table) >= 20
    (True, True)
    """
    if path is None:
        with resources.files("pathways.signals").joinpath("data/negative_controls.csv").open("r") as handle:
            table = pd.read_csv(handle, dtype=str)
    else:
        table = pd.read_csv(path, dtype=str)
    missing = [c for c in ("atc", "icd10") if c not in table.columns]
    if missing:
        raise PathwaysInputError(f"negative controls file: missing column(s) {missing} (expected {_COLUMNS})")
    return table


def default_negative_controls(drugs: Iterable[str], outcomes: Iterable[str],
                              controls: pd.DataFrame | str | Path | None = None) -> list[tuple[str, str]]:
    """(drug code, outcome code) pairs of the data matching a curated (ATC prefix, ICD-10 prefix) control.

    Parameters
    ----------
    drugs, outcomes : the codes present in the data (e.g. ``C09AA05``, ``H612``).
    controls : the control table (default: :func:`load_negative_controls`) or a path to one.

    Examples
    --------
    >>> default_negative_controls(["C09AA05", "C10AA05", "N02BE01"], ["H612", "K922"])
    [('C09AA05', 'H612'), ('C10AA05', 'H612')]
    """
    table = controls if isinstance(controls, pd.DataFrame) else load_negative_controls(controls)
    drugs, outcomes = list(map(str, drugs)), list(map(str, outcomes))
    pairs: list[tuple[str, str]] = []
    for atc, icd in zip(table["atc"].astype(str), table["icd10"].astype(str)):  # a few dozen rows
        pairs += [(d, o) for d in drugs if d.startswith(atc) for o in outcomes if o.startswith(icd)]
    return list(dict.fromkeys(pairs))  # unique, in the order of the list
