"""The ground truth of a synthetic cohort: everything that generated it, aligned with the log's vocabulary."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from pathways.data.tables import factors_frame
from pathways.errors import PathwaysInputError
from pathways.synthetic.codes import Catalogue


@dataclass
class Truth:
    """Everything that generated a :func:`simulate_cohort` draw, aligned with ``log.vocab`` (index = code index).

    Attributes
    ----------
    codes, categories, labels : (D,) code strings, categories and human labels in vocabulary order.
    baseline : (D,) population baseline intensity per day (``mu_i``; 0 for the death code).
    adjacency : (D, D) total excitation ``adjacency[i, j]`` = L1 norm of ``phi_ij`` (effect of j on i), including
        the planted step kernels at the population baseline (``mu_i (RI - 1) (lag_end - lag_start)`` summed).
    kernel : ``"exp"`` or ``"sumexp"``: shape of the Hawkes kernels between drugs, diagnoses, acts and stays.
    kernel_adjacency : (K, D, D) L1 norms of the exponential components (K = 1 for ``"exp"``).
    decays : (D, D) decay of each exponential kernel (``"exp"``) or (K,) decays of the components (``"sumexp"``).
    drug_effects : one row per planted step: ``drug``, ``event``, ``lag_start``, ``lag_end`` (days after the
        dispensation), ``relative_incidence``, ``strength`` (``"strong"``/``"weak"``).
    signal_pairs : every (drug, outcome) pair with ``strength`` in strong / weak / null and ``max_relative_incidence``
        (1 for null pairs): the reference set for signal-detection validation.
    risky_drugs, weak_drugs, null_drugs, outcomes : code lists.
    patient_scale : (P,) frailty multiplier ``s_p`` of every patient's baselines.
    anomalous : (P,) bool; anomaly_kind : (P,) ``""``, ``"frequency"`` or ``"prescribers"``.
    anomaly_codes : drug codes whose baseline is multiplied by ``anomaly_strength`` in "frequency" anomalies.
    anomaly_strength : that multiplier.
    """

    codes: np.ndarray
    categories: np.ndarray
    labels: np.ndarray
    baseline: np.ndarray
    adjacency: np.ndarray
    kernel: str
    kernel_adjacency: np.ndarray
    decays: np.ndarray
    drug_effects: pd.DataFrame
    signal_pairs: pd.DataFrame
    risky_drugs: list[str]
    weak_drugs: list[str]
    null_drugs: list[str]
    outcomes: list[str]
    patient_scale: np.ndarray
    anomalous: np.ndarray
    anomaly_kind: np.ndarray
    anomaly_codes: list[str]
    anomaly_strength: float
    params: dict[str, Any] = field(default_factory=dict)

    def index(self, codes: str | Sequence[str]) -> np.ndarray:
        """Vocabulary index of one or several codes."""
        table = {c: i for i, c in enumerate(self.codes)}
        wanted = [codes] if isinstance(codes, str) else list(codes)
        missing = [c for c in wanted if c not in table]
        if missing:
            raise PathwaysInputError(f"codes: {len(missing)} codes not in this cohort, e.g. {missing[0]!r}")
        return np.array([table[c] for c in wanted], dtype=np.int64)

    def baseline_matrix(self) -> np.ndarray:
        """(P, D) baseline of every patient: ``mu_i * s_p * m_pi`` (frailty and anomaly multipliers included)."""
        out = self.patient_scale[:, None] * self.baseline[None, :]
        if self.anomaly_codes:
            rows = np.flatnonzero(self.anomaly_kind == "frequency")
            out[np.ix_(rows, self.index(self.anomaly_codes))] *= self.anomaly_strength
        return out

    def relative_incidence(self, drug: str, event: str, lags: Sequence[float] | np.ndarray) -> np.ndarray:
        """True relative incidence of ``event`` at the given lags (days) after one isolated dispensation of ``drug``."""
        lags = np.asarray(lags, dtype=np.float64)
        out = np.ones_like(lags)
        rows = self.drug_effects[(self.drug_effects["drug"] == drug) & (self.drug_effects["event"] == event)]
        for lo, hi, ri in rows[["lag_start", "lag_end", "relative_incidence"]].itertuples(index=False):
            out += np.where((lags >= lo) & (lags < hi), ri - 1.0, 0.0)
        return out

    def factors(self) -> pd.DataFrame:
        """The truth in the factors-table shape: every non-zero ``adjacency`` entry (``lag_days`` NaN = whole
        kernel) and every planted step (``lag_days`` = step start, ``effect`` = relative incidence)."""
        tgt, src = np.nonzero(self.adjacency)
        steps = self.drug_effects
        return pd.concat(
            [
                factors_frame(self.codes[src], self.codes[tgt], self.adjacency[tgt, src], method="truth"),
                factors_frame(steps["drug"], steps["event"], steps["relative_incidence"], method="truth_ri",
                              lag_days=steps["lag_start"]),
            ],
            ignore_index=True,
        )


def make_truth(codes: Catalogue, mu: np.ndarray, exp_adj: np.ndarray, kernel: str, decays: np.ndarray,
                effects: pd.DataFrame, scale: np.ndarray, kinds: np.ndarray, anomaly_codes: list[str],
                anomaly_strength: float) -> Truth:
    """The Truth of a draw: total adjacency (exponential part + planted steps at the population baseline) and the
    signal reference set (every drug x outcome pair, null when nothing was planted)."""
    total = exp_adj.sum(axis=0).copy()
    src, tgt = codes.index(effects["drug"]), codes.index(effects["event"])
    width = (effects["lag_end"] - effects["lag_start"]).to_numpy()
    np.add.at(total, (tgt, src), mu[tgt] * (effects["relative_incidence"].to_numpy() - 1.0) * width)
    drug_codes = codes.codes[codes.drugs]
    strong = sorted(effects.loc[effects["strength"] == "strong", "drug"].unique())
    weak = sorted(effects.loc[effects["strength"] == "weak", "drug"].unique())
    pairs = pd.MultiIndex.from_product([drug_codes, codes.codes[codes.outcomes]], names=["drug", "event"])
    best = effects.groupby(["drug", "event"]).agg(max_relative_incidence=("relative_incidence", "max"),
                                                  strength=("strength", "first"))
    signal_pairs = best.reindex(pairs).reset_index()
    signal_pairs["strength"] = signal_pairs["strength"].fillna("null")
    signal_pairs["max_relative_incidence"] = signal_pairs["max_relative_incidence"].fillna(1.0)
    return Truth(
        codes=codes.codes.copy(), categories=codes.categories.copy(), labels=codes.labels.copy(), baseline=mu,
        adjacency=total, kernel=kernel, kernel_adjacency=exp_adj, decays=decays, drug_effects=effects,
        signal_pairs=signal_pairs, risky_drugs=strong + weak, weak_drugs=weak,
        null_drugs=sorted(set(drug_codes) - set(strong) - set(weak)), outcomes=list(codes.codes[codes.outcomes]),
        patient_scale=scale, anomalous=kinds != "", anomaly_kind=kinds, anomaly_codes=anomaly_codes,
        anomaly_strength=float(anomaly_strength),
    )


__all__ = ["Truth", "make_truth"]
