"""pathways vs tick on the same simulated Hawkes data: fit time, adjacency error, support AUC.

Setting (issue 4): D = 10 codes, 20 non-zero edges, spectral radius 0.6, exponential kernels with decay 1. Data sets:
one long realization with 1e4, 1e5 and 1e6 events, and 2 000 short patient realizations. Both libraries get the
very same arrays (``Sequences.to_tick()`` / ``tick_end_times()``), on one thread each, with the same iteration
budget where the algorithms are the same.

Learners compared:

* exponential kernel, likelihood: ``tick.HawkesExpKern(gofit="likelihood")`` with its defaults (AGD solver), then
  with the best settings we found (BFGS solver, start at the least-squares solution); vs
  ``pathways.HawkesExpKernel(fit_method="likelihood")`` (least-squares warm start, then projected Newton steps on
  the dense per-code blocks; SQUAREM-accelerated EM where the design stays sparse or covariates are given);
* exponential kernel, least squares: ``tick.HawkesExpKern(gofit="least-squares")`` vs
  ``HawkesExpKernel(fit_method="least-squares")``;
* nonparametric EM (support 6, 30 bins): ``tick.HawkesEM`` vs ``pathways.HawkesEM``, both with max_iter=100 E-steps
  and tol=1e-5 (pathways with its default SQUAREM acceleration, and plain EM like tick).

Metrics: wall time of ``fit`` (data conversion excluded for both), relative Frobenius error of the adjacency,
AUC of |a_ij| against the true non-zero pattern (diagonal included), and pathways time / tick time.

Run: ``python benchmarks/hawkes_vs_tick.py [--sizes 1e4 1e5 1e6] [--patients 2000] [--skip-slow-tick]``
(needs the ``bench`` extra: tick==0.8.0.2, numpydoc, six). Prints a markdown table and writes it to
``benchmarks/results/hawkes_vs_tick.md``.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from pathways.encode import Sequences  # noqa: E402
from pathways.models import HawkesEM, HawkesExpKernel  # noqa: E402
from pathways.synthetic import simulate_hawkes  # noqa: E402
from pathways.utils import atomic_path  # noqa: E402

D, N_EDGES, RADIUS, DECAY = 10, 20, 0.6, 1.0
TICK_EDGES, TICK_RADIUS, TICK_DECAY = 30, 0.7, 2.0  # tick-simulated data: another truth
EM_SUPPORT, EM_BINS, EM_ITER, EM_TOL = 6.0, 30, 100, 1e-5
RESULTS = Path(__file__).resolve().parent / "results" / "hawkes_vs_tick.md"


def truth(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Baseline (D,) and adjacency (D, D) with N_EDGES non-zero entries scaled to spectral radius RADIUS."""
    gen = np.random.default_rng(seed)
    adjacency = np.zeros((D, D))
    adjacency.flat[gen.choice(D * D, N_EDGES, replace=False)] = gen.uniform(0.5, 1.0, N_EDGES)
    adjacency *= RADIUS / np.max(np.abs(np.linalg.eigvals(adjacency)))
    return np.full(D, 0.05), adjacency


def datasets(sizes: list[float], n_patients: int, seed: int = 1) -> list[tuple[str, Sequences]]:
    """One long realization per size (end time chosen for about that many events) and short patient windows."""
    mu, adjacency = truth()
    rate = np.linalg.solve(np.eye(D) - adjacency, mu).sum()  # stationary events per unit time
    out = []
    for size in sizes:
        seqs = simulate_hawkes(mu, adjacency, start=0.0, end=float(size) / rate, n_sequences=1, decays=DECAY,
                               seed=seed)
        out.append((f"1 realization, {seqs.n_events:,} events", seqs))
    if n_patients:
        # short patient windows (10 to 60 time units, a few dozen events each), same process
        gen = np.random.default_rng(seed + 1)
        end = gen.uniform(10.0, 60.0, n_patients)
        seqs = simulate_hawkes(mu, adjacency, start=0.0, end=end, decays=DECAY, seed=seed + 2)
        out.append((f"{n_patients:,} patients, {seqs.n_events:,} events", seqs))
    return out


