"""pathways' ConvSCCS vs tick's on the same simulated SCCS data: fit time, RMSE of log relative incidence, coverage.

Setting (issue 6): tick's ``SimuSCCS`` layout — 3 000 cases, 750 buckets, 10 drugs of which 5 null, 49 lags, one
exposure start per drug at most (Hawkes-simulated, as tick does), one outcome per case drawn from the SCCS
multinomial law. The 5 risky curves come from tick's ``CustomEffects`` (step, bell, increasing, late bell, long
plateau). Without tick the data come from pathways' own simulator with the same curves.

Runs, in one process, one thread each (tick's SVRG is single-threaded; torch is set to 1 thread):

1. pathways ``ConvSCCSCV``: 3-fold patient-level CV over tick's example grid (C_tv in 10^[1, 4], C_group_l1 in
   10^[2, 5], 7 x 7 log-spaced), warm-started path, refit on all cases -> selected penalties, RMSE, time;
2. tick ``ConvSCCS.fit`` at the selected penalties (tick's defaults otherwise: SVRG, max_iter 100, tol 1e-5);
3. pathways ``ConvSCCS.fit`` at the same penalties (FISTA, tol 1e-5) -> time ratio and RMSE of both;
4. optionally (``--large-bootstrap N``) bootstrap intervals on that fit;
5. coverage of 95% intervals on repeated simulations of a smaller design (pathways' simulator: 1 000 cases,
   100 buckets, 2 risky + 2 null drugs, 19 lags; penalties chosen once by CV on an independent draw), for both
   interval methods (``refit`` and ``percentile``), pointwise over every (drug, lag).

RMSE = sqrt(mean over all drugs and lags of (estimated - true log relative incidence)^2).

Run: ``python benchmarks/convsccs_vs_tick.py [--cases 3000] [--n-bootstrap 100] [--coverage-sims 10]`` (needs the
``bench`` extra for tick). Prints a markdown table and writes it to ``benchmarks/results/convsccs_vs_tick.md``.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from pathways.encode.sccs import SCCSData
from pathways.models.sccs import ConvSCCS, ConvSCCSCV
from pathways.synthetic.sccs import bell_effect, simulate_sccs, step_effect
from pathways.utils import atomic_path

RESULTS = Path(__file__).parent / "results" / "convsccs_vs_tick.md"


def true_curves(n_lags: int) -> np.ndarray:
    """5 risky curves (tick's CustomEffects shapes when tick is installed) then 5 null ones."""
    width = n_lags + 1
    try:
        from tick.survival.simu_sccs import CustomEffects
        ce = CustomEffects(width)
        risky = [ce.constant_effect(2.0, cut=width // 2), ce.bell_shaped_effect(2.0, 30, 15, 15),
                 ce.increasing_effect(2.0, curvature_type=4), ce.bell_shaped_effect(3.0, 20, 5),
                 ce.constant_effect(1.5)]
        risky = [np.log(c) for c in risky]
    except ImportError:
        risky = [step_effect(n_lags, 2.0, 0, width // 2), bell_effect(n_lags, 2.0, 15 + 7, 5),
                 np.log(1 + np.linspace(0, 1, width)), bell_effect(n_lags, 3.0, 14, 3), step_effect(n_lags, 1.5)]
    return np.stack(risky + [np.zeros(width)] * 5)


def simulate(n_cases: int, n_buckets: int, truth: np.ndarray, seed: int) -> tuple[list, list, np.ndarray, str]:
    """tick's SimuSCCS when available (tick-format lists), else pathways' simulator converted to tick's format."""
    try:
        from tick.survival import SimuSCCS
    except ImportError:
        data = simulate_sccs(n_cases, n_buckets, truth, exposure_prob=0.6, seed=seed)
        return (*data.to_tick(), "pathways.synthetic.simulate_sccs")
    n_lags = np.full(truth.shape[0], truth.shape[1] - 1).astype("uint64")
    sim = SimuSCCS(n_cases, n_buckets, truth.shape[0], n_lags, coeffs=list(truth), seed=seed, verbose=False)
    features, _, labels, censoring, _ = sim.simulate()
    return list(features), list(labels), np.asarray(censoring), "tick.survival.SimuSCCS"


def rmse(coeffs: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(coeffs) - truth) ** 2)))


