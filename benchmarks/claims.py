"""Claims ingestion at scale: DCIR-shaped dispensations + PMSI stays on parquet -> EventLog -> limited exposures.

Writes SNDS-shaped parquet tables (``ER_PRS_F`` and ``ER_PHA_F`` with ``--rows`` dispensations joined on the nine
DCIR keys, 1 % information lines; ``T_MCOaaB/C/D/A`` with ``--stays`` stays; ``IR_BEN_R``), then, each in a fresh
process so that peak memory (``ru_maxrss``) is its own:

* **pathways**: ``read_snds`` (DuckDB joins out of core by flux-month ranges of 4 M rows, the default, CIP13 -> ATC
  mapping, dedup, after-death rule) + PMSI stacking, then ``limited_exposures`` (30 days per purchase, 15 days
  grace); the DCIR run is repeated with one join (``join_partition_rows=None``);
* **pyarrow** peer (DCIR only): Acero hash join of the two parquet tables on the nine keys, dictionary encoding of
  ids/codes, ``np.lexsort`` and ``EventLog.from_arrays`` — the plain-Arrow way to the same EventLog;
* **pandas** peer (DCIR only, on the first ``--pandas-rows`` rows: the full size does not fit beside the others
  on this machine): ``read_parquet`` + ``merge`` + ``EventLog.from_pandas``.

Rows/s counts input rows of the tables read (ER_PHA_F + ER_PRS_F + PMSI tables) per wall-clock second, end to end.
The raw-table size is their Arrow in-memory size (fixed-width columns + string bytes + offsets), the smallest
in-memory form of the raw tables.

The DCIR run is repeated with DuckDB ``memory_limit`` values (default 1GB, and 512MB with one thread: at 512MB two
threads' scan and join buffers do not fit and DuckDB stops with an out-of-memory error, which read_snds turns into
an error naming these remedies): joins then spill to disk.

Usage: python benchmarks/claims.py [--rows 10000000] [--stays 1000000] [--memory-limit 1GB,512MB:1] [--dir DIR]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

KEYS = ("DCT_ORD_NUM", "FLX_DIS_DTD", "FLX_EMT_NUM", "FLX_EMT_ORD", "FLX_EMT_TYP", "FLX_TRT_DTD",
        "ORG_CLE_NUM", "PRS_ORD_NUM", "REM_TYP_AFF")
DAY0 = int((pd.Timestamp("2015-01-01") - pd.Timestamp("1970-01-01")).days)
N_DAYS = 6 * 365
CHUNK = 1_000_000


def _ids(n: int, prefix: str) -> np.ndarray:
    """n distinct 17-character identifiers."""
    return np.char.add(prefix, np.char.zfill(np.arange(n).astype(str), 17 - len(prefix))).astype(object)


def _dict(indices: np.ndarray, values: np.ndarray) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32)), pa.array(values.astype(str)))


def _arrow_bytes(n: int, widths: dict[str, float]) -> float:
    """Arrow size of n rows: fixed widths, strings as length + 4 offset bytes."""
    return n * sum(widths.values())


def generate(folder: Path, n_rows: int, n_stays: int, n_patients: int, seed: int = 0) -> dict[str, float]:
    """Write the parquet tables; return {table: rows} and the raw Arrow size in bytes."""
    rng = np.random.default_rng(seed)
    for sub in ("DCIR", "PMSI", "BENEFICIAIRE"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    pids = _ids(n_patients, "P")
    orgs = _ids(100, "O")[:, None].astype(str)[:, 0]
    cips = (3400930000000 + np.arange(500)).astype(np.int64)
    prs_writer = pha_writer = None
    for lo in range(0, n_rows, CHUNK):
        n = min(CHUNK, n_rows - lo)
        patient = rng.integers(0, n_patients, n)
        day = DAY0 + rng.integers(0, N_DAYS, n)
        keys = {
            "DCT_ORD_NUM": pa.array(np.arange(lo, lo + n, dtype=np.int64)),
            "FLX_DIS_DTD": pa.array((day // 30 * 30 + 35).astype(np.int32), pa.date32()),
            "FLX_EMT_NUM": pa.array(rng.integers(1, 20, n, dtype=np.int32)),
            "FLX_EMT_ORD": pa.array(rng.integers(1, 500, n, dtype=np.int32)),
            "FLX_EMT_TYP": pa.array(rng.integers(1, 4, n, dtype=np.int32)),
            "FLX_TRT_DTD": pa.array((day // 30 * 30 + 40).astype(np.int32), pa.date32()),
            "ORG_CLE_NUM": _dict(rng.integers(0, 100, n), orgs),
            "PRS_ORD_NUM": pa.array(rng.integers(1, 6, n, dtype=np.int32)),
            "REM_TYP_AFF": pa.array(rng.integers(1, 4, n, dtype=np.int32)),
        }
        prs = pa.table({
            "BEN_NIR_PSA": _dict(patient, pids.astype(str)), "BEN_RNG_GEM": pa.array(np.ones(n, np.int32)),
            "EXE_SOI_DTD": pa.array(day.astype(np.int32), pa.date32()),
            "DPN_QLF": pa.array(np.where(rng.random(n) < 0.01, 71, 0).astype(np.int32)),
            "PRS_NAT_REF": pa.array(np.full(n, 3317, np.int32)), **keys,
        })
        pha = pa.table({**keys, "PHA_PRS_C13": pa.array(rng.choice(cips, n)),
                        "PHA_ACT_QSN": pa.array(rng.integers(1, 4, n, dtype=np.int32))})
        if prs_writer is None:
            prs_writer = pq.ParquetWriter(folder / "DCIR" / "ER_PRS_F.parquet", prs.schema)
            pha_writer = pq.ParquetWriter(folder / "DCIR" / "ER_PHA_F.parquet", pha.schema)
        prs_writer.write_table(prs)
        pha_writer.write_table(pha)
    prs_writer.close()
    pha_writer.close()
    # PMSI MCO: stays (B), patient link (C), associated diagnoses (D), acts (A)
    eta = rng.integers(100000000, 100000300, n_stays).astype(np.int64)
    rsa = (1000000000 + np.arange(n_stays)).astype(np.int64)
    entry = DAY0 + rng.integers(0, N_DAYS, n_stays)
    icd = np.array([f"{c}{i:02d}" for c in "CEIJK" for i in range(100)])
    pq.write_table(pa.table({"ETA_NUM": eta, "RSA_NUM": rsa, "DGN_PAL": _dict(rng.integers(0, 500, n_stays), icd),
                             "DGN_REL": _dict(rng.integers(0, 500, n_stays), icd),
                             "GRG_GHM": _dict(np.zeros(n_stays, int), np.array(["05M09T"]))}),
                   folder / "PMSI" / "T_MCOaaB.parquet")
    pq.write_table(pa.table({"ETA_NUM": eta, "RSA_NUM": rsa,
                             "NIR_ANO_17": _dict(rng.integers(0, n_patients, n_stays), pids.astype(str)),
                             "EXE_SOI_DTD": pa.array(entry.astype(np.int32), pa.date32()),
                             "EXE_SOI_DTF": pa.array((entry + rng.integers(0, 10, n_stays)).astype(np.int32),
                                                     pa.date32()),
                             "NIR_RET": _dict(np.zeros(n_stays, int), np.array(["0"])),
                             "SEJ_RET": _dict(np.zeros(n_stays, int), np.array(["0"]))}),
                   folder / "PMSI" / "T_MCOaaC.parquet")
    pick = rng.integers(0, n_stays, n_stays)
    pq.write_table(pa.table({"ETA_NUM": eta[pick], "RSA_NUM": rsa[pick],
                             "ASS_DGN": _dict(rng.integers(0, 500, n_stays), icd)}), folder / "PMSI" / "T_MCOaaD.parquet")
    pq.write_table(pa.table({"ETA_NUM": eta[pick], "RSA_NUM": rsa[pick],
                             "CDC_ACT": _dict(rng.integers(0, 50, n_stays), np.array([f"JDFA{i:03d}" for i in range(50)])),
                             "ENT_DAT_DEL": pa.array(np.zeros(n_stays, np.int32))}), folder / "PMSI" / "T_MCOaaA.parquet")
    death = np.where(rng.random(n_patients) < 0.02, DAY0 + rng.integers(0, N_DAYS, n_patients), -1)
    pq.write_table(pa.table({
        "BEN_NIR_PSA": pids.astype(str), "BEN_RNG_GEM": np.ones(n_patients, np.int32),
        "BEN_NAI_ANN": rng.integers(1930, 2010, n_patients).astype(np.int32),
        "BEN_NAI_MOI": rng.integers(1, 13, n_patients).astype(np.int32),
        "BEN_SEX_COD": rng.integers(1, 3, n_patients).astype(np.int32),
        "BEN_DCD_DTE": pa.array(np.where(death < 0, -135140, death).astype(np.int32), pa.date32()),  # 1600-01-01
    }), folder / "BENEFICIAIRE" / "IR_BEN_R.parquet")
    pd.DataFrame({"PHA_CIP_C13": cips.astype(str),
                  "PHA_ATC_C07": [f"N0{i % 7}BE{i % 100:02d}" for i in range(500)]}).to_csv(folder / "IR_PHA_R.csv",
                                                                                          index=False)
    key_w = 8 + 4 + 4 + 4 + 4 + 4 + (9 + 4) + 4 + 4  # the nine keys
    raw = {
        "ER_PRS_F": _arrow_bytes(n_rows, {"pid": 17 + 4, "rng": 4, "date": 4, "qlf": 4, "nat": 4, "keys": key_w}),
        "ER_PHA_F": _arrow_bytes(n_rows, {"keys": key_w, "cip": 8, "qsn": 4}),
        "T_MCOaaB": _arrow_bytes(n_stays, {"eta": 8, "rsa": 8, "dp": 4 + 4, "dr": 4 + 4, "ghm": 6 + 4}),
        "T_MCOaaC": _arrow_bytes(n_stays, {"eta": 8, "rsa": 8, "nir": 17 + 4, "d": 8, "ret": 2 * (1 + 4)}),
        "T_MCOaaD": _arrow_bytes(n_stays, {"eta": 8, "rsa": 8, "dgn": 4 + 4}),
        "T_MCOaaA": _arrow_bytes(n_stays, {"eta": 8, "rsa": 8, "act": 7 + 4, "del": 4}),
        "IR_BEN_R": _arrow_bytes(n_patients, {"pid": 17 + 4, "ints": 16, "date": 4}),
    }
    rows = {"ER_PRS_F": n_rows, "ER_PHA_F": n_rows, "T_MCOaaB": n_stays, "T_MCOaaC": n_stays, "T_MCOaaD": n_stays,
            "T_MCOaaA": n_stays, "IR_BEN_R": n_patients}
    return {"rows": rows, "raw_bytes": raw}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _rss_mb() -> float:
    """Current resident memory (the child's peak may start at the parent's size at fork, so not ru_maxrss)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _limit_threads(setting: str) -> tuple[str, int | None]:
    """'512MB:1' -> ('512MB', 1); '1GB' -> ('1GB', None)."""
    limit, _, threads = setting.partition(":")
    return limit, int(threads) if threads else None


