"""The embedded nomenclature extract (``pathways/synthetic/data/snds_*.csv``, derived from the shared SNDS
nomenclatures, Licence Ouverte 2.0): drugs (ATC with CIP13-like presentation codes, box size and price), ICD-10 and
CCAM codes, indexed for the generator."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from pathways.synthetic.snds.model import MISUSE, PATHOLOGIES


def _read(name: str) -> pd.DataFrame:
    with resources.files("pathways.synthetic.data").joinpath(name).open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype={"cip13": np.int64, "atc": str, "icd10": str, "ccam": str})


class Catalogue:
    """Codes of the generator, as arrays (row order of the CSV files)."""

    def __init__(self) -> None:
        self.drugs = _read("snds_drugs.csv")
        self.icd10 = _read("snds_icd10.csv")
        self.ccam = _read("snds_ccam.csv")
        self.cip = self.drugs["cip13"].to_numpy(np.int64)
        self.atc = self.drugs["atc"].to_numpy(object)
        self.units = self.drugs["units"].to_numpy(np.int64)
        self.price = self.drugs["price"].to_numpy(float)
        self.ccam_codes = self.ccam["ccam"].to_numpy(object)
        self.ccam_price = self.ccam["price"].to_numpy(float)
        role = self.drugs["role"].to_numpy(object)
        monthly = self.units <= 30
        self.acute = np.flatnonzero(role == "acute")
        #: per pathology: (monthly CIP rows, 3-month CIP rows), aligned on the pathology's tracer list
        self.tracers = [(self._rows(p.drugs, monthly), self._rows(p.drugs, ~monthly)) for p in PATHOLOGIES]
        self.misuse = {c: self._rows(atcs, monthly) for c, atcs in MISUSE.items()}
        self.path_acts = [self.ccam_index(p.acts) for p in PATHOLOGIES]

    def _rows(self, atcs: tuple[str, ...], mask: np.ndarray) -> np.ndarray:
        """Row of each ATC among the rows in ``mask`` (its first such presentation), in the order given."""
        out = []
        for a in atcs:
            rows = np.flatnonzero((self.atc == a) & mask)
            out.append(rows[0] if rows.size else np.flatnonzero(self.atc == a)[0])
        return np.array(out, dtype=np.int64)

    def ccam_index(self, codes: tuple[str, ...] | list[str]) -> np.ndarray:
        pos = {c: i for i, c in enumerate(self.ccam_codes)}
        return np.array([pos[c] for c in codes], dtype=np.int64)

    def cip_to_atc(self) -> pd.DataFrame:
        """``IR_PHA_R``-style mapping (``PHA_CIP_C13``, ``PHA_ATC_C07``, ``PHA_NOM_PA``) of every presentation."""
        return pd.DataFrame({"PHA_CIP_C13": self.cip.astype(str), "PHA_ATC_C07": self.atc.astype(str),
                             "PHA_NOM_PA": self.drugs["label"].astype(str).to_numpy()})


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """The (cached) catalogue."""
    return Catalogue()


__all__ = ["Catalogue", "catalogue"]
