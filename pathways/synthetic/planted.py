"""What is planted in a synthetic cohort on top of the Hawkes process: drug -> adverse-event steps (their
children events) and anomalous patients (abnormal dispensation frequency, doctor shopping)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from pathways.synthetic.codes import Catalogue


def draw_effects(gen: np.random.Generator, codes: Catalogue, n_strong: int, n_weak: int) -> pd.DataFrame:
    """Planted drug -> outcome steps: strong drugs (two steps), weak rare drugs (one step); one outcome each."""
    drugs = gen.permutation(codes.codes[codes.drugs])
    rows = []
    for k, drug in enumerate(drugs[:n_strong + n_weak]):
        event = codes.codes[gen.choice(codes.outcomes)]
        if k < n_strong:
            lag = float(gen.choice([14.0, 30.0]))
            rows.append((drug, event, 0.0, lag, float(gen.uniform(2.5, 4.0)), "strong"))
            rows.append((drug, event, lag, 3 * lag, float(gen.uniform(1.3, 2.0)), "strong"))
        else:
            rows.append((drug, event, 0.0, 60.0, float(gen.uniform(1.3, 1.6)), "weak"))
    return pd.DataFrame(rows, columns=["drug", "event", "lag_start", "lag_end", "relative_incidence", "strength"])


def draw_anomalies(gen: np.random.Generator, n: int, fraction: float, kinds: Sequence[str]) -> np.ndarray:
    """Anomaly kind of every patient (``""`` for the normal ones): a share ``fraction``, kinds drawn uniformly."""
    out = np.full(n, "", dtype=object)
    anomalous = gen.random(n) < fraction
    if anomalous.any():
        out[anomalous] = np.asarray(list(kinds), dtype=object)[gen.integers(0, len(kinds), int(anomalous.sum()))]
    return out


def adverse_events(gen: np.random.Generator, patient: np.ndarray, time: np.ndarray, code: np.ndarray,
                    effects: pd.DataFrame, codes: Catalogue, mu: np.ndarray, scale: np.ndarray,
                    end: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Children of the step kernels: Poisson(height * width) outcomes per dispensation, uniform in the lag window.

    One vectorised draw per planted step (a handful), over all dispensations of its drug at once.
    """
    out_p, out_t, out_c = [np.zeros(0, np.int64)], [np.zeros(0)], [np.zeros(0, np.int64)]
    for drug, event, lo, hi, ri in effects[["drug", "event", "lag_start", "lag_end", "relative_incidence"]].itertuples(
            index=False):
        j, i = codes.index([drug, event])
        parents = np.flatnonzero(code == j)
        height = mu[i] * scale[patient[parents]] * (ri - 1.0)
        n_child = gen.poisson(height * (hi - lo))
        child_p = np.repeat(patient[parents], n_child)
        child_t = np.repeat(time[parents], n_child) + gen.uniform(lo, hi, int(n_child.sum()))
        keep = child_t <= end[child_p]  # the intensity is exact inside the window; later children are censored
        out_p.append(child_p[keep]), out_t.append(child_t[keep]), out_c.append(np.full(int(keep.sum()), i))
    return np.concatenate(out_p), np.concatenate(out_t), np.concatenate(out_c).astype(np.int64)



def prescribers(gen: np.random.Generator, patient: np.ndarray, kinds: np.ndarray, n_patients: int) -> np.ndarray:
    """Prescriber id of every dispensation.

    Each patient has a pool of prescribers ``(base + k * stride) mod n_prescribers`` (distinct for k < 16): usually
    a GP (k = 0, 85 % of dispensations) and 1-3 specialists; patients with a "prescribers" anomaly (doctor
    shopping) draw every dispensation uniformly from a pool of 8-15 prescribers.
    """
    n_prescribers = max(64, n_patients // 20)
    stride = n_prescribers // 16
    base = gen.integers(0, n_prescribers, n_patients)
    n_specialists = gen.integers(1, 4, n_patients)
    k = np.where(gen.random(patient.size) < 0.85, 0,
                 1 + np.floor(gen.random(patient.size) * n_specialists[patient]).astype(np.int64))
    shopper = kinds[patient] == "prescribers"
    if shopper.any():
        pool = gen.integers(8, 16, n_patients)
        k[shopper] = np.floor(gen.random(int(shopper.sum())) * pool[patient[shopper]]).astype(np.int64)
    return (base[patient] + k * stride) % n_prescribers


__all__ = ["adverse_events", "draw_anomalies", "draw_effects", "prescribers"]
