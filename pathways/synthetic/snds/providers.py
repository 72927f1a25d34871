"""Health professionals, pharmacies and hospitals of a synthetic SNDS: counts scaled on the population, each
patient's usual providers (a hash of the global patient index: the same whoever writes the chunk), and the
planted fraud actors (over-prescribing prescribers, fraudulent pharmacies), drawn once from the seed."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Fraud patterns of pharmacies.
PHARMACY_FRAUD = ("no_prescription", "inflated_quantity", "impossible_dates")


def _hash(index: np.ndarray, salt: int, modulo: int) -> np.ndarray:
    """Deterministic spread of global indices over ``modulo`` buckets (Knuth multiplicative hash)."""
    x = (np.asarray(index, dtype=np.uint64) + np.uint64(salt)) * np.uint64(2654435761)
    return ((x >> np.uint64(7)) % np.uint64(modulo)).astype(np.int64)


@dataclass(frozen=True)
class Providers:
    """Provider pools. Ids: GPs ``1xxxxxxx``, specialists ``2xxxxxxx``, pharmacies ``3xxxxxxx`` (8-character
    ``PFS_*_NUM``), hospitals 9-digit FINESS ``91xxxxxxx`` (``ETA_NUM`` / ``ETB_PRE_FIN``)."""

    n_gp: int
    n_specialists: int
    n_pharmacies: int
    n_hospitals: int
    over_prescribers: np.ndarray
    fraud_pharmacies: dict[str, np.ndarray]

    @classmethod
    def draw(cls, gen: np.random.Generator, n_patients: int) -> Providers:
        n_gp, n_spe = max(8, math.ceil(n_patients / 1000)), max(8, math.ceil(n_patients / 800))
        n_pha, n_hos = max(6, math.ceil(n_patients / 2500)), max(3, math.ceil(n_patients / 40000))
        over = np.sort(gen.choice(n_gp, max(1, round(0.01 * n_gp)), replace=False))
        per_kind = max(1, round(0.01 * n_pha))
        picked = gen.choice(n_pha, per_kind * len(PHARMACY_FRAUD), replace=False)
        fraud = {k: np.sort(picked[i * per_kind:(i + 1) * per_kind]) for i, k in enumerate(PHARMACY_FRAUD)}
        return cls(n_gp, n_spe, n_pha, n_hos, over, fraud)

    # usual providers of each patient (global index)
    def gp(self, index: np.ndarray) -> np.ndarray:
        return _hash(index, 11, self.n_gp)

    def specialist(self, index: np.ndarray, pathology: np.ndarray | int) -> np.ndarray:
        return _hash(np.asarray(index) * 16 + np.asarray(pathology) + 1, 23, self.n_specialists)

    def pharmacy(self, index: np.ndarray) -> np.ndarray:
        return _hash(index, 37, self.n_pharmacies)

    def hospital(self, index: np.ndarray) -> np.ndarray:
        return _hash(index, 53, self.n_hospitals)

    def pharmacy_fraud(self, pharmacy: np.ndarray) -> np.ndarray:
        """Fraud pattern index (in :data:`PHARMACY_FRAUD`) of each pharmacy, -1 for honest ones."""
        out = np.full(np.shape(pharmacy), -1, dtype=np.int64)
        for i, kind in enumerate(PHARMACY_FRAUD):
            out[np.isin(pharmacy, self.fraud_pharmacies[kind])] = i
        return out

    def actors(self) -> pd.DataFrame:
        """The planted fraud providers: actor kind, id, pattern."""
        rows = [("prescriber", prescriber_id(np.array([g]))[0], "over_prescribing") for g in self.over_prescribers]
        for kind, ids in self.fraud_pharmacies.items():
            rows += [("pharmacy", pharmacy_id(np.array([p]))[0], kind) for p in ids]
        return pd.DataFrame(rows, columns=["actor", "id", "pattern"])


def prescriber_id(index: np.ndarray, n_gp: int | None = None) -> np.ndarray:
    """PFS number of prescribers: index < ``n_gp`` (or all when None) are GPs, the others specialists.

    Examples
    --------
    >>> prescriber_id(np.array([0, 12]), n_gp=10).tolist()
    ['10000000', '20000002']
    """
    index = np.asarray(index, dtype=np.int64)
    if n_gp is None:
        return np.char.add("1", np.char.zfill(index.astype(str), 7)).astype(object)
    spe = index >= n_gp
    num = np.where(spe, index - n_gp, index)
    return np.char.add(np.where(spe, "2", "1"), np.char.zfill(num.astype(str), 7)).astype(object)


def pharmacy_id(index: np.ndarray) -> np.ndarray:
    return np.char.add("3", np.char.zfill(np.asarray(index, dtype=np.int64).astype(str), 7)).astype(object)


def hospital_id(index: np.ndarray) -> np.ndarray:
    """9-digit FINESS numbers (as integers: ``ETA_NUM`` of T_MCOaaB/C is numeric)."""
    return 910000000 + np.asarray(index, dtype=np.int64)


__all__ = ["PHARMACY_FRAUD", "Providers", "hospital_id", "pharmacy_id", "prescriber_id"]
