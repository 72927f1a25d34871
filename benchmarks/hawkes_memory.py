"""Peak memory per event of a ``HawkesExpKernel`` fit with 1 000 codes on patient windows (issue 22).

Data: patients observed over 100-day windows, about 56 events each, D = 1 000 codes with Zipf baselines, 2 000
random edges scaled to spectral radius 0.5, decay 1 (``simulate_hawkes``). Each size is fitted in a fresh process:
the data are simulated, the peak resident set is reset (``/proc/self/clear_refs``), then one likelihood fit
(least-squares warm start + SQUAREM EM) runs; the row reports the growth of the peak resident set over the
resident set before the fit, per event, next to the EventLog-sized data itself.

Run: ``python benchmarks/hawkes_memory.py [--sizes 1e6 1e7] [--max-iter 200]``; writes
``benchmarks/results/hawkes_memory.md``. ``--max-iter`` caps the EM iterations (default 200, the fit's own budget
here): the peak is reached in the design build and values, and every later EM map allocates the same arrays, so a
capped run measures the peak of a large size in a fraction of the time (its error column is then not converged).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

RESULTS = Path(__file__).resolve().parent / "results" / "hawkes_memory.md"
D, WINDOW, EVENTS_PER_PATIENT, DECAY = 1000, 100.0, 56.0, 1.0


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(n_events: float, max_iter: int = 200) -> dict:
    """Simulate, reset the peak, fit; return the numbers (runs in its own process)."""
    import numpy as np
    import torch

    from pathways.models import HawkesExpKernel
    from pathways.synthetic.hawkes import simulate_hawkes

    torch.set_num_threads(1)
    gen = np.random.default_rng(0)
    adj = np.zeros((D, D))
    idx = gen.choice(D * D, 2 * D, replace=False)
    adj.flat[idx] = gen.uniform(0.1, 0.4, idx.size)
    adj *= 0.5 / np.max(np.abs(np.linalg.eigvals(adj)))
    mu = 1.0 / np.arange(1, D + 1)
    mu *= 25.0 / WINDOW / mu.sum()
    seqs = simulate_hawkes(mu, adj, start=0.0, end=WINDOW, n_sequences=int(n_events / EVENTS_PER_PATIENT),
                           decays=DECAY, seed=1)
    data_bytes = seqs.times.nbytes + seqs.marks.nbytes + seqs.offsets.nbytes + seqs.start.nbytes + seqs.end.nbytes
    Path("/proc/self/clear_refs").write_text("5")  # peak resident set := current
    before = _status_kb("VmRSS")
    t0 = time.perf_counter()
    model = HawkesExpKernel(decay=DECAY, max_iter=max_iter).fit(seqs)
    seconds = time.perf_counter() - t0
    peak = _status_kb("VmHWM")
    err = float(np.linalg.norm(model.adjacency_ - adj) / np.linalg.norm(adj))
    return {"events": int(seqs.n_events), "patients": len(seqs), "data_b": data_bytes / seqs.n_events,
            "fit_b": (peak - before) * 1024 / seqs.n_events, "peak_gb": peak / 2 ** 20, "seconds": seconds,
            "err": err, "iter": int(model.n_iter_)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--max-iter", type=int, default=200, help="EM iteration cap (peak memory of large sizes)")
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.max_iter)))
        return
    from pathways.utils import atomic_path

    rows = ["| codes | events | patients | data B/event | fit peak B/event | process peak GB | fit s | iter | "
            "rel. err |", "|---|---|---|---|---|---|---|---|---|"]
    for size in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--child", str(size), "--max-iter", str(args.max_iter)],
                             capture_output=True, text=True)
        if out.returncode:
            rows.append(f"| {D} | {size:.0e} | - | - | failed: {out.stderr.strip().splitlines()[-1][:80]} | - | - | - | - |")
        else:
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(f"| {D} | {r['events']:,} | {r['patients']:,} | {r['data_b']:.0f} | {r['fit_b']:.0f} | "
                        f"{r['peak_gb']:.2f} | {r['seconds']:.1f} | {r['iter']} | {r['err']:.3f} |")
        print(rows[-1], flush=True)
    table = "\n".join(["# HawkesExpKernel fit memory per event, 1 000 codes (issue 22)", ""] + rows) + "\n"
    print(table)
    with atomic_path(args.out) as tmp:
        tmp.write_text(table)


if __name__ == "__main__":
    main()
