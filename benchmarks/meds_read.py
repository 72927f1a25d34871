"""Reading 10 M events into an EventLog: MEDS shards (``pathways.io.read_meds``) against ``EventLog.read_parquet``.

Run: ``python benchmarks/meds_read.py [--events 10000000] [--repeats 3]``; prints a markdown table and writes it
to ``benchmarks/results/meds_read.md``.

Protocol: one synthetic log (day-resolution times over 8 years, 500 codes, ~40 events per patient, string patient
ids, a category per event, values on a quarter of the events) written by ``EventLog.to_parquet`` (format 2:
dictionary-encoded string ids and codes, patients and codes beside it), by the writer of pathways 0.1 (format 1:
integer codes, the reader's path before this change) and by ``write_meds`` (1 M-row shards). Each reader runs
``--repeats`` times, alternating, in this process; the best wall time of each is reported, with the ratio of MEDS
to the faster parquet reader. Every result is checked equal to the written log before timing counts.
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pathways.data import EventLog, Vocabulary
from pathways.data.parquet import write_parquet_format1
from pathways.io import read_meds, write_meds

RESULTS = Path(__file__).resolve().parent / "results" / "meds_read.md"


def synthetic_log(n_events: int, seed: int = 0) -> EventLog:
    rng = np.random.default_rng(seed)
    n_patients, n_codes = max(1, n_events // 40), 500
    patient = np.sort(rng.integers(0, n_patients, n_events))
    time_ = np.floor(rng.uniform(16_000, 19_000, n_events))
    code = rng.integers(0, n_codes, n_events)
    value = np.where(rng.random(n_events) < 0.25, rng.integers(1, 100, n_events).astype(float), np.nan)
    patients = pd.DataFrame({"patient_id": [f"P{i:08d}" for i in range(n_patients)],
                             "birth": rng.integers(-20_000, 10_000, n_patients).astype(float),
                             "sex": pd.Categorical(rng.choice(["F", "M"], n_patients), categories=["F", "M"])})
    category = pd.Categorical.from_codes((code >= 250).astype(int), ["diagnosis", "drug"])
    vocab = Vocabulary([f"C{i:04d}" for i in range(n_codes)])
    return EventLog.from_arrays(patient, time_, code, vocab, patients, value=value, category=category)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    log = synthetic_log(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        parquet, old, meds = Path(tmp) / "log.parquet", Path(tmp) / "old.parquet", Path(tmp) / "meds"
        readers = {"EventLog.read_parquet, format 2 (this version)": (lambda: log.to_parquet(parquet),
                                                                      lambda: EventLog.read_parquet(parquet)),
                   "EventLog.read_parquet, format 1 (pathways 0.1)": (lambda: write_parquet_format1(log, old),
                                                                      lambda: EventLog.read_parquet(old)),
                   "pathways.io.read_meds": (lambda: write_meds(log, meds), lambda: read_meds(meds))}
        writes = {name: best_of(write, 1) for name, (write, _) in readers.items()}
        for _, read in readers.values():
            back = read()
            for field in ("patient", "time", "code", "end", "value"):
                assert np.array_equal(getattr(back, field), getattr(log, field), equal_nan=True), field
        reads: dict[str, list[float]] = {name: [] for name in readers}
        for _ in range(args.repeats):  # alternate, so all see the same machine load
            for name, (_, read) in readers.items():
                reads[name].append(best_of(read, 1))
    rows = [(name, min(reads[name]), writes[name]) for name in readers]
    t_meds = reads["pathways.io.read_meds"]
    t_parquet = min(min(v) for k, v in reads.items() if k != "pathways.io.read_meds")
    lines = [(f"Reading {log.n_events:,} events ({log.n_patients:,} patients, {log.n_codes} codes) into an EventLog; "
              f"best of {args.repeats}, {platform.processor() or platform.machine()}, "
              f"python {platform.python_version()}."),
             "", "| reader | read s | events/s | write s |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {t:.2f} | {log.n_events / t:,.0f} | {w:.1f} |" for name, t, w in rows]
    lines += ["", (f"read_meds / fastest read_parquet time ratio: {min(t_meds) / t_parquet:.2f} "
                   "(below 1: MEDS reads faster)")]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.write_text("# MEDS read benchmark\n\n`python benchmarks/meds_read.py`\n\n" + text)


if __name__ == "__main__":
    main()
