"""Reading 10 M events into an EventLog: MEDS shards (``pathways.io.read_meds``) against ``EventLog.read_parquet``.

Run: ``python benchmarks/meds_read.py [--events 10000000] [--repeats 3]``; prints a markdown table and writes it
to ``benchmarks/results/meds_read.md``.

Protocol: one synthetic log (day-resolution times over 8 years, 500 codes, ~40 events per patient, string patient
ids, a category per event, values on a quarter of the events) written once by ``EventLog.to_parquet`` (format 2:
dictionary-encoded string ids and codes, patients and codes beside it) and once by ``write_meds`` (1 M-row shards).
Each reader runs ``--repeats`` times, alternating, in this process; the best wall time of each is reported with
the ratio. Both results are checked equal to the written log before timing counts.
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

from pathways.data import EventLog, Vocabulary  # noqa: E402
from pathways.io import read_meds, write_meds  # noqa: E402

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
        parquet, meds = Path(tmp) / "log.parquet", Path(tmp) / "meds"
        t0 = time.perf_counter()
        log.to_parquet(parquet)
        t_write_parquet = time.perf_counter() - t0
        t0 = time.perf_counter()
        write_meds(log, meds)
        t_write_meds = time.perf_counter() - t0
        for back in (EventLog.read_parquet(parquet), read_meds(meds)):
            assert np.array_equal(back.time, log.time) and np.array_equal(back.code, log.code)
            assert np.array_equal(back.patient, log.patient)
        t_parquet, t_meds = [], []
        for _ in range(args.repeats):  # alternate, so both see the same machine load
            t_parquet.append(best_of(lambda: EventLog.read_parquet(parquet), 1))
            t_meds.append(best_of(lambda: read_meds(meds), 1))
    rows = [("EventLog.read_parquet (format 2)", min(t_parquet), t_write_parquet),
            ("pathways.io.read_meds", min(t_meds), t_write_meds)]
    lines = [f"Reading {log.n_events:,} events ({log.n_patients:,} patients, {log.n_codes} codes) into an EventLog; "
             f"best of {args.repeats}, {platform.processor() or platform.machine()}, python {platform.python_version()}.",
             "", "| reader | read s | events/s | write s |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {t:.2f} | {log.n_events / t:,.0f} | {w:.1f} |" for name, t, w in rows]
    lines += ["", f"read_meds / read_parquet time ratio: {min(t_meds) / min(t_parquet):.2f} "
              f"(below 1: MEDS reads faster)"]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.write_text("# MEDS read benchmark\n\n`python benchmarks/meds_read.py`\n\n" + text)


if __name__ == "__main__":
    main()
