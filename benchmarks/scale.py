"""National scale: SNDS claim lines through Spark ``local[2]`` and DuckDB, then sharded dataset -> sparse series
-> disproportionality for all pairs in bounded memory.

Run: ``python benchmarks/scale.py [--patients 20000] [--events 10000000]``; prints markdown tables and writes
``benchmarks/results/scale.md``.

Protocol.
1. Readers: ``write_snds`` raw tables (parquet) of ``--patients`` beneficiaries over ``--years``; each engine runs
   in its own process (``read_snds`` for DuckDB; ``write_snds_dataset`` on ``local[2]``, then the dataset read
   back, for Spark) while this process samples the resident memory of the whole process tree (driver JVM and
   Python together) every 0.2 s. Claim lines = rows of ER_PRS_F + ER_PHA_F + ER_CAM_F + T_MCO*; rows/s = claim
   lines / wall time. The two EventLogs are checked equal (events, patients, report counts) before numbers count.
2. Streaming: a sharded dataset of ``--events`` synthetic events (64 shards) is encoded shard by shard
   (``iter_sparse_series``) and all (drug, outcome) disproportionality tables are summed shard by shard
   (``sharded_disproportionality``), in a fresh process whose peak resident memory is reported.
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
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "scale.md"


def tree_usage(pid: int, cpu: dict[int, float]) -> int:
    """Resident bytes of a process and all its descendants (from /proc); ``cpu`` gets each one's CPU seconds
    (user + system, all threads) as last seen."""
    total, stack, tick = 0, [pid], os.sysconf("SC_CLK_TCK")
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            cpu[p] = (int(fields[11]) + int(fields[12])) / tick
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack += [int(c) for c in fh.read().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def run_measured(args: list[str]) -> tuple[float, int, dict]:
    """Run this script as a worker; (wall seconds, peak tree RSS bytes, its JSON result). The result gets
    ``cpu_s``: CPU seconds of the whole process tree (driver JVM, Python workers), sampled every 0.2 s."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--worker-out", out, *args])
    peak, cpu = 0, {}
    while proc.poll() is None:
        peak = max(peak, tree_usage(proc.pid, cpu))
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"worker {args} failed ({proc.returncode})")
    result = json.loads(Path(out).read_text())
    result["cpu_s"] = sum(cpu.values())
    os.unlink(out)
    return wall, peak, result


# -- workers -------------------------------------------------------------------------------------------------------
def worker_duckdb(folder: str, mapping: str, save: str) -> dict:
    import warnings

    from pathways.io import read_snds

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    log, report = read_snds(folder, cip_to_atc=mapping, return_report=True)
    seconds = time.perf_counter() - t0
    log.to_parquet(save)
    report.to_frame().to_parquet(save + ".report.parquet")
    return {"seconds": seconds, "events": log.n_events}


def worker_spark(folder: str, mapping: str, save: str) -> dict:
    import warnings

    from pathways.io import write_snds_dataset
    from pathways.io.spark import spark_session

    warnings.simplefilter("ignore")
    spark = spark_session("local[2]", shuffle_partitions=4, conf={"spark.driver.memory": "3g"})
    tracker = spark.sparkContext.statusTracker()
    t0 = time.perf_counter()
    report = write_snds_dataset(folder, save, spark=spark, n_shards=16, cip_to_atc=mapping)
    seconds = time.perf_counter() - t0
    jobs = len(tracker.getJobIdsForGroup(None))
    report.to_frame().to_parquet(save + ".report.parquet")
    spark.stop()
    return {"seconds": seconds, "jobs": jobs}


def worker_stream(dataset: str) -> dict:
    from pathways.data.dataset import EventDataset
    from pathways.encode.sharded import iter_sparse_series
    from pathways.signals.sharded import sharded_disproportionality

    data = EventDataset(dataset)
    t0 = time.perf_counter()
    nnz = sum(int(s.matrix.nnz) for s in iter_sparse_series(data, 30.0))
    t1 = time.perf_counter()
    drugs = [c for c in data.vocab.codes if c.startswith("ATC:")]
    outcomes = [c for c in data.vocab.codes if c.startswith("CIM10:")]
    table = sharded_disproportionality(data, drugs, outcomes, methods=("PRR", "ROR", "IC"))
    t2 = time.perf_counter()
    return {"series_s": t1 - t0, "nnz": nnz, "dispro_s": t2 - t1, "pairs": len(drugs) * len(outcomes),
            "rows": len(table)}


