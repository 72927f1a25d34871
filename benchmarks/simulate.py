"""Benchmark simulate_cohort at about 1 M events, next to tick's Hawkes simulator, and check the truth on a large draw.

1. Events/s (wall and CPU) and peak extra memory of ``simulate_cohort`` at ~1 M events.
2. tick's ``SimuHawkesMulti`` (thinning) simulating the same exponential Hawkes part (same baseline, adjacency and
   decays) on the first patients only (it is far slower), events/s and ratio.
3. Ground truth on a large draw (the slow test ``test_weak_effects_recovered_on_a_large_draw``): relative incidence
   of every planted step recovered from the events vs the truth, and the Hawkes code counts vs their expectation.

    python benchmarks/simulate.py --out benchmarks/results/simulate.md
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "synthetic"))

from pathways.synthetic import simulate_cohort  # noqa: E402
from pathways.utils import atomic_path  # noqa: E402
from test_cohort_sim import _exposure_state, _mean_intensity_counts  # noqa: E402


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(fn: Callable[[], Any], repeats: int = 1) -> tuple[float, float, float, Any]:
    """Best wall and CPU times over ``repeats`` and peak extra resident memory (MB), VmHWM reset before."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    before = _status_kb("VmRSS")
    wall, cpu, result = np.inf, np.inf, None
    for _ in range(repeats):
        result = None
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return wall, cpu, (_status_kb("VmHWM") - before) / 1024.0, result


def tick_rate(truth: Any, horizons: np.ndarray, n_patients: int) -> tuple[float, float, int] | None:
    """tick's thinning simulation of the same exponential Hawkes part on ``n_patients`` windows of mean length."""
    try:
        from tick.hawkes import SimuHawkesExpKernels, SimuHawkesMulti
    except ImportError:
        return None
    hawkes = SimuHawkesExpKernels(adjacency=truth.kernel_adjacency[0], decays=truth.decays, baseline=truth.baseline,
                                  end_time=float(horizons[:n_patients].mean()), verbose=False, seed=1)
    multi = SimuHawkesMulti(hawkes, n_simulations=n_patients, n_threads=1)
    t0, c0 = time.perf_counter(), time.process_time()
    multi.simulate()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu, int(sum(len(ts) for real in multi.timestamps for ts in real))


def recovery_rows(n_patients: int, seed: int) -> tuple[list[str], str]:
    log, truth = simulate_cohort(n_patients, seed=seed)
    rows = []
    for outcome in truth.drug_effects["event"].unique():
        steps, rate = _exposure_state(log, truth, outcome)
        base, n_base = rate((0,) * len(steps))
        for s, row in steps.iterrows():
            r, n_ev = rate(tuple(int(k == s) for k in range(len(steps))))
            rows.append(f"| {row['drug']} | {outcome} | {row['strength']} | [{row['lag_start']:g}, {row['lag_end']:g}) "
                        f"| {row['relative_incidence']:.2f} | {r / base:.2f} | {n_ev} | {n_base} |")
    horizons = (log.patients["end"] - log.patients["start"]).to_numpy()
    expected = _mean_intensity_counts(truth, horizons)
    observed = np.bincount(log.code, minlength=log.n_codes)
    hawkes = ~np.isin(truth.codes, truth.outcomes + ["DEATH"])
    ratio = observed[hawkes] / expected[hawkes]
    summary = (f"Hawkes codes ({int(hawkes.sum())}): observed / expected count from the truth in "
               f"[{ratio.min():.3f}, {ratio.max():.3f}], total {observed[hawkes].sum() / expected[hawkes].sum():.4f} "
               f"({log.n_events:,} events, {n_patients:,} patients).")
    return rows, summary


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=6400, help="about 1 M events with the defaults")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tick-patients", type=int, default=20)
    parser.add_argument("--truth-patients", type=int, default=40000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    wall, cpu, peak, (log, truth) = measure(lambda: simulate_cohort(args.patients, seed=args.seed), args.repeats)
    wall_s, cpu_s, _, (log_s, _) = measure(
        lambda: simulate_cohort(args.patients, seed=args.seed, kernel="sumexp", anomaly_fraction=0.05, frailty=0.5),
        args.repeats)
    n = log.n_events
    lines = [
        f"## simulate_cohort: {args.patients:,} patients",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} logical CPUs shared with other jobs; best of {args.repeats}. "
        "CPU = this process's CPU time (the per-core figure on a loaded machine).",
        "",
        "| simulator | events | wall (s) | CPU (s) | events/s (CPU) | events/s (wall) | peak extra memory (MB) | "
        "ratio (CPU events/s) |",
        "|---|---|---|---|---|---|---|---|",
        f"| simulate_cohort (exp kernels, defaults) | {n:,} | {wall:.2f} | {cpu:.2f} | {n / cpu:,.0f} | "
        f"{n / wall:,.0f} | {peak:.0f} | 1 |",
        f"| simulate_cohort (sum-exp, frailty 0.5, 5 % anomalies) | {log_s.n_events:,} | {wall_s:.2f} | {cpu_s:.2f} | "
        f"{log_s.n_events / cpu_s:,.0f} | {log_s.n_events / wall_s:,.0f} | | "
        f"{(log_s.n_events / cpu_s) / (n / cpu):.2f} |",
    ]
    horizons = (log.patients["end"] - log.patients["start"]).to_numpy()
    tick = tick_rate(truth, horizons, args.tick_patients)
    if tick is None:
        lines.append("| tick SimuHawkesMulti | not installed | | | | | | |")
    else:
        t_wall, t_cpu, t_n = tick
        lines.append(f"| tick SimuHawkesMulti, same exp Hawkes part, first {args.tick_patients} patients only | "
                     f"{t_n:,} | {t_wall:.2f} | {t_cpu:.2f} | {t_n / t_cpu:,.0f} | {t_n / t_wall:,.0f} | | "
                     f"{(t_n / t_cpu) / (n / cpu):.4f} |")
    lines += ["", "Target (issue 2): 1 M events well under 10 s on one core.", ""]
    rows, summary = recovery_rows(args.truth_patients, seed=3)
    lines += [
        f"### Ground truth recovered on a {args.truth_patients:,}-patient draw (seed 3)",
        "",
        "Relative incidence of each planted step = outcome rate while exactly one window of that step is open / rate "
        "while no window is open (sweep line over the events, independent of the simulator's code).",
        "",
        "| drug | outcome | strength | lag window (days) | true RI | empirical RI | outcomes in window | "
        "outcomes unexposed |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        summary,
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out is not None:
        with atomic_path(args.out) as tmp:
            tmp.write_text(table)
    return table


if __name__ == "__main__":
    main()
