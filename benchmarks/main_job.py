"""Benchmark of the main job: `python scripts/train.py` (no arguments) end to end, against the other Hawkes learners
on the same simulated cohort (same seed) in the same run.

Each run is a fresh subprocess in a temporary folder, as a user would launch it; wall time, CPU time (user + sys of
the child) and peak memory come from the OS, metrics from the run's metrics.json. Target: the main job under
2 minutes on 2 CPU cores.

Usage: python benchmarks/main_job.py [--threads N]   (prints a markdown table; save it to benchmarks/results/)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = [("main job (hawkes_exp, default)", []), ("hawkes_sumexp", ["model=hawkes_sumexp"]),
        ("hawkes_em", ["model=hawkes_em"])]


def run_once(overrides: list[str], threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *overrides,
                               f"hydra.run.dir={tmp}/run", f"paths.checkpoint_dir={tmp}/ckpt"], cwd=tmp, env=env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1][:120]}
        metrics = json.loads((Path(tmp) / "run" / "report" / "metrics.json").read_text())
        return {"wall": wall, "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
                "rss_mb": after.ru_maxrss / 1024, **metrics}  # maxrss: largest child so far


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rows = [(name, run_once(ov, args.threads)) for name, ov in RUNS]
    base = rows[0][1].get("wall", float("nan"))
    print(f"Main job benchmark: synthetic cohort (500 patients, seed 0), {args.threads} threads, "
          f"{os.cpu_count()} visible cores\n")
    print("| run | wall s | CPU s | wall / main job | fit s | max child RSS MB (cumulative) | test loglik/event | edge AUROC vs truth | "
          "adjacency RMSE vs truth |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        if "error" in r:
            print(f"| {name} | failed: {r['error']} | | | | | | | |")
            continue
        print(f"| {name} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['wall'] / base:.2f} | {r['fit_seconds']:.1f} | "
              f"{r['rss_mb']:.0f} | {r.get('test_loglik_per_event', float('nan')):.4f} | "
              f"{r.get('edge_auroc_vs_truth', float('nan')):.4f} | {r.get('adjacency_rmse_vs_truth', float('nan')):.4f} |")


if __name__ == "__main__":
    main()
