"""Scale benchmark of HawkesExpKernel: D = 200 codes, up to 1 M events in short patient realizations, L1 penalty.

Data: ``simulate_hawkes`` with 200 codes of Zipf-distributed baselines (a few frequent codes, many rare ones, as in
claims), 400 random excitation edges scaled to spectral radius 0.5, decay 1 per day, 100-day windows; the number of
patients sets the number of events. Every learner gets the same data in the same run:

* pathways ``HawkesExpKernel(penalty="l1")`` by likelihood (EM warm-started by least squares) and by least squares;
* tick's ``HawkesExpKern(gofit="least-squares", penalty="l1")`` with ``--tick`` (``bench`` extra). It is opt-in:
  on this data (D = 200, hundreds of patient realizations) tick was killed for memory on a 23 GB host already at
  2e4 events, so the default run compares pathways' two fit methods only.

Columns: wall and CPU seconds (the CPU column is what one core would need on an idle machine: the benchmark host is
shared), iterations, convergence flag, relative Frobenius error of the adjacency and support AUC.

Run: ``python benchmarks/hawkes_scale.py [--sizes 100000 1000000] [--threads 1]``; the table is printed and saved to
``benchmarks/results/hawkes_scale.md``.
"""
from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from pathways.models.hawkes import HawkesExpKernel
from pathways.models.hawkes.exp import build_design
from pathways.synthetic.hawkes import simulate_hawkes
from pathways.utils import atomic_path

D, DECAY, WINDOW, EVENTS_PER_PATIENT = 200, 1.0, 100.0, 56.0


def truth(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    gen = np.random.default_rng(seed)
    adj = np.zeros((D, D))
    idx = gen.choice(D * D, 2 * D, replace=False)
    adj.flat[idx] = gen.uniform(0.1, 0.4, idx.size)
    adj *= 0.5 / np.max(np.abs(np.linalg.eigvals(adj)))
    mu = 1.0 / np.arange(1, D + 1)
    return mu * 25.0 / WINDOW / mu.sum(), adj


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def row(name: str, n_events: int, adj_hat: np.ndarray, adj: np.ndarray, wall: float, cpu: float,
        n_iter: object, converged: object) -> dict:
    return {"learner": name, "events": n_events, "wall_s": wall, "cpu_s": cpu, "iter": n_iter, "converged": converged,
            "rel_err": np.linalg.norm(adj_hat - adj) / np.linalg.norm(adj),
            "auc": roc_auc_score((adj > 0).ravel(), np.abs(adj_hat).ravel())}


def run_size(n_events: int, mu: np.ndarray, adj: np.ndarray, with_tick: bool) -> list[dict]:
    seqs = simulate_hawkes(mu, adj, start=0.0, end=WINDOW, n_sequences=int(n_events / EVENTS_PER_PATIENT),
                           decays=DECAY, seed=1)
    design, wall, cpu = timed(lambda: build_design(seqs))
    rows = [{"learner": f"pathways design ({design.n_entries / 1e6:.1f} M entries)", "events": seqs.n_events,
             "wall_s": wall, "cpu_s": cpu, "iter": "", "converged": "", "rel_err": np.nan, "auc": np.nan}]
    for method in ("likelihood", "least-squares"):
        model = HawkesExpKernel(decay=DECAY, penalty="l1", C=1e4, fit_method=method)
        _, wall, cpu = timed(lambda: model.fit(seqs))
        rows.append(row(f"pathways {method} (L1)", seqs.n_events, model.adjacency_, adj, wall, cpu, model.n_iter_,
                        model.converged_))
    if with_tick:
        from tick.hawkes import HawkesExpKern

        learner = HawkesExpKern(DECAY, gofit="least-squares", penalty="l1", C=1e4, max_iter=500)
        tick_data = seqs.to_tick()
        _, wall, cpu = timed(lambda: learner.fit(tick_data))  # tick's exp learners take no observation end times
        rows.append(row("tick least-squares (L1)", seqs.n_events, learner.adjacency, adj, wall, cpu, "", ""))
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| learner | events | wall s | CPU s | CPU / pathways likelihood | iter | converged | rel. Frobenius "
             "error | support AUC |", "|---|---|---|---|---|---|---|---|---|"]
    ref = {r["events"]: r["cpu_s"] for r in rows if r["learner"].startswith("pathways likelihood")}
    for r in rows:
        ratio = r["cpu_s"] / ref[r["events"]] if r["events"] in ref else np.nan
        lines.append(f"| {r['learner']} | {r['events']:,} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {ratio:.2f} | "
                     f"{r['iter']} | {r['converged']} | {r['rel_err']:.3f} | {r['auc']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tick", action="store_true", help="also run tick (needs much memory at D = 200)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "hawkes_scale.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        import tick.hawkes  # noqa: F401

        with_tick = args.tick
    except ImportError:
        with_tick = False
    mu, adj = truth()
    rows = [r for n in args.sizes for r in run_size(n, mu, adj, with_tick)]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    text = (f"## HawkesExpKernel at scale: D = {D}, L1, {args.threads} torch thread(s), CPU\n\n{table(rows)}\n\n"
            f"Peak resident memory of the whole run: {peak:.1f} GB. Data: {EVENTS_PER_PATIENT:.0f} events per patient "
            f"on {WINDOW:.0f}-day windows, Zipf baselines, 400 edges, spectral radius 0.5, decay {DECAY}.\n")
    print(text)
    with atomic_path(args.out) as tmp:
        tmp.write_text(text)


if __name__ == "__main__":
    main()