def _label(setting: str) -> str:
    limit, threads = _limit_threads(setting)
    return limit if threads is None else f"{limit}, threads={threads}"


def run_pathways(folder: str, sources: tuple[str, ...], memory_limit: str | None, threads: int | None,
                 queue: mp.Queue, partition_rows: int | None = 4_000_000) -> None:
    warnings.simplefilter("ignore")
    from pathways.cohort import limited_exposures
    from pathways.io import read_snds

    base = _rss_mb()
    c0 = time.process_time()
    t0 = time.perf_counter()
    log = read_snds(folder, sources=sources, cip_to_atc=Path(folder) / "IR_PHA_R.csv", memory_limit=memory_limit,
                    threads=threads, join_partition_rows=partition_rows)
    t1 = time.perf_counter()
    ex = limited_exposures(log, categories=["drug"], duration=30.0, grace=15.0)
    t2 = time.perf_counter()
    queue.put({"read_s": t1 - t0, "exposure_s": t2 - t1, "events": log.n_events, "exposures": ex.events.n_events,
               "peak_mb": _peak_mb(), "base_mb": base, "cpu_s": time.process_time() - c0})


def run_pyarrow(folder: str, queue: mp.Queue) -> None:
    """Plain-Arrow peer for the DCIR join: Acero hash join + dictionary encoding + lexsort + from_arrays."""
    import pyarrow.compute as pc

    from pathways.data import EventLog, Vocabulary

    base = _rss_mb()
    c0 = time.process_time()
    t0 = time.perf_counter()
    prs = pq.read_table(Path(folder) / "DCIR" / "ER_PRS_F.parquet",
                        columns=["BEN_NIR_PSA", "EXE_SOI_DTD", "DPN_QLF", *KEYS])
    prs = prs.filter(pc.not_equal(prs["DPN_QLF"], 71))
    pha = pq.read_table(Path(folder) / "DCIR" / "ER_PHA_F.parquet", columns=[*KEYS, "PHA_PRS_C13", "PHA_ACT_QSN"])
    joined = pha.join(prs, keys=list(KEYS), join_type="inner")
    pid = pc.dictionary_encode(joined["BEN_NIR_PSA"].cast(pa.string())).combine_chunks()
    cip = pc.dictionary_encode(joined["PHA_PRS_C13"]).combine_chunks()
    pid_names = np.asarray(pid.dictionary.to_pylist(), dtype=object)
    order_p = np.argsort(pid_names)
    remap_p = np.empty_like(order_p)
    remap_p[order_p] = np.arange(order_p.size)
    patient = remap_p[pid.indices.to_numpy()]
    codes = np.asarray([f"CIP13:{c}" for c in cip.dictionary.to_pylist()], dtype=object)
    order_c = np.argsort(codes)
    remap_c = np.empty_like(order_c)
    remap_c[order_c] = np.arange(order_c.size)
    code = remap_c[cip.indices.to_numpy()]
    day = joined["EXE_SOI_DTD"].combine_chunks().cast(pa.int32()).to_numpy().astype(np.float64)
    order = np.lexsort((code, day, patient))
    log = EventLog.from_arrays(patient[order], day[order], code[order], Vocabulary(codes[order_c].tolist()),
                               pd.DataFrame({"patient_id": pid_names[order_p]}),
                               value=joined["PHA_ACT_QSN"].to_numpy().astype(float)[order], origin="1970-01-01")
    queue.put({"read_s": time.perf_counter() - t0, "events": log.n_events, "peak_mb": _peak_mb(), "base_mb": base,
               "cpu_s": time.process_time() - c0})


