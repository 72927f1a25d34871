"""Validity and scale of the comparative cohort study (pathways.studies).

Validity: ``--reps`` simulated studies (``pathways.studies.simulate.simulate_study``) with a planted hazard ratio
cycling through 1, 1.5 and 2 and confounding by indication through age and five comorbidities (they raise both the
chance of the target drug and the outcome hazard). Each study runs ``run_study`` (new users, ITT, sparse covariates,
L1 propensity score, 1:1 matching within 0.2 SD of the logit PS, Cox stratified by match set) on the outcome and 12
null outcomes: 8 are the negative controls that fit the systematic-error null, 4 are held out and only tested (their
calibrated p < 0.05 counts as a type-I error). Reports coverage of the 95 % interval (adjusted and crude), the
largest post-matching |SMD| per study, and type-I error before and after calibration.

Scale (``--scale N P``): N patients x P sparse binary covariates (about 20 per patient, plus age and a comorbidity
count that confound), from the propensity score to the hazard ratio: PS fit (L1, CV on a 250 000-patient sample),
1:1 matching, balance of every covariate, stratified Cox. Peak memory is the process's maximum resident set size.

Usage: python benchmarks/cohort_study.py [--reps 200] [--patients 10000] [--rows FILE] [--out FILE]
       python benchmarks/cohort_study.py --summarize ROWS... [--out FILE]
       python benchmarks/cohort_study.py --scale 1000000 5000
"""
from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pathways.errors import PathwaysDataWarning
from pathways.studies import (
    AnalysisSettings,
    CohortDesign,
    Matching,
    balance_table,
    cox_fit,
    fit_propensity,
    match,
    run_study,
)
from pathways.studies.simulate import simulate_study

HRS = (1.0, 1.5, 2.0)
N_CONTROLS, N_HELD_OUT = 8, 4


def one_study(rep: int, n_patients: int, n_noise_codes: int = 20) -> dict[str, float]:
    hr = HRS[rep % len(HRS)]
    study = simulate_study(n_patients, hr=hr, seed=1000 + rep, n_negative_controls=N_CONTROLS + N_HELD_OUT,
                           n_noise_codes=n_noise_codes)
    design = CohortDesign([study.target], [study.comparator], [study.outcome], time_at_risk="itt")
    controls = {c: [c] for c in study.negative_controls[:N_CONTROLS]}
    held_out = {c: [c] for c in study.negative_controls[N_CONTROLS:]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PathwaysDataWarning)
        result = run_study(study.log, design, AnalysisSettings(method="match", seed=rep),
                           negative_controls={**controls, **held_out})
    est = result.estimates
    main = est.iloc[0]
    nulls = est[est["outcome"].isin(list(held_out))]
    return {
        "hr": hr, "estimate": main["hr"], "covered": main["ci_low"] <= hr <= main["ci_high"],
        "covered_calibrated": main["ci_low_calibrated"] <= hr <= main["ci_high_calibrated"],
        "covered_crude": main["ci_low_crude"] <= hr <= main["ci_high_crude"], "crude": main["hr_crude"],
        "max_abs_smd_after": result.diagnostics["max_abs_smd_after"],
        "max_abs_smd_before": result.diagnostics["max_abs_smd_before"],
        "null_tests": len(nulls), "null_rejections": int((nulls["p"] < 0.05).sum()),
        "null_rejections_calibrated": int((nulls["p_calibrated"] < 0.05).sum()),
        "main_null_rejection_calibrated": bool(hr == 1.0 and main["p_calibrated"] < 0.05),
        "n_matched": main["n_target"] + main["n_comparator"], "null_sd": result.null.sd,
    }


def validity(reps: int, n_patients: int, n_noise_codes: int, rows_path: str | None = None,
             first: int = 0) -> pd.DataFrame:
    """Run studies ``first .. first + reps - 1``; each row is appended to ``rows_path`` (JSON lines) as it ends."""
    rows = []
    for rep in range(first, first + reps):
        start = time.perf_counter()
        row = {"rep": rep, **one_study(rep, n_patients, n_noise_codes), "patients": n_patients,
               "noise_codes": n_noise_codes}
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        if rows_path:
            with open(rows_path, "a") as handle:
                handle.write(pd.Series(row).to_json() + "\n")
    return pd.DataFrame(rows)


