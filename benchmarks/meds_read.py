"""Reading 10 M events into an EventLog: MEDS shards (``pathways.io.read_meds``) against ``EventLog.read_parquet``.

Run: ``python benchmarks/meds_read.py [--events 10000000] [--repeats 3]``; prints a markdown table and puts it at
the top of ``benchmarks/results/meds_read.md`` (earlier runs kept below it).

Protocol: one synthetic log (day-resolution times over 8 years, 500 codes, ~40 events per patient, string patient
ids, a category per event, values on a quarter of the events) written by ``EventLog.to_parquet`` (format 2:
dictionary-encoded string ids and codes, patients and codes beside it), by the writer of pathways 0.1 (format 1:
integer codes, the reader's path before this change) and by ``write_meds`` (1 M-row shards), read by
``read_meds`` with its default thread pool (one thread per CPU) and with ``workers=1``. Each reader runs
``--repeats`` times, alternating, in this process; the best wall time and the best CPU time (process time: all the
reader's threads, pyarrow's included) of each are reported, with the ratios of MEDS to the faster parquet reader,
and the load average at the start and the end of the run. Every result is checked equal to the written log
(events, category, patients) before timing counts.
"""
from __future__ import annotations

import argparse
import os
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


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the whole process) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


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
                   "pathways.io.read_meds": (lambda: write_meds(log, meds), lambda: read_meds(meds)),
                   # the same files, one shard at a time (pyarrow's own decoding threads on): the thread pool's share
                   "pathways.io.read_meds, workers=1": (lambda: None, lambda: read_meds(meds, workers=1))}
        writes = {name: timed(write)[0] for name, (write, _) in readers.items()}
        for _, read in readers.values():
            back = read()
            for field in ("patient", "time", "code", "end", "value"):
                assert np.array_equal(getattr(back, field), getattr(log, field), equal_nan=True), field
            assert np.array_equal(np.asarray(back.category, object), np.asarray(log.category, object))
            pd.testing.assert_frame_equal(back.patients, log.patients, check_dtype=False)
        load = os.getloadavg()[0]
        reads: dict[str, list[tuple[float, float]]] = {name: [] for name in readers}
        for _ in range(args.repeats):  # alternate, so all see the same machine load
            for name, (_, read) in readers.items():
                reads[name].append(timed(read))
        load_end = os.getloadavg()[0]
    best = {name: (min(w for w, _ in v), min(c for _, c in v)) for name, v in reads.items()}
    meds = best["pathways.io.read_meds"]
    parquet = [v for k, v in best.items() if k.startswith("EventLog.read_parquet")]
    one = best["pathways.io.read_meds, workers=1"]
    lines = [(f"Reading {log.n_events:,} events ({log.n_patients:,} patients, {log.n_codes} codes) into an EventLog; "
              f"best of {args.repeats}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
              f"python {platform.python_version()}; load average {load:.1f} at the start, {load_end:.1f} at the end."),
             "", "| reader | read s (wall) | events/s | read CPU s | write s |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {name} | {w:.2f} | {log.n_events / w:,.0f} | {c:.2f} | "
              f"{'' if name.endswith('workers=1') else f'{writes[name]:.1f}'} |" for name, (w, c) in best.items()]
    lines += ["", (f"read_meds / fastest read_parquet: wall {meds[0] / min(w for w, _ in parquet):.2f}, "
                   f"CPU {meds[1] / min(c for _, c in parquet):.2f} (below 1: MEDS reads faster); with workers=1: "
                   f"wall {one[0] / min(w for w, _ in parquet):.2f}, CPU {one[1] / min(c for _, c in parquet):.2f}")]
    text = "\n".join(lines) + "\n"
    print(text)
    header = "# MEDS read benchmark\n\n`python benchmarks/meds_read.py`\n\n"
    earlier = RESULTS.read_text().removeprefix(header) if RESULTS.exists() else ""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    RESULTS.write_text(header + f"## Run of {stamp}\n\n" + text + ("\n" + earlier if earlier else ""))


if __name__ == "__main__":
    main()
