"""National scale: SNDS claim lines through Spark ``local[2]`` and DuckDB, then sharded dataset -> sparse series
-> disproportionality for all pairs in bounded memory.

Run: ``python benchmarks/scale.py [--patients 20000] [--events 10000000]``; prints markdown tables and writes
``benchmarks/results/scale.md`` (rewritten after each stage, so a long run leaves the stages it finished).

At 100 M claim lines (about 1.5 M patients): ``--work DIR`` keeps the raw tables and each engine's output in DIR
(tables reused by the next run with the same patients and years), ``--engines`` picks the engines of this run and
``--check shards`` compares the EventLogs shard by shard (the DuckDB EventLog and one Spark shard in memory, not
both whole EventLogs): ``--patients 1500000 --work /big/scale --engines duckdb``, then ``--engines spark``, then
``--engines --check shards``.

Protocol.
1. Readers: ``write_snds`` raw tables (parquet) of ``--patients`` beneficiaries over ``--years``; each engine runs
   in its own process (``read_snds`` for DuckDB; ``write_snds_dataset`` on ``local[2]``, then the dataset read
   back, for Spark) while this process samples the resident memory of the whole process tree (driver JVM and
   Python together) every 0.2 s. Claim lines = rows of ER_PRS_F + ER_PHA_F + ER_CAM_F + T_MCO*; rows/s = claim
   lines / read time. The two EventLogs are checked equal (events, patients, report counts) before numbers count:
   ``full`` loads both whole; ``shards`` loads the DuckDB EventLog and compares each Spark shard with its patients'
   part of it (the same events, order, patients and vocabulary; the shards together hold every patient and event);
   the check runs in its own measured process too.
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

    import pathways
    from pathways.io import read_snds

    warnings.simplefilter("ignore")
    print(f"pathways from {pathways.__file__}", flush=True)
    t0 = time.perf_counter()
    log, report = read_snds(folder, cip_to_atc=mapping, return_report=True)
    seconds = time.perf_counter() - t0
    log.to_parquet(save)
    report.to_frame().to_parquet(save + ".report.parquet")
    return {"seconds": seconds, "events": log.n_events}


def worker_spark(folder: str, mapping: str, save: str, partitions: str, memory: str, shards: str,
                 scratch: str) -> dict:
    import warnings

    import pathways
    from pathways.io import write_snds_dataset
    from pathways.io.spark import spark_session

    warnings.simplefilter("ignore")
    print(f"pathways from {pathways.__file__}", flush=True)
    spark = spark_session("local[2]", shuffle_partitions=int(partitions),
                          conf={"spark.driver.memory": memory, "spark.local.dir": scratch})
    tracker = spark.sparkContext.statusTracker()
    t0 = time.perf_counter()
    report = write_snds_dataset(folder, save, spark=spark, n_shards=int(shards), cip_to_atc=mapping)
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


def equal_logs(duck_path: str, spark_path: str, mode: str = "full") -> dict:
    """``{"same": "True"}``, or ``"False"`` with the first difference found (the timings are reported either way).

    ``full`` loads both EventLogs whole; ``shards`` loads the DuckDB EventLog and compares each Spark shard with
    the DuckDB EventLog restricted to the shard's patients (in the shard's order), then checks that the shards
    together hold every patient and event once."""
    sys.path.insert(0, str(ROOT))
    from pathways.data import EventLog
    from pathways.data.dataset import EventDataset
    from tests.io.spark_fixtures import assert_same_eventlog, assert_same_report

    duck, data = EventLog.read_parquet(duck_path), EventDataset(spark_path)
    out = {"events": duck.n_events, "patients": duck.n_patients}
    spark = duck
    try:
        if mode == "full":
            spark = data.to_eventlog()
            assert_same_eventlog(duck, spark)
        else:
            assert data.vocab == duck.vocab, "vocabularies differ"
            where = pd.Index(duck.patients["patient_id"])
            n_events = n_patients = 0
            for k in data.shard_ids():
                spark = data.shard(k)
                index = where.get_indexer(spark.patients["patient_id"])
                assert (index >= 0).all(), f"shard {k}: {int((index < 0).sum())} patients absent from DuckDB's"
                part = duck.select_patients(index)
                part.patients = part.patients.reset_index(drop=True)
                assert_same_eventlog(part, spark)
                n_events, n_patients = n_events + spark.n_events, n_patients + spark.n_patients
            out["shards"] = len(data.shard_ids())
            assert (n_events, n_patients) == (duck.n_events, duck.n_patients), (
                f"shards hold {n_events} events of {n_patients} patients, DuckDB {duck.n_events} of {duck.n_patients}")
        report = pd.read_parquet(spark_path + ".report.parquet")
        assert_same_report(pd.read_parquet(duck_path + ".report.parquet"), report)
    except AssertionError as exc:
        diffs = [name for name in duck.extras if name in spark.extras and len(duck.extras[name]) ==
                 len(spark.extras[name]) and not pd.Series(duck.extras[name]).equals(pd.Series(spark.extras[name]))]
        first = " ".join(str(exc).split())[:300]
        out["same"] = f"False (extras differing: {diffs}; {first})"
        return out
    out["same"] = "True"
    return out


def worker_check(duck_path: str, spark_path: str, mode: str) -> dict:
    t0 = time.perf_counter()
    out = equal_logs(duck_path, spark_path, mode)
    return {**out, "seconds": time.perf_counter() - t0}


def _write_chunks(folder: str, n_patients: int, years: list[int], chunks: list[int]) -> None:
    from pathways.synthetic.snds import write_snds

    write_snds(folder, n_patients, years=tuple(years), seed=0, chunks=chunks, truth_events=False)


def snds_tables(folder: Path, n_patients: int, years: list[int], workers: int) -> tuple[int, float, bool]:
    """``write_snds`` tables in ``folder`` (``workers`` processes, each a share of the chunks; the output does not
    depend on the split), reused when ``folder/scale_tables.json`` says they were written for the same patients
    and years. Returns (claim lines, seconds it took to write them, reused)."""
    import multiprocessing as mp

    marker = folder / "scale_tables.json"
    if marker.exists():
        meta = json.loads(marker.read_text())
        if meta["patients"] == n_patients and meta["years"] == years:
            return meta["claim_lines"], meta["seconds"], True
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    n_chunks = -(-n_patients // 20_000)
    t0 = time.perf_counter()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write_chunks, args=(str(folder), n_patients, years, list(range(w, n_chunks, workers))))
             for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode:
            raise SystemExit(f"write_snds worker exited with code {p.exitcode}")
    seconds = time.perf_counter() - t0
    n_lines = claim_lines(folder)
    marker.write_text(json.dumps({"patients": n_patients, "years": years, "claim_lines": n_lines,
                                  "seconds": seconds}))
    return n_lines, seconds, False


class Results:
    """The results file, rewritten with the lines so far after each stage (a long run keeps what it finished)."""

    def __init__(self, append: bool, path: Path = RESULTS):
        self.path = path
        command = " ".join(["`python benchmarks/scale.py", *sys.argv[1:]]) + "`\n\n"
        if append and path.exists():
            self.base = path.read_text() + "\n" + command
        else:
            self.base = "# National scale benchmark\n\n" + command
        self.lines: list[str] = []

    def add(self, *lines: str) -> None:
        self.lines += lines
        self.path.write_text(self.base + "\n".join(self.lines) + "\n")
        print("\n".join(lines), flush=True)


ENGINES = {"duckdb": "DuckDB read_snds", "spark": "Spark local[2] write_snds_dataset"}


def readers(args: argparse.Namespace, work: Path, out: Results) -> None:
    """Claims readers: tables, each engine of ``--engines`` in a measured process, then the equality check."""
    n_lines, gen, reused = snds_tables(work / "snds", args.patients, args.years, args.write_workers)
    mapping = str(next((work / "snds").rglob("IR_PHA_R*")))
    saves = {"duckdb": str(work / "duck.parquet"), "spark": str(work / "spark_ds")}
    how = "reused from an earlier run" if reused else "written now"
    out.add(f"## Claims readers: {n_lines:,} claim lines ({args.patients:,} patients, years {args.years}; "
            f"write_snds took {gen:.0f} s with {args.write_workers} processes, {how})", "",
            f"Spark: local[2], {args.shuffle_partitions} shuffle partitions, driver memory {args.driver_memory}, "
            f"{args.n_shards} shards. Load average (1 min) at start {os.getloadavg()[0]:.1f}.", "",
            "| engine | read s | process wall s | process CPU s | claim lines/s | lines per CPU s | "
            "Spark jobs | peak memory (process tree) | load average (1 min) after |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = {}
    for kind in args.engines:
        extra = ([str(args.shuffle_partitions), args.driver_memory, str(args.n_shards), str(work / "spark_local")]
                 if kind == "spark" else [])
        wall, peak, res = run_measured(["--worker", kind, str(work / "snds"), mapping, saves[kind], *extra])
        rows[kind] = res
        out.add(f"| {ENGINES[kind]} | {res['seconds']:.1f} | {wall:.1f} | {res['cpu_s']:.1f} | "
                f"{n_lines / res['seconds']:,.0f} | {n_lines / res['cpu_s']:,.0f} | {res.get('jobs', '')} | "
                f"{peak / 2**30:.2f} GiB | {os.getloadavg()[0]:.1f} |")
    if len(rows) == 2:
        duck, spark = rows["duckdb"], rows["spark"]
        out.add("", (f"Same run: Spark / DuckDB = {spark['seconds'] / duck['seconds']:.1f}x the read time, "
                     f"{spark['cpu_s'] / duck['cpu_s']:.1f}x the CPU seconds (process CPU includes starting "
                     f"the interpreter and, for Spark, the JVM)."))
    if args.check == "none":
        out.add("", "Spark EventLog == DuckDB EventLog: not checked in this run (--check none).", "")
        return
    if not all(Path(saves[k]).exists() for k in saves):
        out.add("", "Spark EventLog == DuckDB EventLog: not checked (an engine's output is missing).", "")
        return
    wall, peak, res = run_measured(["--worker", "check", saves["duckdb"], saves["spark"], args.check])
    what = ("both EventLogs whole" if args.check == "full" else
            f"the DuckDB EventLog against each of the {res.get('shards')} Spark shards")
    out.add("", (f"Spark EventLog == DuckDB EventLog (events, order, patients, vocabulary, report counts; "
                 f"{res['events']:,} events of {res['patients']:,} patients): {res['same']}. Checked {what}: "
                 f"{res['seconds']:.0f} s, peak memory {peak / 2**30:.2f} GiB, load average after "
                 f"{os.getloadavg()[0]:.1f}."), "")


def streaming(args: argparse.Namespace, work: Path, out: Results) -> None:
    streams = [n for n in args.events if n > 0]
    if not streams:
        return
    out.add("## Sharded dataset -> sparse series -> disproportionality (all pairs)", "",
            "| events | shards | write dataset s | sparse series s | disproportionality s | pairs | peak memory | "
            "process CPU s | load average (1 min) after |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    import shutil

    for n_events in streams:
        path = work / f"stream_{n_events}"
        if path.exists():
            shutil.rmtree(path)
        t0 = time.perf_counter()
        streaming_dataset(path, n_events)
        written = time.perf_counter() - t0
        wall, peak, res = run_measured(["--worker", "stream", str(path)])
        out.add(f"| {n_events:,} | 64 | {written:.0f} | {res['series_s']:.1f} | {res['dispro_s']:.1f} | "
                f"{res['pairs']:,} | {peak / 2**30:.2f} GiB | {res['cpu_s']:.1f} | {os.getloadavg()[0]:.1f} |")
        shutil.rmtree(path)
    out.add("")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--years", type=int, nargs="+", default=[2020, 2021])
    parser.add_argument("--events", type=int, nargs="+", default=[10_000_000])
    parser.add_argument("--skip-readers", action="store_true")
    parser.add_argument("--engines", nargs="*", choices=sorted(ENGINES), default=["duckdb", "spark"],
                        help="engines run now (none: only the check of kept outputs in --work)")
    parser.add_argument("--check", choices=["full", "shards", "none"], default="full",
                        help="EventLog equality: both whole, shard by shard (DuckDB's whole + one shard), or none")
    parser.add_argument("--work", help="keep tables and outputs here (default: a temporary folder, removed)")
    parser.add_argument("--write-workers", type=int, default=2, help="processes writing the write_snds tables")
    parser.add_argument("--shuffle-partitions", type=int, default=4)
    parser.add_argument("--driver-memory", default="3g")
    parser.add_argument("--n-shards", type=int, default=16)
    parser.add_argument("--append", action="store_true", help="add this run to the results file")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the results file")
    parser.add_argument("--worker-out")
    parser.add_argument("--worker", nargs="+")
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        workers = {"duckdb": worker_duckdb, "spark": worker_spark, "stream": worker_stream, "check": worker_check}
        Path(args.worker_out).write_text(json.dumps(workers[kind](*rest)))
        return
    out = Results(args.append, args.results)
    out.add((f"Measured while the machine was shared with other helpers (2 cores, load average "
             f"{os.getloadavg()[0]:.0f}); {platform.machine()}, python {platform.python_version()}."), "")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if not args.skip_readers:
            readers(args, work, out)
        streaming(args, work, out)


if __name__ == "__main__":
    main()
