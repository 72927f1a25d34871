"""Profile-likelihood intervals of the classic SCCS: batched search vs one column at a time, same data, same run.

The one-column method is the one ``pathways`` used before (issue 21's follow-up): per profiled column, the
supremum, then each bound by step doubling from it and ``brentq`` (xtol 1e-4), every evaluation a full Newton refit
of the other columns, then the likelihood-ratio test at RI = 1. The batched method is
``pathways.models.sccs.profile.profile_intervals``. Data: ``simulate_cohort`` (20 drugs), one SCCS per outcome as in
``pathways.signals.detect`` (7-day buckets, the 0-60 day window). Reports both times, their ratio and the largest
difference of the bounds (log scale).

Usage: python benchmarks/sccs_profile.py [--patients 1500] [--outcomes 2]
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy import optimize, stats

from pathways.encode.sccs import sccs_data
from pathways.models.sccs import SCCS
from pathways.models.sccs.likelihood import LOG_RI_LIMIT, case_loglik, newton
from pathways.models.sccs.profile import profile_intervals
from pathways.signals import StudyDesign
from pathways.synthetic.cohort import simulate_cohort


def one_column(X, d, theta, k, crit, tol=1e-8, max_iter=100):
    """(low, high, p) of column k, the previous one-column-at-a-time method."""
    others = np.arange(theta.size) != k
    x_k, X_o = X[:, k].toarray().ravel(), X[:, others]
    warm = [theta[others]]

    def profile(b):
        th = newton(X_o, d, tol, max_iter, offset=x_k * b, theta0=warm[0])[0]
        warm[0] = th
        return float(case_loglik(X_o @ th + x_k * b, d)[0].sum())

    top, l_max = theta[k], profile(theta[k])
    excess = (lambda b: 2 * (l_max - profile(b)) - crit)

    def bound(direction):
        x0, step = top, 0.25
        while True:
            x1 = x0 + direction * step
            if abs(x1) > LOG_RI_LIMIT:
                return direction * np.inf
            if excess(x1) > 0:
                return float(optimize.brentq(excess, min(x0, x1), max(x0, x1), xtol=1e-4))
            x0, step = x1, step * 2

    low, high = bound(-1.0), bound(1.0)
    return low, high, float(stats.chi2.sf(max(2 * (l_max - profile(0.0)), 0.0), 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1500)
    parser.add_argument("--outcomes", type=int, default=2)
    args = parser.parse_args()
    log, truth = simulate_cohort(args.patients, seed=0)
    drugs = sorted(set(log.vocab.codes[np.unique(log.code[np.asarray(log.category) == "drug"])]))
    crit = float(stats.chi2.ppf(0.95, 1))
    t_old = t_new = 0.0
    worst, n_cols = 0.0, 0
    for code in truth.outcomes[: args.outcomes]:
        data = sccs_data(log, {d: [d] for d in drugs}, [code], 7.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = SCCS(risk_windows=StudyDesign(outcomes=[]).sccs_windows(), interval="wald").fit(data)
        X, d = model._design(data)
        free = np.flatnonzero(np.isfinite(model.coef_) & (model.status_ == "estimated"))
        X, theta = X[:, free], model.coef_[free]
        start = time.perf_counter()
        new = profile_intervals(X, d, theta, np.zeros(theta.size), np.zeros(theta.size, np.int64),
                                np.arange(theta.size), 0.95, 1e-8, 100, std_err=model.std_err_[free])
        t_new += time.perf_counter() - start
        start = time.perf_counter()
        old = np.array([one_column(X, d, theta, k, crit) for k in range(theta.size)])
        t_old += time.perf_counter() - start
        worst = max(worst, float(np.max(np.abs(np.c_[new.low, new.high] - old[:, :2]))))
        n_cols += theta.size
    print(f"SCCS profile intervals, {args.patients} patients, {args.outcomes} outcomes, {n_cols} columns "
          "(measured while the machine was shared)\n")
    print("| method | seconds | ratio |\n|---|---|---|")
    print(f"| one column at a time (previous) | {t_old:.2f} | 1.00 |")
    print(f"| batched (profile.py) | {t_new:.2f} | {t_old / t_new:.1f}x faster |")
    print(f"\nlargest |bound difference| (log RI): {worst:.2e}")


if __name__ == "__main__":
    main()