def run_pandas(folder: str, n: int, queue: mp.Queue) -> None:
    """pandas peer on the first n rows: read_parquet + merge on the nine keys + EventLog.from_pandas."""
    warnings.simplefilter("ignore")
    from pathways.data import EventLog

    base = _rss_mb()
    c0 = time.process_time()
    t0 = time.perf_counter()
    prs = pq.ParquetFile(Path(folder) / "DCIR" / "ER_PRS_F.parquet")
    pha = pq.ParquetFile(Path(folder) / "DCIR" / "ER_PHA_F.parquet")
    take = min(max(1, n // CHUNK), pha.num_row_groups)
    prs_df = pd.concat([prs.read_row_group(i, columns=["BEN_NIR_PSA", "EXE_SOI_DTD", "DPN_QLF", *KEYS]).to_pandas()
                        for i in range(take)])
    pha_df = pd.concat([pha.read_row_group(i, columns=[*KEYS, "PHA_PRS_C13", "PHA_ACT_QSN"]).to_pandas()
                        for i in range(take)])
    prs_df = prs_df[prs_df["DPN_QLF"] != 71]
    merged = pha_df.merge(prs_df, on=list(KEYS), how="inner")
    events = pd.DataFrame({"patient_id": merged["BEN_NIR_PSA"].astype(str), "time": merged["EXE_SOI_DTD"],
                           "code": "CIP13:" + merged["PHA_PRS_C13"].astype(str),
                           "value": merged["PHA_ACT_QSN"].astype(float)})
    log = EventLog.from_pandas(events)
    queue.put({"read_s": time.perf_counter() - t0, "events": log.n_events, "rows": len(pha_df),
               "peak_mb": _peak_mb(), "base_mb": base, "cpu_s": time.process_time() - c0})


def _child(target, *args, **kwargs) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue), kwargs=kwargs)
    proc.start()
    while True:  # a child that dies (e.g. out of memory) must stop the benchmark, not hang it
        try:
            result = queue.get(timeout=5)
            break
        except Exception:  # noqa: BLE001 - queue.Empty
            if not proc.is_alive():
                raise RuntimeError(f"{target.__name__}{args}: child process exited with code {proc.exitcode}")
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--stays", type=int, default=1_000_000)
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--pandas-rows", type=int, default=2_000_000)
    parser.add_argument("--dir", default="/tmp/pathways_claims_bench")
    parser.add_argument("--memory-limit", default="1GB,512MB:1",
                        help="comma-separated DuckDB memory_limit[:threads] settings of the bounded runs")
    parser.add_argument("--keep", action="store_true", help="keep the generated parquet files")
    args = parser.parse_args()
    folder = Path(args.dir)
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    meta = generate(folder, args.rows, args.stays, args.patients)
    gen_s = time.perf_counter() - t0
    rows, raw = meta["rows"], meta["raw_bytes"]
    dcir_rows = rows["ER_PRS_F"] + rows["ER_PHA_F"]
    pmsi_rows = sum(rows[t] for t in ("T_MCOaaB", "T_MCOaaC", "T_MCOaaD", "T_MCOaaA"))
    all_rows = dcir_rows + pmsi_rows + rows["IR_BEN_R"]
    dcir_raw = (raw["ER_PRS_F"] + raw["ER_PHA_F"]) / 2**20
    all_raw = sum(raw.values()) / 2**20
    parquet_mb = sum(p.stat().st_size for p in folder.rglob("*.parquet")) / 2**20

    load0 = os.getloadavg()[0]
    full = _child(run_pathways, str(folder), ("dcir_drugs", "mco"), None, None)
    dcir = _child(run_pathways, str(folder), ("dcir_drugs",), None, None)
    one_join = _child(run_pathways, str(folder), ("dcir_drugs",), None, None, partition_rows=None)
    bounded = [(setting, _child(run_pathways, str(folder), ("dcir_drugs",), *_limit_threads(setting)))
               for setting in args.memory_limit.split(",")]
    arrow = _child(run_pyarrow, str(folder))
    pdas = _child(run_pandas, str(folder), args.pandas_rows)

    def line(name, scope, n_rows, res, raw_mb, total_s, extra=""):
        rate = n_rows / total_s
        cpu_rate = n_rows / res["cpu_s"]
        return (f"| {name} | {scope} | {n_rows:,} | {res['events']:,} | {total_s:.1f} | {res['cpu_s']:.1f} | "
                f"{rate / 1e6:.2f} | {cpu_rate / 1e6:.2f} | {res['peak_mb']:,.0f} | {raw_mb:,.0f} | "
                f"{res['peak_mb'] / raw_mb:.2f} | {extra} |")

    full_s = full["read_s"] + full["exposure_s"]
    dcir_s = dcir["read_s"] + dcir["exposure_s"]
    p_rows = 2 * pdas["rows"]
    p_raw = dcir_raw * pdas["rows"] / rows["ER_PHA_F"]
    out = [
        f"# Claims ingestion benchmark\n",
        f"{os.cpu_count()} CPU cores, {args.rows:,} dispensations (ER_PHA_F) + {args.rows:,} ER_PRS_F "
        f"lines, {args.stays:,} stays (B, C, D, A), {args.patients:,} beneficiaries; parquet on disk "
        f"{parquet_mb:,.0f} MiB, generated in {gen_s:.0f} s. Raw = Arrow in-memory size of the tables read. "
        f"Peak = the process's max RSS (Python + libraries + DuckDB), each run in a fresh process "
        f"(resident after imports ~{full['base_mb']:,.0f} MiB; a fresh process's max RSS starts at the parent's "
        f"size when forked, ~{_rss_mb():,.0f} MiB here, below every peak shown). CPU s = process CPU time "
        f"(all threads; DuckDB runs on every core, so CPU s can exceed wall s). Load average {load0:.1f} before "
        f"the runs and {os.getloadavg()[0]:.1f} after (1-minute, {os.cpu_count()} cores): above ~0.5 other jobs shared the "
        f"machine and wall times include waiting for a core.\n",
        "| run | scope | input rows | events | wall s | CPU s | M rows/s (wall) | M rows/s per CPU s | peak MiB | "
        "raw MiB | peak / raw | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        line("pathways read_snds + limited_exposures", "DCIR + PMSI + IR_BEN_R", all_rows, full, all_raw, full_s,
             f"read {full['read_s']:.1f} s, exposures {full['exposure_s']:.1f} s ({full['exposures']:,})"),
        line("pathways read_snds + limited_exposures", "DCIR + IR_BEN_R", dcir_rows + rows["IR_BEN_R"], dcir,
             dcir_raw + raw["IR_BEN_R"] / 2**20, dcir_s,
             f"read {dcir['read_s']:.1f} s, exposures {dcir['exposure_s']:.1f} s"),
        line("same, join_partition_rows=None (one DCIR join)", "DCIR + IR_BEN_R", dcir_rows + rows["IR_BEN_R"],
             one_join, dcir_raw + raw["IR_BEN_R"] / 2**20, one_join["read_s"] + one_join["exposure_s"],
             f"read {one_join['read_s']:.1f} s, exposures {one_join['exposure_s']:.1f} s"),
        *[line(f"same, DuckDB memory_limit={_label(limit)}", "DCIR + IR_BEN_R", dcir_rows + rows["IR_BEN_R"], res,
               dcir_raw + raw["IR_BEN_R"] / 2**20, res["read_s"] + res["exposure_s"],
               f"read {res['read_s']:.1f} s, exposures {res['exposure_s']:.1f} s (joins and sort spill)")
          for limit, res in bounded],
        line("pyarrow join + from_arrays (peer)", "DCIR", dcir_rows, arrow, dcir_raw, arrow["read_s"],
             f"pathways DCIR read is {arrow['read_s'] / dcir['read_s']:.2f}x its speed"),
        line("pandas merge + from_pandas (peer)", f"DCIR, first {pdas['rows']:,}", p_rows, pdas, p_raw,
             pdas["read_s"],
             f"rows/s ratio pathways/pandas {(dcir_rows / dcir['read_s']) / (p_rows / pdas['read_s']):.1f}x"),
    ]
    text = "\n".join(out)
    print(text)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    from pathways.utils import atomic_path

    with atomic_path(results / "claims.md") as tmp:
        tmp.write_text(text + "\n")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
