"""Validation study of the weak-signal screen on repeated simulations with planted weak effects.

Each replicate simulates a cohort with 10 drugs — 3 risky with weak, rare effects (one step of relative incidence
1.3-1.6 over 60 days after each dispensation, drug baseline / 5) and 7 null — and 6 outcomes, then runs
``pathways.signals.detect`` (SCCS with the classic risk-period coding ``exposure_coding="exposed"``, PRR, ROR, IC,
EBGM) and, as a comparison, SCCS with one term per dispensation (``exposure_coding="starts"``). Half of the null
pairs (drawn per replicate) serve as negative controls for empirical calibration; false flags are counted on the
*other* null pairs only. Reports, per method: recall of the risky pairs, share of false flags among null pairs
(q < 0.05 after calibration for SCCS/PRR/ROR; lower-bound rules for IC/EBGM), and 95% interval coverage.

Which truth an interval should cover: the simulator ADDS the effects of overlapping dispensations (outcome rate
``mu s (1 + (RI - 1) k)`` with ``k`` dispensations whose 60-day window is open), and dispensations of a drug come in
refill clusters, so ``k`` is often 2-4. No SCCS design estimates the planted per-dispensation ``RI`` then: the
risk-period coding estimates the rate ratio between risk-period time and other time (about ``1 + (RI - 1) E[k]``),
the starts coding a multiplicative per-dispensation effect (``RI_s ** k`` fitted to ``1 + (RI - 1) k``). For every
risky pair the *design-consistent truth* is computed from the generator's own dispensations and planted steps: the
expected outcome count of every patient and bucket (``pathways.synthetic.sccs.cohort_sccs_expected``) projected on
the same SCCS design (``pathways.models.sccs.sccs_estimand``: the value the estimate converges to with many
patients). Coverage is reported against it (SCCS rows) and, for transparency, against the planted RI (all rows).
Disproportionality compares exposed vs unexposed *patients' periods* (30-day exposure periods, between patients):
no design truth is computed for it.

Real-world shapes (issue 21, ``pathways.synthetic.signal_shapes``): one new-user exposure per patient, with
(1) a uniform exposure time, (2) decades of observation from 1905 and nearly every outcome of the exposed cases in
the risk window (separation), (3) the exposure opening the observation, (4) outcomes that end the observation
(death), (5) very rare outcomes (5-20 cases per drug), (6) a contraindication (an outcome cancels the planned
exposure). Each replicate screens 4 drugs x 2 outcomes (1 risky pair, 7 null pairs) with the classic SCCS (one-day
buckets, the planted 61-day window, every outcome); the contraindication scenario also with the observation
started at the exposure (``observe_from_exposure``), its remedy; the "outcome ends observation" scenario also with
the classic SCCS of the first outcomes and the modified SCCS for event-dependent observation periods
(``event_dependent_observation="auto"``: Farrington et al. 2011, ``pathways.models.sccs.eventdep``), which keeps
first outcomes. A second fit adds the diagnostics: a 30-day
pre-exposure window and a 61-day end-of-observation probe (``pathways.models.sccs.terms``); the share of replicates
where they signal (p < 0.05: pre-exposure RI < 1 for the risky pair, probe RI > 1) is reported. Coverage counts
every risky row with an interval (one-sided ones included), against the planted RI.

Usage: python benchmarks/signals_validation.py [--reps 10] [--patients 20000] [--shape-reps 20] [--skip-planted]
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from pathways.errors import PathwaysDataWarning
from pathways.signals import StudyDesign, detect
from pathways.models.sccs import sccs_estimand
from pathways.synthetic.cohort import simulate_cohort
from pathways.synthetic.sccs import cohort_sccs_expected
from pathways.synthetic.signal_shapes import SCENARIOS, simulate_signal_shape

CODINGS = ("exposed", "starts")


def design_truth(log, truth, design: StudyDesign) -> pd.DataFrame:
    """Design-consistent RI of every (drug, outcome) pair of the outcomes with a planted effect, per coding."""
    rows = []
    for outcome in truth.drug_effects["event"].unique():  # a handful of outcomes, each over all patients at once
        data, expected = cohort_sccs_expected(log, truth, outcome, design.bucket_days)
        for coding in CODINGS:
            est = sccs_estimand(data, expected, design.sccs_windows(), exposure_coding=coding)
            rows.append(pd.DataFrame({"exposure": est["feature"], "outcome": outcome,
                                      "method": f"SCCS ({coding})", "design_ri": est["ri"]}))
    return pd.concat(rows, ignore_index=True)


def replicate(seed: int, n_patients: int) -> pd.DataFrame:
    log, truth = simulate_cohort(n_patients, seed=seed, n_drugs=10, n_outcomes=6, n_strong=0, n_weak=3)
    pairs = truth.signal_pairs  # every (drug, outcome) pair with its true strength
    nulls = pairs[pairs["strength"] == "null"]
    gen = np.random.default_rng(seed + 1000)
    controls = nulls.sample(frac=0.5, random_state=gen.integers(1 << 31))
    control_set = sorted(zip(controls["drug"], controls["event"]))
    # the simulator's adverse events recur independently of each other: SCCS may use every occurrence
    design = StudyDesign(outcomes=truth.outcomes, negative_controls=control_set, outcome_mode="all")
    table = detect(log, design)
    table["method"] = table["method"].replace({"SCCS": "SCCS (exposed)"})
    design.exposure_coding, design.methods = "starts", ("SCCS",)
    starts = detect(log, design).assign(method="SCCS (starts)")
    merged = pd.concat([table, starts], ignore_index=True).merge(
        pairs.rename(columns={"drug": "exposure", "event": "outcome"}), on=["exposure", "outcome"])
    merged = merged.merge(design_truth(log, truth, design), on=["exposure", "outcome", "method"], how="left")
    merged["is_control"] = [(e, o) in set(control_set) for e, o in zip(merged["exposure"], merged["outcome"])]
    merged["seed"] = seed
    return merged


def covered(frame: pd.DataFrame, low: str, high: str, truth: pd.Series) -> float:
    ok = frame[low].notna() & truth.notna()
    return float(((frame[low] <= truth) & (frame[high] >= truth))[ok].mean()) if ok.any() else float("nan")


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for method, part in results.groupby("method", sort=False):
        risky = part[part["strength"] != "null"]
        null = part[(part["strength"] == "null") & ~part["is_control"]]
        cal = part["ci_low_calibrated"].notna().any()
        low, high = ("ci_low_calibrated", "ci_high_calibrated") if cal else ("ci_low", "ci_high")
        one = pd.Series(1.0, index=null.index)
        rows.append({
            "method": method, "replicates": part["seed"].nunique(), "risky pairs": len(risky),
            "recall": risky["flag"].mean(), "null pairs (non-control)": len(null),
            "false flags": null["flag"].mean(),
            "coverage null (RI=1)": covered(null, low, high, one),
            "coverage risky: design truth": covered(risky, low, high, risky["design_ri"]),
            "(uncalibrated)": covered(risky, "ci_low", "ci_high", risky["design_ri"]),
            "coverage risky: planted RI": covered(risky, low, high, risky["max_relative_incidence"]),
            "mean RI risky: planted": risky["max_relative_incidence"].mean(),
            "design truth": risky["design_ri"].mean(),
            "estimate": risky["estimate"].mean(),
            "calibrated": bool(cal),
        })
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame) -> str:
    """A markdown table without extra dependencies (NaN shown as an en dash)."""
    def cell(v: object) -> str:
        if isinstance(v, float):
            return "–" if np.isnan(v) else f"{v:.3f}"
        return str(v)

    cells = [[cell(v) for v in row] for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * frame.shape[1]]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells])


def shape_replicate(scenario: str, seed: int) -> tuple[pd.DataFrame, dict]:
    """One data set of ``scenario``: SCCS rows merged with the truth, and the diagnostics' signals."""
    log, truth = simulate_signal_shape(scenario, seed=seed)
    base = {"outcomes": ["AE", "NE"], "risk_window": (0, 61), "bucket_days": 1.0, "methods": ("SCCS",),
            "outcome_mode": "all"}
    runs = {"SCCS": detect(log, **base)}
    if scenario == "contraindication":
        runs["SCCS from first exposure"] = detect(log, **base, observe_from_exposure=True)
    if scenario == "outcome ends observation":  # the modified SCCS keeps first outcomes: the classic one beside it
        runs["SCCS first outcome"] = detect(log, **{**base, "outcome_mode": "first"})
        runs["SCCS event-dependent observation"] = detect(log, **base, event_dependent_observation="auto")
    rows = pd.concat([t.assign(method=m) for m, t in runs.items()], ignore_index=True).merge(
        truth, on=["exposure", "outcome"])
    terms = pd.DataFrame(detect(log, **base, pre_exposure_days=30, end_of_observation_days=61).attrs["sccs_terms"])
    pre = terms[(terms["feature"] == "RISK [pre-exposure]") & (terms["outcome"] == "AE")]
    probe = terms[(terms["feature"] == "end of observation") & (terms["outcome"] == "AE")]
    diag = {"pre-exposure RI < 1": bool(((pre["ri"] < 1) & (pre["p"] < 0.05)).any()),
            "end-of-observation RI > 1": bool(((probe["ri"] > 1) & (probe["p"] < 0.05)).any())}
    return rows.assign(scenario=scenario, seed=seed), diag