# -- data ----------------------------------------------------------------------------------------------------------
def claim_lines(folder: Path) -> int:
    import pyarrow.dataset as ds

    n = 0
    for name in ("ER_PRS_F", "ER_PHA_F", "ER_CAM_F"):
        n += sum(ds.dataset(p, format="parquet").count_rows() for p in folder.rglob(name) if p.is_dir())
    for p in folder.rglob("T_MCO*"):
        if p.is_dir() and p.name[-1] in "BCDA":
            n += ds.dataset(p, format="parquet").count_rows()
    return n


def streaming_dataset(path: Path, n_events: int, n_shards: int = 64) -> None:
    """A synthetic sharded dataset written shard by shard (never whole in memory): 40 events per patient,
    300 drugs (ATC:), 200 outcomes (CIM10:), 500 other codes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pathways.data.dataset import CODES_FILE, FORMAT_NAME, FORMAT_VERSION, META_FILE
    from pathways.io.spark import shard_of

    codes = np.array([f"ATC:D{i:03d}" for i in range(300)] + [f"CIM10:O{i:03d}" for i in range(200)]
                     + [f"CCAM:X{i:03d}" for i in range(500)], dtype=object)
    n_patients = n_events // 40
    ids = np.array([f"P{i:09d}" for i in range(n_patients)], dtype=object)
    shard = shard_of(ids, n_shards)
    rng = np.random.default_rng(0)
    counts = np.zeros(codes.size, dtype=np.int64)
    for k in range(n_shards):
        people = np.sort(ids[shard == k])
        n = people.size * 40
        pat = np.repeat(np.arange(people.size), 40)
        t = np.floor(rng.uniform(17_000, 18_100, n))
        c = rng.integers(0, codes.size, n)
        order = np.lexsort((c, t, pat))
        pat, t, c = pat[order], t[order], c[order]
        counts += np.bincount(c, minlength=codes.size)
        for sub, table in (("data", pa.table({"patient_id": pa.array(people[pat].tolist()), "time": t,
                                              "end": np.full(n, np.nan), "value": np.full(n, np.nan),
                                              "code": pa.array(codes[c].tolist()),
                                              "category": pa.array(np.where(c < 300, "drug", "diagnosis").tolist())})),
                           ("patients", pa.table({"patient_id": pa.array(people.tolist()),
                                                  "start": np.full(people.size, 17_000.0),
                                                  "end": np.full(people.size, 18_100.0)}))):
            (path / sub / f"shard={k}").mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path / sub / f"shard={k}" / "part-0.parquet")
    (path / "metadata").mkdir(exist_ok=True)
    pq.write_table(pa.table({"code": pa.array(codes.tolist()), "count": counts}), path / CODES_FILE)
    (path / META_FILE).write_text(json.dumps({
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "n_shards": n_shards, "time_unit": "days",
        "origin": "1970-01-01", "categories": ["drug", "diagnosis"], "extras": [], "n_events": int(counts.sum()),
        "n_patients": int(n_patients), "patient_columns": ["patient_id", "start", "end"]}))


def equal_logs(duck_path: str, spark_path: str) -> str:
    """'True', or 'False' with the first difference found (the timings are reported either way)."""
    sys.path.insert(0, str(ROOT))
    from pathways.data import EventLog
    from pathways.data.dataset import EventDataset
    from tests.io.spark_fixtures import assert_same_eventlog, assert_same_report

    duck, spark = EventLog.read_parquet(duck_path), EventDataset(spark_path).to_eventlog()
    try:
        assert_same_eventlog(duck, spark)
        report = pd.read_parquet(spark_path + ".report.parquet")
        assert_same_report(pd.read_parquet(duck_path + ".report.parquet"), report)
    except AssertionError as exc:
        diffs = [name for name in duck.extras if name in spark.extras
                 and not pd.Series(duck.extras[name]).equals(pd.Series(spark.extras[name]))]
        first = " ".join(str(exc).split())[:300]
        return f"False (extras differing: {diffs}; {first})"
    return "True"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--years", type=int, nargs="+", default=[2020, 2021])
    parser.add_argument("--events", type=int, nargs="+", default=[10_000_000])
    parser.add_argument("--skip-readers", action="store_true")
    parser.add_argument("--append", action="store_true", help="add this run to the results file")
    parser.add_argument("--worker-out")
    parser.add_argument("--worker", nargs="+")
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        result = {"duckdb": worker_duckdb, "spark": worker_spark, "stream": worker_stream}[kind](*rest)
        Path(args.worker_out).write_text(json.dumps(result))
        return
    from pathways.synthetic.snds import write_snds

    lines = [(f"Measured while the machine was shared with other helpers (2 cores, load average "
             f"{os.getloadavg()[0]:.0f}); {platform.machine()}, python {platform.python_version()}."), ""]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_readers:
            t0 = time.perf_counter()
            write_snds(tmp / "snds", args.patients, years=tuple(args.years), seed=0, truth_events=False)
            gen = time.perf_counter() - t0
            n_lines = claim_lines(tmp / "snds")
            mapping = str(next((tmp / "snds").rglob("IR_PHA_R*")))
            rows = []
            for kind, save in (("duckdb", str(tmp / "duck.parquet")), ("spark", str(tmp / "spark_ds"))):
                wall, peak, res = run_measured(["--worker", kind, str(tmp / "snds"), mapping, save])
                rows.append((kind, res, wall, peak, os.getloadavg()[0]))
            same = equal_logs(str(tmp / "duck.parquet"), str(tmp / "spark_ds"))
            lines += [(f"## Claims readers: {n_lines:,} claim lines ({args.patients:,} patients, years {args.years}; "
                      f"write_snds took {gen:.0f} s)"), "",
                      "| engine | read s | process wall s | process CPU s | claim lines/s | lines per CPU s | "
                      "Spark jobs | peak memory (process tree) | load average (1 min) after |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
            lines += [f"| {'DuckDB read_snds' if k == 'duckdb' else 'Spark local[2] write_snds_dataset'} | "
                      f"{r['seconds']:.1f} | {w:.1f} | {r['cpu_s']:.1f} | {n_lines / r['seconds']:,.0f} | "
                      f"{n_lines / r['cpu_s']:,.0f} | {r.get('jobs', '')} | {p / 2**30:.2f} GiB | {load:.1f} |"
                      for k, r, w, p, load in rows]
            (_, duck, *_), (_, spark, *_) = rows
            lines += ["", (f"Same run: Spark / DuckDB = {spark['seconds'] / duck['seconds']:.1f}x the read time, "
                           f"{spark['cpu_s'] / duck['cpu_s']:.1f}x the CPU seconds (process CPU includes starting "
                           f"the interpreter and, for Spark, the JVM)."),
                      "", (f"Spark EventLog == DuckDB EventLog (events, order, patients, vocabulary, report counts): "
                           f"{same}."), ""]
        streams = [n for n in args.events if n > 0]
        if streams:
            lines += ["## Sharded dataset -> sparse series -> disproportionality (all pairs)", "",
                      "| events | shards | sparse series s | disproportionality s | pairs | peak memory |",
                      "|---:|---:|---:|---:|---:|---:|"]
        for n_events in streams:
            path = tmp / f"stream_{n_events}"
            streaming_dataset(path, n_events)
            wall, peak, res = run_measured(["--worker", "stream", str(path)])
            lines.append(f"| {n_events:,} | 64 | {res['series_s']:.1f} | {res['dispro_s']:.1f} | {res['pairs']:,} | "
                         f"{peak / 2**30:.2f} GiB |")
            import shutil

            shutil.rmtree(path)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append and RESULTS.exists():
        RESULTS.write_text(RESULTS.read_text() + "\n" + " ".join(["`python benchmarks/scale.py", *sys.argv[1:]]) + "`\n\n"
                           + text)
    else:
        RESULTS.write_text("# National scale benchmark\n\n`python benchmarks/scale.py`\n\n" + text)


if __name__ == "__main__":
    main()