def tick_truth(seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Other ground truth for tick's own simulator: baselines uniform on [0.02, 0.1], TICK_EDGES edges scaled to
    spectral radius TICK_RADIUS (decay TICK_DECAY)."""
    gen = np.random.default_rng(seed)
    adjacency = np.zeros((D, D))
    adjacency.flat[gen.choice(D * D, TICK_EDGES, replace=False)] = gen.uniform(0.2, 1.0, TICK_EDGES)
    adjacency *= TICK_RADIUS / np.max(np.abs(np.linalg.eigvals(adjacency)))
    return gen.uniform(0.02, 0.1, D), adjacency


def tick_datasets(size: float, n_patients: int, seed: int = 11) -> list[tuple[str, Sequences]]:
    """Data simulated by tick's own ``SimuHawkesExpKernels`` (not by pathways): one long realization of about
    ``size`` events, and ``n_patients`` short windows (lengths uniform on [10, 60]), each its own simulation."""
    from tick.hawkes import SimuHawkesExpKernels

    mu, adjacency = tick_truth()
    rate = np.linalg.solve(np.eye(D) - adjacency, mu).sum()

    def simulate(end: float, s: int) -> list[np.ndarray]:
        sim = SimuHawkesExpKernels(adjacency=adjacency, decays=TICK_DECAY, baseline=mu, end_time=end, seed=s,
                                   verbose=False)
        sim.simulate()
        return [np.asarray(ts, dtype=np.float64) for ts in sim.timestamps]

    out = []
    if size:
        end = float(size) / rate
        seqs = Sequences.from_tick([simulate(end, seed)], end_times=[end])
        out.append((f"tick-simulated, 1 realization, {seqs.n_events:,} events", seqs))
    if n_patients:
        ends = np.random.default_rng(seed + 1).uniform(10.0, 60.0, n_patients)
        seqs = Sequences.from_tick([simulate(float(e), seed + 2 + i) for i, e in enumerate(ends)], end_times=ends)
        out.append((f"tick-simulated, {n_patients:,} patients, {seqs.n_events:,} events", seqs))
    return out


def scores(adjacency: np.ndarray, true: np.ndarray | None = None) -> tuple[float, float]:
    true = truth()[1] if true is None else true
    err = np.linalg.norm(adjacency - true) / np.linalg.norm(true)
    auc = roc_auc_score((true > 0).ravel(), np.abs(adjacency).ravel())
    return float(err), float(auc)


def timed(fit: Callable[[], np.ndarray], true: np.ndarray | None = None) -> dict[str, Any]:
    """Run ``fit`` (returns the adjacency); report time, error, AUC, or the failure."""
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adjacency = np.asarray(fit(), dtype=np.float64)
    except Exception as exc:  # a learner crashing is a result to report, not a benchmark failure
        traceback.print_exc()
        return {"time": time.perf_counter() - t0, "note": f"crashed: {type(exc).__name__}: {str(exc)[:60]}"}
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    if not np.all(np.isfinite(adjacency)):
        return {"time": seconds, "note": "diverged: non-finite adjacency"}
    err, auc = scores(adjacency, true)
    return {"time": seconds, "cpu": cpu, "err": err, "auc": auc, "note": ""}


# ----------------------------------------------------------------------------------------------------------------
# learners
# ----------------------------------------------------------------------------------------------------------------
def tick_exp(data: list, gofit: str, best: bool = False, decay: float = DECAY) -> np.ndarray:
    """tick's exponential-kernel learner; its ``fit`` takes no end times (each realization ends at its last event)
    and fails on realizations without events ("max() arg is an empty sequence"), so those are left out for it."""
    from tick.hawkes import HawkesExpKern

    data = [r for r in data if sum(len(a) for a in r) > 0]

    if not best:
        learner = HawkesExpKern(decays=decay, gofit=gofit, max_iter=500, tol=1e-7)
        learner.fit(data)
        return learner.adjacency
    # likelihood, best settings found: tick's default start (zeros) always crashes ("the sum of the influence on
    # someone cannot be negative"), BFGS crashes from any start; AGD started at the least-squares solution (kept
    # strictly positive) with a tight tolerance reaches the maximum
    ls = HawkesExpKern(decays=decay, gofit="least-squares", max_iter=500, tol=1e-7)
    ls.fit(data)
    start = np.concatenate([np.maximum(ls.baseline, 1e-3), np.maximum(ls.adjacency.ravel(), 1e-3)])
    learner = HawkesExpKern(decays=decay, gofit="likelihood", solver="agd", step=1e-2, max_iter=5000, tol=1e-10)
    learner.fit(data, start=start)
    return learner.adjacency


def tick_em(data: list, end: np.ndarray) -> np.ndarray:
    from tick.hawkes import HawkesEM as TickEM

    learner = TickEM(kernel_support=EM_SUPPORT, kernel_size=EM_BINS, max_iter=EM_ITER, tol=EM_TOL, n_threads=1)
    np.random.seed(0)  # tick draws its kernel start from numpy's global generator
    learner.fit(data, end_times=end)
    return learner.get_kernel_norms()


def pathways_exp(seqs: Sequences, method: str, decay: float = DECAY) -> np.ndarray:
    return HawkesExpKernel(decay=decay, fit_method=method).fit(seqs).adjacency_


def pathways_em(seqs: Sequences, accelerate: bool) -> np.ndarray:
    model = HawkesEM(kernel_support=EM_SUPPORT, n_bins=EM_BINS, max_iter=EM_ITER, tol=EM_TOL, accelerate=accelerate)
    return model.fit(seqs).adjacency_


# ----------------------------------------------------------------------------------------------------------------
# table
# ----------------------------------------------------------------------------------------------------------------
def fmt(res: dict[str, Any] | None, key: str, spec: str) -> str:
    """A metric, or (error column) the failure note, or "-"."""
    if res is None:
        return "not run"
    if key in res:
        return format(res[key], spec)
    return res.get("note", "")[:60] if key == "err" else "-"


def compare(name: str, seqs: Sequences, skip_slow_tick: bool, true: np.ndarray | None = None,
            decay: float = DECAY) -> list[str]:
    data, end = seqs.to_tick(), seqs.tick_end_times()
    skip_tick_em = skip_slow_tick and seqs.n_events > 3e5
    runs: dict[str, Callable[[], np.ndarray] | None] = {
        "tick exp likelihood": lambda: tick_exp(data, "likelihood", decay=decay),
        "tick exp likelihood best": lambda: tick_exp(data, "likelihood", best=True, decay=decay),
        "tick exp ls": lambda: tick_exp(data, "least-squares", decay=decay),
        "tick em": None if skip_tick_em else (lambda: tick_em(data, end)),
        "pathways exp likelihood": lambda: pathways_exp(seqs, "likelihood", decay),
        "pathways exp ls": lambda: pathways_exp(seqs, "least-squares", decay),
        "pathways em squarem": lambda: pathways_em(seqs, True),
        "pathways em plain": lambda: pathways_em(seqs, False),
    }
    res: dict[str, dict[str, Any] | None] = {}
    for key, fit in runs.items():
        print(f"  {name} | {key}", flush=True)
        res[key] = timed(fit, true) if fit is not None else None
        print(f"    {res[key]}", flush=True)
    table = [
        ("exp likelihood (tick defaults: AGD)", "tick exp likelihood", "pathways exp likelihood"),
        ("exp likelihood (tick best: AGD from its LS fit)", "tick exp likelihood best", "pathways exp likelihood"),
        ("exp least squares", "tick exp ls", "pathways exp ls"),
        ("EM, 100 E-steps (pathways SQUAREM)", "tick em", "pathways em squarem"),
        ("EM, 100 E-steps (pathways plain EM)", "tick em", "pathways em plain"),
    ]
    rows = []
    for label, tick_key, our_key in table:
        tk, ours = res[tick_key], res[our_key]
        both = ours is not None and tk is not None and "err" in ours and "err" in tk
        ratio = f"{ours['time'] / tk['time']:.3f}" if both else "-"
        cpu_ratio = f"{ours['cpu'] / tk['cpu']:.3f}" if both else "-"
        rows.append(f"| {name} | {label} | {fmt(tk, 'time', '.2f')} | {fmt(tk, 'err', '.4f')} | "
                    f"{fmt(tk, 'auc', '.3f')} | {fmt(ours, 'time', '.2f')} | {fmt(ours, 'err', '.4f')} | "
                    f"{fmt(ours, 'auc', '.3f')} | {ratio} | {fmt(tk, 'cpu', '.2f')} | {fmt(ours, 'cpu', '.2f')} | "
                    f"{cpu_ratio} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e4, 1e5, 1e6])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--skip-slow-tick", action="store_true", help="skip tick's EM above 3e5 events")
    parser.add_argument("--tick-size", type=float, default=1e6, help="events of the tick-simulated realization (0: none)")
    parser.add_argument("--tick-patients", type=int, default=2000, help="tick-simulated short windows (0: none)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    import tick  # noqa: F401  (fail early, before simulating, when the bench extra is missing)

    header = [
        "# pathways vs tick 0.8.0.2: multivariate Hawkes learners on the same data",
        "",
        f"D = {D} codes, {N_EDGES} non-zero edges, spectral radius {RADIUS}, exponential kernels (decay {DECAY}), "
        "baseline 0.05; patient windows uniform on [10, 60]. tick's exponential-kernel learners take no end "
        "times (each realization ends at its last event) and crash on patients without events, which are left out "
        "for them only; tick's EM and pathways get every window, empty or not. "
        f"EM: support {EM_SUPPORT}, {EM_BINS} bins, max_iter {EM_ITER}, tol {EM_TOL}. One thread each "
        f"({platform.machine()}, torch {torch.__version__}, shared machine: timings are noisy). err = relative Frobenius error of the "
        "adjacency; AUC of |a_ij| vs the true support; ratio = pathways time / tick time (wall); CPU ratio = the same "
        "with process CPU time, steadier on a loaded machine.",
        "",
        "| data | learner | tick s | tick err | tick AUC | pathways s | pathways err | pathways AUC | ratio | "
        "tick CPU s | pathways CPU s | CPU ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows: list[str] = []
    for name, seqs in datasets(args.sizes, args.patients):
        print(f"{name}", flush=True)
        rows += compare(name, seqs, args.skip_slow_tick)
    for name, seqs in tick_datasets(args.tick_size, args.tick_patients):
        print(f"{name}", flush=True)
        rows += compare(name, seqs, args.skip_slow_tick, true=tick_truth()[1], decay=TICK_DECAY)
    table = "\n".join(header + rows) + "\n"
    print(table)
    with atomic_path(args.out) as tmp:
        tmp.write_text(table)


if __name__ == "__main__":
    main()
