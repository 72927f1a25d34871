"""Checkpoint I/O (safetensors, format 2, against the former torch.save format 1) and the cost of progress bars.

    python benchmarks/checkpoint_io.py [--mib 400] [--out benchmarks/results/checkpoint_io.md]

Checkpoint rows: one estimator state of ``--mib`` MiB of float32 weights (a large embedding, as a neural model over a
big vocabulary holds), written by ``pathways.checkpoint.save`` (format 2) and re-packed as format 1, then read back by
``pathways.checkpoint.read`` in a fresh process each: wall time and the growth of the process's private (anonymous)
memory, which a memory-mapped read avoids (its pages are file-backed and reclaimable). Every read verifies the digest,
so every byte is read once in every row.

Progress row: the same Hawkes EM fit with bars forced off and forced on (written to a null stream), as a same-run ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pathways.checkpoint import FORMAT, _digest, save  # noqa: E402


class _State:
    """A stand-in estimator: ``save`` needs only ``export_state``."""

    def __init__(self, mib: int) -> None:
        rows = mib * 2**20 // (4 * 256)
        gen = torch.Generator().manual_seed(0)
        self.arrays = {"module_.embed.weight": torch.randn(rows, 256, generator=gen),
                       "module_.head.bias": torch.zeros(rows), "baseline_": np.ones(8)}

    def export_state(self) -> dict:
        return {"class": "pathways.models.tpp.rmtpp.RMTPP", "params": {}, "meta": {"n_codes_": 8},
                "arrays": self.arrays}


def _anon_kib() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return -1


def _read_child(path: str, mmap: bool) -> None:
    """Runs in a fresh process: read the checkpoint, print wall seconds and private-memory growth (MiB)."""
    from pathways.checkpoint import read

    before = _anon_kib()
    t0 = time.perf_counter()
    ckpt = read(path, mmap=mmap)
    seconds = time.perf_counter() - t0
    total = sum(float(t.float().sum()) for t in ckpt.arrays.values() if t.numel() < 2**20)  # touch small arrays
    print(json.dumps({"seconds": seconds, "anon_mib": (_anon_kib() - before) / 1024, "check": total}))


def _run_read(path: Path, mmap: bool) -> dict:
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); sys.argv = ['x']; " \
           f"from benchmarks.checkpoint_io import _read_child; _read_child({str(path)!r}, {mmap})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _save_format_1(path_v2: Path, path_v1: Path) -> float:
    from safetensors import safe_open

    with safe_open(str(path_v2), framework="pt") as fh:
        header = fh.metadata()["header"]
        arrays = {k: fh.get_tensor(k).clone() for k in fh.keys()}
    t0 = time.perf_counter()
    torch.save({"format": FORMAT, "format_version": 1, "header": header, "arrays": arrays,
                "digest": _digest(header, arrays)}, path_v1)
    return time.perf_counter() - t0


def checkpoint_rows(mib: int, folder: Path) -> list[dict]:
    state = _State(mib)
    v2, v1 = folder / "v2.pt", folder / "v1.pt"
    t0 = time.perf_counter()
    save(state, v2)
    save_v2 = time.perf_counter() - t0
    save_v1 = _save_format_1(v2, v1)
    rows = []
    for name, path, mmap, wrote in (("format 1 (torch.save, weights_only load)", v1, False, save_v1),
                                    ("format 2 (safetensors), copied", v2, False, save_v2),
                                    ("format 2 (safetensors), mmap=True", v2, True, save_v2)):
        got = _run_read(path, mmap)
        rows.append({"checkpoint": name, "file MiB": round(path.stat().st_size / 2**20, 1),
                     "save s": round(wrote, 2), "read s": round(got["seconds"], 2),
                     "private memory growth MiB": round(got["anon_mib"], 1)})
    return rows


def progress_row(n_sequences: int = 400, repeats: int = 3) -> dict:
    """Best of ``repeats`` alternated fits with bars off and on (the machine is shared: the minimum is the least
    disturbed run)."""
    from pathways.models import HawkesExpKernel
    from pathways.progress import use_progress
    from pathways.synthetic import simulate_hawkes

    data = simulate_hawkes(np.full(6, 0.1), np.full((6, 6), 0.1), end=300.0, n_sequences=n_sequences, seed=0)
    times = {}
    null = open(os.devnull, "w")
    for setting in (False, True) * repeats:
        stderr, sys.stderr = sys.stderr, null  # the bars go nowhere: their cost is what is measured
        try:
            with use_progress(setting):
                t0 = time.perf_counter()
                HawkesExpKernel(decay=1.0, max_iter=100, tol=1e-300).fit(data)
                times.setdefault(setting, []).append(time.perf_counter() - t0)
        finally:
            sys.stderr = stderr
    off, on = min(times[False]), min(times[True])
    return {"loop": f"Hawkes EM, 100 iterations, {data.n_events} events", "bars off s": round(off, 3),
            "bars on s": round(on, 3), "on / off": round(on / off, 3)}


def _table(rows: list[dict]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=400)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "checkpoint_io.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = checkpoint_rows(args.mib, Path(tmp))
    prog = progress_row()
    text = (f"# Checkpoint I/O and progress bars (`benchmarks/checkpoint_io.py`)\n\n"
            f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, measured while the machine was shared with other "
            f"jobs (same-run comparisons; absolute times are pessimistic). torch {torch.__version__}.\n\n"
            f"## Checkpoints ({args.mib} MiB of float32 weights)\n\n{_table(ckpt)}\n\n"
            f"## Progress bars\n\n{_table([prog])}\n")
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