def coverage(low: np.ndarray, high: np.ndarray, truth: np.ndarray) -> np.ndarray:
    flat = truth.reshape(-1)
    return (low <= flat + 1e-9) & (flat - 1e-9 <= high)


def run_tick(features, labels, censoring, truth, c_tv, c_gl) -> tuple[float, float] | None:
    try:
        from tick.survival import ConvSCCS as TickConvSCCS
    except ImportError:
        return None
    n_lags = np.full(truth.shape[0], truth.shape[1] - 1).astype("uint64")
    learner = TickConvSCCS(n_lags=n_lags, penalized_features=np.arange(truth.shape[0]), C_tv=float(c_tv),
                           C_group_l1=float(c_gl), random_state=0)
    start = time.perf_counter()
    coeffs, _ = learner.fit(features, labels, censoring)
    return time.perf_counter() - start, rmse(np.stack(coeffs), truth)


def coverage_study(n_sims: int, n_bootstrap: int, seed: int) -> list[dict]:
    """Pointwise coverage of 95% bootstrap intervals over repeated simulations (small design)."""
    lags = 19
    truth = np.stack([step_effect(lags, 2.0, 0, 10), bell_effect(lags, 2.0, 8, 3), np.zeros(lags + 1),
                      np.zeros(lags + 1)])
    pilot = simulate_sccs(1000, 100, truth, exposure_prob=0.5, seed=seed + 999)
    cv = ConvSCCS(n_lags=lags).fit_kfold_cv(pilot, C_tv_grid=np.logspace(0, 4, 9),
                                            C_group_l1_grid=np.logspace(1, 5, 9))
    rows = []
    for method in ("refit", "percentile"):
        covered, widths, start = [], [], time.perf_counter()
        for s in range(n_sims):
            data = simulate_sccs(1000, 100, truth, exposure_prob=0.5, seed=seed + s)
            fit = ConvSCCS(n_lags=lags, C_tv=cv.C_tv_, C_group_l1=cv.C_group_l1_, n_bootstrap=n_bootstrap,
                           bootstrap_batch=50, ci_method=method, seed=s).fit(data)
            covered.append(coverage(fit.ci_low_, fit.ci_high_, truth).reshape(truth.shape))
            widths.append(np.mean(fit.ci_high_ - fit.ci_low_))
        cov = np.stack(covered)
        rows.append({"method": method, "C_tv": cv.C_tv_, "C_group_l1": cv.C_group_l1_,
                     "risky": cov[:, :2].mean(), "null": cov[:, 2:].mean(), "all": cov.mean(),
                     "width": float(np.mean(widths)), "seconds": time.perf_counter() - start})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--buckets", type=int, default=750)
    parser.add_argument("--lags", type=int, default=49)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-bootstrap", type=int, default=100)
    parser.add_argument("--coverage-sims", type=int, default=10)
    parser.add_argument("--large-bootstrap", type=int, default=0,
                        help="bootstrap replicates on the large data set too (slow on a shared CPU)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # tick's deprecation noise

    truth = true_curves(args.lags)
    features, labels, censoring, source = simulate(args.cases, args.buckets, truth, args.seed)
    data = SCCSData.from_tick(features, labels, censoring)
    start = time.perf_counter()
    cv = ConvSCCSCV(n_lags=args.lags, seed=args.seed).fit(data)
    t_cv = time.perf_counter() - start
    c_tv, c_gl = cv.C_tv_, cv.C_group_l1_

    tick_res = run_tick(features, labels, censoring, truth, c_tv, c_gl)
    start = time.perf_counter()
    ours = ConvSCCS(n_lags=args.lags, C_tv=c_tv, C_group_l1=c_gl).fit(features, labels=labels, censoring=censoring)
    t_ours = time.perf_counter() - start
    if args.large_bootstrap:
        start = time.perf_counter()
        boot = ConvSCCS(n_lags=args.lags, C_tv=c_tv, C_group_l1=c_gl, n_bootstrap=args.large_bootstrap,
                        seed=args.seed).fit(data)
        t_boot = time.perf_counter() - start
        cov_one = coverage(boot.ci_low_, boot.ci_high_, truth).reshape(truth.shape)
    study = coverage_study(args.coverage_sims, args.n_bootstrap, args.seed + 1) if args.coverage_sims else []

    lines = [
        f"## ConvSCCS: pathways vs tick ({args.cases} cases, {args.buckets} buckets, 10 drugs (5 null), "
        f"{args.lags} lags)",
        "",
        f"Data: {source}, seed {args.seed}; {platform.processor() or platform.machine()}, 1 thread each; "
        f"load average at end {os.getloadavg()[0]:.1f} (shared machine: absolute times are inflated, ratios hold).",
        "",
        "| run | C_tv | C_group_l1 | fit time (s) | RMSE log RI | time ratio pathways/tick |",
        "|---|---|---|---|---|---|",
        f"| pathways ConvSCCSCV (3-fold CV, 7x7 grid, refit) | {c_tv:.3g} | {c_gl:.3g} | {t_cv:.1f} | "
        f"{rmse(cv.lag_curves(), truth):.4f} | |",
    ]
    if tick_res is not None:
        lines.append(f"| tick ConvSCCS.fit (SVRG, max_iter 100) | {c_tv:.3g} | {c_gl:.3g} | {tick_res[0]:.1f} | "
                     f"{tick_res[1]:.4f} | |")
    ratio = f"{t_ours / tick_res[0]:.3f}" if tick_res is not None else "n/a (tick absent)"
    lines += [
        f"| pathways ConvSCCS.fit (FISTA) | {c_tv:.3g} | {c_gl:.3g} | {t_ours:.1f} | {rmse(ours.lag_curves(), truth):.4f} "
        f"| {ratio} |",
    ]
    if args.large_bootstrap:
        lines += [
            f"| pathways + {args.large_bootstrap} bootstrap replicates (refit) | {c_tv:.3g} | {c_gl:.3g} | "
            f"{t_boot:.1f} | {rmse(boot.refit_coef_.reshape(truth.shape), truth):.4f} (refit) | |",
            "",
            f"Coverage of the 95% bootstrap intervals on this data set: risky drugs {cov_one[:5].mean():.3f}, "
            f"null drugs {cov_one[5:].mean():.3f}, all {cov_one.mean():.3f}.",
        ]
    if study:
        lines += [
            "",
            f"### Coverage of 95% intervals, {args.coverage_sims} simulations x {args.n_bootstrap} bootstrap "
            "replicates (1 000 cases, 100 buckets, 2 risky + 2 null drugs, 19 lags)",
            "",
            "| interval method | C_tv | C_group_l1 | coverage risky | coverage null | coverage all | mean width (log) "
            "| time (s) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        lines += [f"| {r['method']} | {r['C_tv']:.3g} | {r['C_group_l1']:.3g} | {r['risky']:.3f} | {r['null']:.3f} "
                  f"| {r['all']:.3f} | {r['width']:.3f} | {r['seconds']:.0f} |" for r in study]
    table = "\n".join(lines) + "\n"
    print(table)
    with atomic_path(args.out) as tmp:
        tmp.write_text(table)
        tmp.chmod(0o644)  # mkstemp's 0600 would hide the table from other users


if __name__ == "__main__":
    main()