def summarize(frame: pd.DataFrame) -> str:
    """The markdown report of a set of studies (rows of :func:`validity`)."""
    reps, n_patients = len(frame), int(frame["patients"].iloc[0])
    seconds = frame["seconds"].sum()
    lines = [f"validity: {reps} studies x {n_patients} patients ({int(frame['noise_codes'].iloc[0])} background "
             f"codes), {seconds:.0f} s of study time; targets: adjusted coverage >= "
             f"0.90, post-matching max |SMD| < 0.1, type-I error after calibration <= 0.05", "",
             "| true HR | studies | mean HR adjusted | coverage adjusted | coverage calibrated | mean HR crude | "
             "coverage crude | max abs SMD after (mean, worst) | studies with max abs SMD < 0.1 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for hr, g in frame.groupby("hr"):
        lines.append(f"| {hr:g} | {len(g)} | {np.exp(np.log(g['estimate']).mean()):.3f} | {g['covered'].mean():.3f} | "
                     f"{g['covered_calibrated'].mean():.3f} | {np.exp(np.log(g['crude']).mean()):.3f} | "
                     f"{g['covered_crude'].mean():.3f} | {g['max_abs_smd_after'].mean():.3f}, "
                     f"{g['max_abs_smd_after'].max():.3f} | {(g['max_abs_smd_after'] < 0.1).mean():.3f} |")
    tests = frame["null_tests"].sum()
    lines += ["", f"all studies: coverage adjusted {frame['covered'].mean():.3f}, crude "
              f"{frame['covered_crude'].mean():.3f}; max |SMD| before matching (mean) "
              f"{frame['max_abs_smd_before'].mean():.3f}, after {frame['max_abs_smd_after'].mean():.3f} (worst "
              f"{frame['max_abs_smd_after'].max():.3f}); mean matched patients {frame['n_matched'].mean():.0f}",
              f"held-out null outcomes: {tests} tests, type-I error {frame['null_rejections'].sum() / tests:.3f} "
              f"uncalibrated, {frame['null_rejections_calibrated'].sum() / tests:.3f} calibrated; outcome of the "
              f"HR = 1 studies, calibrated: {frame.loc[frame['hr'] == 1, 'main_null_rejection_calibrated'].mean():.3f}"
              f"; mean fitted systematic-error sd {frame['null_sd'].mean():.3f}"]
    return "\n".join(lines)


def simulate_matrix(n: int, p: int, seed: int = 0, per_patient: int = 20) -> tuple[sp.csr_matrix, np.ndarray,
                                                                                      np.ndarray, np.ndarray]:
    """Sparse covariates (column prevalence from 0.05 % to 5 %), a confounded treatment and survival outcome."""
    gen = np.random.default_rng(seed)
    prevalence = np.geomspace(5e-4, 5e-2, p - 2)
    prevalence *= per_patient / prevalence.sum()
    nnz_per_row = gen.poisson(per_patient, n)
    cols = gen.choice(p - 2, size=int(nnz_per_row.sum()), p=prevalence / prevalence.sum())
    rows = np.repeat(np.arange(n), nnz_per_row)
    x = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, p - 2))
    x.sum_duplicates()
    x.data[:] = 1.0
    age = gen.uniform(35, 85, n)
    comorb = gen.binomial(5, 1 / (1 + np.exp(-(-1.8 + 0.04 * (age - 60)))))
    x = sp.hstack([x, sp.csr_matrix(np.c_[age, comorb])], format="csr")
    treated = gen.random(n) < 1 / (1 + np.exp(-(0.05 * (age - 60) + 0.6 * (comorb - 1))))
    rate = 2e-4 * np.exp(0.04 * (age - 60) + 0.5 * comorb) * np.where(treated, 1.5, 1.0)
    follow = gen.uniform(60, 1500, n)
    wait = gen.exponential(1 / rate)
    return x, treated, np.round(np.minimum(wait, follow)) + 1, wait < follow


def scale(n: int, p: int) -> str:
    x, treated, t, e = simulate_matrix(n, p)
    timings = {}
    start = time.perf_counter()
    model = fit_propensity(x, treated, seed=0)
    timings["propensity (L1, 3-fold CV, 7 penalties)"] = time.perf_counter() - start
    lap = time.perf_counter()
    m: Matching = match(model.logit_ps, treated)
    timings["1:1 matching (caliper 0.2 SD)"] = time.perf_counter() - lap
    lap = time.perf_counter()
    weight = np.zeros(n)
    weight[m.matched] = m.weight
    table = balance_table(x, treated, weight)
    timings[f"balance of all {p} covariates"] = time.perf_counter() - lap
    lap = time.perf_counter()
    fit = cox_fit(t[m.matched], e[m.matched], treated[m.matched].astype(float), strata=m.set_id)
    timings["Cox stratified by match set"] = time.perf_counter() - lap
    total = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    lines = [f"scale: {n} patients x {p} covariates ({x.nnz / n:.1f} non-zero per patient), PS to HR in "
             f"{total:.1f} s, peak resident memory {peak:.2f} GiB (whole process, simulation included); target "
             f"< 300 s", "", "| step | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in timings.items()]
    lines += ["", f"matched {m.matched.size} patients in {m.n_rounds} rounds; HR {float(np.exp(fit.coef[0])):.3f} "
              f"(planted 1.5); max |SMD| after {table['smd_after'].abs().max():.3f} (before "
              f"{table['smd_before'].abs().max():.3f}); penalty C {model.C:.3g}, "
              f"{int(np.count_nonzero(model.coef))} non-zero coefficients"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--patients", type=int, default=10000)
    parser.add_argument("--first", type=int, default=0, help="index of the first study (to run in chunks)")
    parser.add_argument("--noise-codes", type=int, default=20)
    parser.add_argument("--rows", default=None, help="append one JSON line per study here")
    parser.add_argument("--summarize", nargs="+", default=None, help="report from JSON-line files of studies")
    parser.add_argument("--scale", type=int, nargs=2, metavar=("N", "P"), default=None)
    parser.add_argument("--out", default=None, help="also write the markdown report here")
    args = parser.parse_args()
    if args.scale:
        report = scale(*args.scale)
    elif args.summarize:
        report = summarize(pd.concat([pd.read_json(f, lines=True) for f in args.summarize], ignore_index=True))
    else:
        report = summarize(validity(args.reps, args.patients, args.noise_codes, args.rows, args.first))
    print(report)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(report + "\n")


if __name__ == "__main__":
    main()