def shapes_table(reps: int) -> pd.DataFrame:
    """Per scenario and method: estimate, coverage, recall, false flags, statuses, diagnostics."""
    out = []
    for scenario in SCENARIOS:
        parts, diags = zip(*(shape_replicate(scenario, 100 + seed) for seed in range(reps)))
        res, diag = pd.concat(parts, ignore_index=True), pd.DataFrame(list(diags))
        for method, part in res.groupby("method", sort=False):
            risky, null = part[part["ri"] != 1], part[part["ri"] == 1]
            has_ci = risky["ci_low"].notna()
            cover = ((risky["ci_low"] <= risky["ri"]) & (risky["ci_high"] >= risky["ri"]))[has_ci]
            n_null = null["ci_low"].notna()
            out.append({
                "scenario": scenario, "method": method, "replicates": reps, "planted RI": risky["ri"].iloc[0],
                "median estimate": risky["estimate"].median(), "coverage risky": cover.mean(),
                "risky with interval": int(has_ci.sum()), "separated risky": (risky["status"] == "separated").mean(),
                "recall": risky["flag"].mean(), "null pairs": len(null), "false flags": null["flag"].mean(),
                "coverage null": ((null["ci_low"] <= 1) & (null["ci_high"] >= 1))[n_null].mean(),
                "median cases (risky)": risky["n_exposed_events"].median(),
                "rows without status": int(part["status"].isna().sum()),
                "statuses": "; ".join(f"{k} {v}" for k, v in part["status"].value_counts().items()),
                "pre-exposure signal": diag["pre-exposure RI < 1"].mean(),
                "end-of-observation signal": diag["end-of-observation RI > 1"].mean()})
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--patients", type=int, default=20000)
    parser.add_argument("--shape-reps", type=int, default=20)
    parser.add_argument("--skip-planted", action="store_true", help="only the real-world shapes")
    args = parser.parse_args()
    start, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PathwaysDataWarning)
        shapes = shapes_table(args.shape_reps)
    print(f"real-world shapes (issue 21): {args.shape_reps} replicates per scenario, "
          f"{time.perf_counter() - start:.0f} s wall, {time.process_time() - cpu:.0f} CPU s; targets: coverage >= 0.90 "
          f"where an interval exists, recall >= 0.90, false flags <= 0.05, no row without a status\n")
    print(markdown(shapes))
    if args.skip_planted:
        return
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PathwaysDataWarning)
        results = pd.concat([replicate(seed, args.patients) for seed in range(args.reps)], ignore_index=True)
    table = summarise(results)
    print(f"signals validation: {args.reps} replicates x {args.patients} patients, "
          f"{time.perf_counter() - start:.0f} s; targets: recall >= 0.90, false flags <= 0.05, coverage >= 0.90\n")
    print(markdown(table))
    sccs = results[results["method"].str.startswith("SCCS") & (results["strength"] != "null")]
    z = (np.log(sccs["estimate"]) - np.log(sccs["design_ri"])) / sccs["se_log"]
    print("\nSCCS risky pairs, (log estimate - log design truth) / Wald s.e., per coding: "
          + "; ".join(f"{m}: mean {g.mean():+.2f}, sd {g.std():.2f}" for m, g in z.groupby(sccs["method"])))


if __name__ == "__main__":
    main()
