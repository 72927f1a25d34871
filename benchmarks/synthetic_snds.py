"""Synthetic SNDS generation at scale: rows written per second and peak memory of ``write_snds``.

Writes about ``--rows`` ER_PRS_F lines (with their ER_PHA_F / ER_CAM_F details, IR_BEN_R, IR_IMB_R, KI_CCI_R,
``--years`` of PMSI MCO and the per-chunk truth, expected events off) as parquet, with ``--workers`` processes
each writing a share of the chunks (chunks are independent: same output whatever the split). The number of
patients comes from a pilot run (ER_PRS_F lines per patient-year). Peak memory = max RSS of each worker process
(``ru_maxrss``); the sum over workers is the machine's total. CPU s = user + system time of the workers: rows
per CPU second do not depend on how busy the machine is, and bound what more cores give. Prints a markdown table and writes it to
``benchmarks/results/synthetic_snds.md`` (``--append`` adds the run to the file).

Usage: python benchmarks/synthetic_snds.py [--rows 10000000] [--workers 1] [--years 1] [--chunk-patients 20000]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path


def _worker(folder: str, n_patients: int, years: tuple[int, ...], chunk_patients: int, chunks: list[int],
            queue: mp.Queue) -> None:
    from pathways.synthetic.snds import write_snds

    t0 = time.perf_counter()
    truth = write_snds(folder, n_patients, years=years, seed=0, chunk_patients=chunk_patients, chunks=chunks,
                       truth_events=False)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    queue.put({"rows": truth.meta["rows"], "seconds": time.perf_counter() - t0, "peak_mb": usage.ru_maxrss / 1024.0,
               "cpu_s": usage.ru_utime + usage.ru_stime})


def _run(folder: Path, n_patients: int, years: tuple[int, ...], chunk_patients: int, workers: int) -> dict:
    n_chunks = -(-n_patients // chunk_patients)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(folder), n_patients, years, chunk_patients,
                                               list(range(w, n_chunks, workers)), queue)) for w in range(workers)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode:
            raise RuntimeError(f"worker exited with code {p.exitcode}")
    wall = time.perf_counter() - t0
    rows: dict[str, int] = {}
    for r in results:
        for name, n in r["rows"].items():
            rows[name] = rows.get(name, 0) + n
    return {"rows": rows, "wall": wall, "peaks": [r["peak_mb"] for r in results], "chunks": n_chunks,
            "cpu_s": sum(r["cpu_s"] for r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="target number of ER_PRS_F lines")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--years", type=int, default=1, help="number of years (from 2021 backwards)")
    parser.add_argument("--chunk-patients", type=int, default=20_000)
    parser.add_argument("--dir", default=None, help="output folder (default: a temp folder, removed)")
    parser.add_argument("--append", action="store_true", help="append the table to the results file")
    args = parser.parse_args()
    years = tuple(range(2022 - args.years, 2022))
    root = Path(args.dir or tempfile.mkdtemp(prefix="pathways_snds_bench_"))
    n_pilot = min(args.chunk_patients, 20_000)
    pilot = _run(root / "pilot", n_pilot, years, n_pilot, 1)
    per_patient = pilot["rows"]["ER_PRS_F"] / n_pilot
    n_patients = max(1, round(args.rows / per_patient))
    shutil.rmtree(root / "pilot", ignore_errors=True)
    load0 = os.getloadavg()[0]
    res = _run(root / "out", n_patients, years, args.chunk_patients, args.workers)
    disk = sum(p.stat().st_size for p in (root / "out").rglob("*") if p.is_file()) / 2**20
    rows = res["rows"]
    tables = [t for t in rows if t.isupper()]
    dcir = {t: rows[t] for t in ("ER_PRS_F", "ER_PHA_F", "ER_CAM_F")}
    pmsi = sum(n for t, n in rows.items() if t.startswith("T_MCO"))
    total = sum(rows[t] for t in tables)
    wall = res["wall"]
    text = "\n".join([
        f"### {rows['ER_PRS_F']:,} ER_PRS_F lines, {args.workers} worker(s), {os.cpu_count()} CPU cores\n",
        (f"{n_patients:,} patients ({per_patient:.1f} ER_PRS_F lines per patient over {len(years)} year(s), "
         f"pilot), years {years[0]}-{years[-1]}, {res['chunks']} chunks of {args.chunk_patients:,} patients, "
         f"parquet (snappy) {disk:,.0f} MiB on disk, truth parts included, expected events off. Load average "
         f"{load0:.1f} before and {os.getloadavg()[0]:.1f} after (1 min).\n"),
        ("| ER_PRS_F | ER_PHA_F | ER_CAM_F | PMSI rows (B/C/D/A/UM) | all table rows | wall s | "
         "M ER_PRS_F rows/s | M table rows/s | CPU s (all workers) | M ER_PRS_F rows per CPU s | "
         "peak MiB per worker (max) | peak MiB all workers |"),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        (f"| {dcir['ER_PRS_F']:,} | {dcir['ER_PHA_F']:,} | {dcir['ER_CAM_F']:,} | {pmsi:,} | {total:,} | "
         f"{wall:.1f} | {dcir['ER_PRS_F'] / wall / 1e6:.2f} | {total / wall / 1e6:.2f} | {res['cpu_s']:.0f} | "
         f"{dcir['ER_PRS_F'] / res['cpu_s'] / 1e6:.2f} | {max(res['peaks']):,.0f} | {sum(res['peaks']):,.0f} |"),
    ])
    print(text)
    out = Path(__file__).parent / "results" / "synthetic_snds.md"
    out.parent.mkdir(exist_ok=True)
    head = "# Synthetic SNDS generation benchmark (benchmarks/synthetic_snds.py)\n\n"
    if args.append and out.exists():
        out.write_text(out.read_text().rstrip() + "\n\n" + text + "\n")
    else:
        out.write_text(head + text + "\n")
    if args.dir is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
