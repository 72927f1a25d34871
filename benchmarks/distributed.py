"""Distributed benchmark: 1 vs 2 processes (gloo, CPU) for a TPP epoch and a Hawkes fit, and a sharded Hawkes
least-squares fit over 10^8 events with the peak memory of each process.

* **TPP epoch** -- RMTPP (hidden 64, global batch 512) on simulated 3-code sequences, one epoch: ``Trainer(strategy="single")``
  in one process against ``strategy="ddp"`` on two processes (same global batches, each process one torch thread).
* **Hawkes fit** -- ``HawkesExpKernel`` likelihood fit (least-squares warm start, then SQUAREM EM) on simulated
  patients: one process against :func:`pathways.models.hawkes.distributed.fit_sharded` on two.
* **TPP epoch from shards** -- the same RMTPP, one epoch, trained with
  :func:`pathways.models.sharded.fit_from_shards` from an :class:`~pathways.data.dataset.EventDataset` of
  ``--shard-tpp-shards`` parquet shards (``--shard-tpp-sequences`` simulated sequences, written first by a separate
  process): 1 process against 2 (each reads only its shards, one at a time), beside one process holding the same
  data in memory (``model.fit(EventLog)``). Epoch seconds are the Trainer's (reading and encoding the shards
  included); the fit seconds add the first pass over the shards (learned attributes, sample counts).
* **SCCS** -- a classic :class:`~pathways.models.sccs.SCCS` fit (two risk windows per exposure, profile intervals)
  on ``--sccs-cases`` simulated cases: one process against
  :func:`pathways.models.sccs.distributed.fit_sharded` on two (each holds half the cases); and a
  :class:`~pathways.models.sccs.ConvSCCS` fit with ``--conv-bootstrap`` bootstrap replicates (batches of 4) on
  ``--conv-cases`` cases: one process against :func:`~pathways.models.sccs.distributed.fit_split` on two (every
  process holds all cases and fits the full model; the replicate batches are split). "events" counts the outcomes.
* **10^8 events** -- :func:`~pathways.models.hawkes.distributed.fit_least_squares_streaming` on two processes; each
  simulates its shards (``--shard-events`` events each, seeded by shard number) and adds their least-squares
  statistics, one shard in memory at a time. Peak memory is each process's maximum resident set size.

Throughput is events per wall second; scaling efficiency is ``T1 / (2 T2)`` (1.0 = perfect); the notes add the CPU
seconds of each process (wall time on a shared machine also counts waiting for a core). Processes start by ``fork``
with one torch thread each, so 1 and 2 processes use 1 and 2 cores; ``torch._dynamo``, which DDP imports once per
process, is imported before forking.

Run: ``python benchmarks/distributed.py [--large-events 100000000] [--tasks tpp hawkes sccs shards large] [--quick]``;
the table is printed and saved to ``benchmarks/results/distributed.md`` (with ``--tasks``, the rows measured replace
their namesakes there and the others are kept).
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pathways.data.dataset import EventDataset, write_event_dataset
from pathways.data.eventlog import EventLog
from pathways.data.vocabulary import Vocabulary
from pathways.encode.sequences import to_sequences
from pathways.models.hawkes import HawkesExpKernel
from pathways.models.hawkes.distributed import fit_least_squares_streaming, fit_sharded
from pathways.models.sccs import SCCS, ConvSCCS
from pathways.models.sccs import distributed as sccs_distributed
from pathways.models.sharded import fit_from_shards
from pathways.models.tpp import RMTPP
from pathways.synthetic import simulate_hawkes
from pathways.synthetic.sccs import simulate_sccs
from pathways.training import Trainer
from pathways.utils import atomic_path

D = 5
MU, ADJ = np.full(D, 0.05), np.full((D, D), 0.1)  # spectral radius 0.5, ~180 events per patient-year


def tpp_data(n: int):
    return simulate_hawkes(np.array([0.3, 0.2, 0.1]), np.array([[0.2, 0, 0.1], [0.3, 0.1, 0], [0, 0.2, 0.2]]),
                           end=100.0, n_sequences=n, seed=1)


def hawkes_data(n: int, seed: int = 0):
    return simulate_hawkes(MU, ADJ, end=365.0, n_sequences=n, seed=seed)


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def tpp_epoch(seqs, strategy: str) -> tuple[float, float]:
    torch.manual_seed(0)
    model = RMTPP(hidden_size=64, batch_size=512, max_epochs=1, patience=None, device="cpu")
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(seqs, trainer=Trainer(device="cpu", progress=False, loggers=(), strategy=strategy))
    return time.perf_counter() - t0, time.process_time() - c0, model.history_[-1]["train_loss"]


def hawkes_fit(seqs, sharded: bool) -> tuple[float, float, float]:
    model = HawkesExpKernel(decay=1.0, max_iter=100)
    t0, c0 = time.perf_counter(), time.process_time()
    fit_sharded(model, seqs) if sharded else model.fit(seqs)
    return time.perf_counter() - t0, time.process_time() - c0, model.objective_


def sccs_data(n: int, seed: int = 0):
    """Three exposures (a 5-bucket effect after a 1-bucket delay, an early 10-bucket effect, none), 120 buckets."""
    truth = np.stack([np.r_[np.zeros(1), np.full(5, 0.7), np.zeros(14)], np.r_[np.full(10, 0.3), np.zeros(10)],
                      np.zeros(20)])
    return simulate_sccs(n, 120, truth, exposure_prob=0.5, seed=seed)


def sccs_fit(args: dict, rank: int, world: int) -> tuple[float, ...]:
    """(wall, CPU s, coefficients, outcomes) of the classic SCCS fit, the cases sharded over the processes."""
    data = sccs_data(args["sccs_cases"])
    model = SCCS(risk_windows=[[0, 4], [5, 14]])
    t0, c0 = time.perf_counter(), time.process_time()
    if world > 1:
        mine = np.arange(rank * data.n_cases // world, (rank + 1) * data.n_cases // world)
        sccs_distributed.fit_sharded(model, data.subset(mine))
    else:
        model.fit(data)
    return time.perf_counter() - t0, time.process_time() - c0, model.coef_, float(data.outcome_count.sum())


def conv_bootstrap(args: dict, world: int) -> tuple[float, ...]:
    """(wall, CPU s, interval bounds, outcomes) of the ConvSCCS fit with its bootstrap, replicates split."""
    data = sccs_data(args["conv_cases"], seed=1)
    conv = ConvSCCS(n_lags=19, C_tv=100.0, n_bootstrap=args["conv_bootstrap"], bootstrap_batch=4)
    t0, c0 = time.perf_counter(), time.process_time()
    sccs_distributed.fit_split(conv, data) if world > 1 else conv.fit(data)
    return (time.perf_counter() - t0, time.process_time() - c0, np.r_[conv.ci_low_, conv.ci_high_],
            float(data.outcome_count.sum()))


def write_tpp_shards(n: int, n_shards: int, path: str) -> int:
    """The TPP sequences as an event dataset of ``n_shards`` shards (patients dealt round-robin); its event count."""
    seqs = tpp_data(n)
    ids = np.array([f"S{i:07d}" for i in range(len(seqs))], dtype=object)
    patients = pd.DataFrame({"patient_id": ids, "start": seqs.start, "end": seqs.end})
    log = EventLog.from_arrays(np.repeat(np.arange(len(seqs)), seqs.lengths), seqs.times, seqs.marks,
                               Vocabulary(["a", "b", "c"], np.bincount(seqs.marks, minlength=3)), patients)
    write_event_dataset(log, path, n_shards, np.arange(len(seqs)) % n_shards)
    return int(log.n_events)


def tpp_from_shards(path: str, strategy: str, in_memory: bool) -> tuple[float, ...]:
    """(fit wall s, fit CPU s, epoch wall s, train loss per event, CPU s of one read of every shard) of one RMTPP
    epoch from the shards (or in memory: the read is that of the whole log, before the fit)."""
    torch.manual_seed(0)
    model = RMTPP(hidden_size=64, batch_size=512, max_epochs=1, patience=None, device="cpu")
    trainer = Trainer(device="cpu", progress=False, loggers=(), strategy=strategy)
    data = EventDataset(path)
    c0 = time.process_time()
    if in_memory:
        log = data.to_eventlog()
    elif strategy == "single":  # what one pass over the shards costs: the fit reads them twice (counts, epoch)
        for k in data.shard_ids():
            to_sequences(data.shard(k))
    read = time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(log, trainer=trainer) if in_memory else fit_from_shards(model, data, trainer=trainer)
    return (time.perf_counter() - t0, time.process_time() - c0, model.history_[-1]["seconds"],
            model.history_[-1]["train_loss"], read)


def large_fit(rank: int, world: int, total: int, shard_events: int, out: str) -> None:
    """This rank's shards: simulated on the fly (timed apart), then added to the least-squares statistics."""
    per_patient = 182.0  # expected events of one simulated patient-year
    n_shards = max(round(total / shard_events), world)
    mine = list(range(rank, n_shards, world))
    times = {"simulate": 0.0, "events": 0}

    def shard(i: int):
        def read():
            t0 = time.perf_counter()
            seqs = hawkes_data(int(shard_events / per_patient), seed=1000 + i)
            times["simulate"] += time.perf_counter() - t0
            times["events"] += seqs.n_events
            return seqs
        return read

    t0 = time.perf_counter()
    model = fit_least_squares_streaming(HawkesExpKernel(decay=1.0, fit_method="least-squares"),
                                        [shard(i) for i in mine])
    wall = time.perf_counter() - t0
    torch.save({"wall": wall, "simulate": times["simulate"], "events_rank": times["events"],
                "events_total": model.n_events_fit_, "peak": peak_gib(), "objective": model.objective_,
                "adjacency": model.adjacency_}, os.path.join(out, f"large{rank}.pt"))


def worker(rank: int, world: int, init: str, out: str, task: str, args: dict) -> None:
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    try:
        if task == "write":
            result = write_tpp_shards(args["shard_tpp_sequences"], args["shard_tpp_shards"], args["shards_path"])
        elif task in ("shards", "memory"):
            result = tpp_from_shards(args["shards_path"], "ddp" if world > 1 else "single", task == "memory")
        elif task == "tpp":
            result = tpp_epoch(tpp_data(args["tpp_sequences"]), "ddp" if world > 1 else "single")
        elif task == "sccs":
            result = sccs_fit(args, rank, world)
        elif task == "conv":
            result = conv_bootstrap(args, world)
        elif task == "hawkes":
            seqs = hawkes_data(args["hawkes_patients"])
            part = seqs[rank * len(seqs) // world:(rank + 1) * len(seqs) // world]
            result = hawkes_fit(part, sharded=world > 1)
        else:
            large_fit(rank, world, args["large_events"], args["shard_events"], out)
            return
        torch.save({"result": result, "peak": peak_gib()}, os.path.join(out, f"{task}{world}_{rank}.pt"))
    finally:
        if world > 1:
            dist.destroy_process_group()


def launch(task: str, world: int, args: dict, out: str) -> list[dict]:
    init = os.path.join(out, f"init_{task}_{world}")
    mp.start_processes(worker, args=(world, init, out, task, args), nprocs=world, join=True, start_method="fork")
    if task == "large":
        return [torch.load(os.path.join(out, f"large{r}.pt"), weights_only=False) for r in range(world)]
    return [torch.load(os.path.join(out, f"{task}{world}_{r}.pt"), weights_only=False) for r in range(world)]


TASKS = ("tpp", "hawkes", "sccs", "shards", "large")
HEADER = ("| workload | events | 1 proc s | 2 procs s | 1 proc events/s | 2 procs events/s | scaling efficiency "
          "| peak GiB per process (1 / 2 procs) | notes |\n|---|---|---|---|---|---|---|---|---|\n")


def load_text() -> str:
    return ", ".join(f"{v:.1f}" for v in os.getloadavg())


def in_memory_rows(args: dict, out: str) -> list[tuple[str, ...]]:
    rows = []
    tpp_events = tpp_data(args["tpp_sequences"]).n_events if "tpp" in args["tasks"] else 0
    hawkes_events = hawkes_data(args["hawkes_patients"]).n_events if "hawkes" in args["tasks"] else 0
    for task, events in (("tpp", tpp_events), ("hawkes", hawkes_events)):
        if task not in args["tasks"]:
            continue
        one = launch(task, 1, args, out)[0]
        two = launch(task, 2, args, out)
        t1, c1, v1 = one["result"]
        t2, c2 = max(r["result"][0] for r in two), max(r["result"][1] for r in two)
        what = "train loss per event" if task == "tpp" else "objective"
        note = (f"{what} 1 proc {v1:.10f}, 2 procs {two[0]['result'][2]:.10f}; CPU s per process "
                f"{c1:.2f} (1 proc), {c2:.2f} (2 procs): CPU-time efficiency {c1 / (2 * c2):.2f}")
        label = "RMTPP epoch" if task == "tpp" else "HawkesExpKernel likelihood fit"
        rows.append((label, f"{events:,}", f"{t1:.2f}", f"{t2:.2f}", f"{events / t1:,.0f}",
                     f"{events / t2:,.0f}", f"{t1 / (2 * t2):.2f}",
                     f"{one['peak']:.2f} / {max(r['peak'] for r in two):.2f}", note))
        print(rows[-1], flush=True)
    return rows


def sccs_rows(args: dict, out: str) -> list[tuple[str, ...]]:
    """Classic SCCS (cases sharded) and ConvSCCS bootstrap (replicates split), 1 vs 2 processes."""
    rows = []
    for task, label, what in (("sccs", "classic SCCS fit, cases sharded", "coefficients"),
                              ("conv", f"ConvSCCS fit + {args['conv_bootstrap']} bootstrap replicates, replicates "
                                       "split", "interval bounds")):
        one, two = launch(task, 1, args, out)[0]["result"], [r["result"] for r in launch(task, 2, args, out)]
        t1, c1, t2, c2 = one[0], one[1], max(r[0] for r in two), max(r[1] for r in two)
        events = one[3]
        diff = max(float(np.max(np.abs(r[2] - one[2]))) for r in two)
        note = (f"max abs difference of the {what}, 2 procs vs 1: {diff:.1e}; CPU s per process {c1:.2f} (1 proc), "
                f"{c2:.2f} (2 procs): CPU-time efficiency {c1 / (2 * c2):.2f}; load average {load_text()}")
        rows.append((label, f"{events:,.0f}", f"{t1:.2f}", f"{t2:.2f}", f"{events / t1:,.0f}", f"{events / t2:,.0f}",
                     f"{t1 / (2 * t2):.2f}", "", note))
        print(rows[-1], flush=True)
    return rows


def shard_rows(args: dict, out: str) -> list[tuple[str, ...]]:
    """RMTPP epoch from shards, 1 vs 2 processes, beside the same data in memory (one process)."""
    args = {**args, "shards_path": os.path.join(out, "tpp_shards")}
    events = launch("write", 1, args, out)[0]["result"]
    memory = launch("memory", 1, args, out)[0]
    one = launch("shards", 1, args, out)[0]
    two = launch("shards", 2, args, out)
    e1, e2 = one["result"][2], max(r["result"][2] for r in two)
    c1, c2 = one["result"][1], max(r["result"][1] for r in two)
    peak1, peak2 = one["peak"], max(r["peak"] for r in two)
    note = (f"{args['shard_tpp_shards']} shards; epoch s (reading included); fit s 1 proc {one['result'][0]:.2f}, "
            f"2 procs {max(r['result'][0] for r in two):.2f} (first pass over the shards included); fit CPU s per "
            f"process {c1:.2f} / {c2:.2f}: CPU-time efficiency {c1 / (2 * c2):.2f}; one read of every shard (parquet "
            f"to Sequences) {one['result'][4]:.2f} CPU s; same data in memory, 1 proc: epoch "
            f"{memory['result'][2]:.2f} s, fit CPU {memory['result'][1]:.2f} s (reading the whole log before it: "
            f"{memory['result'][4]:.2f} CPU s), peak {memory['peak']:.2f} GiB; "
            f"train loss per event: shards 1 proc {one['result'][3]:.6f}, 2 procs {two[0]['result'][3]:.6f}, "
            f"in memory {memory['result'][3]:.6f} (other batches); the forking parent (interpreter, torch) peaks at "
            f"{peak_gib():.2f} GiB; load average {load_text()}")
    row = ("RMTPP epoch from shards", f"{events:,}", f"{e1:.2f}", f"{e2:.2f}", f"{events / e1:,.0f}",
           f"{events / e2:,.0f}", f"{e1 / (2 * e2):.2f}", f"{peak1:.2f} / {peak2:.2f}", note)
    print(row, flush=True)
    return [row]


def large_rows(args: dict, out: str) -> list[tuple[str, ...]]:
    large = launch("large", 2, args, out)
    total = large[0]["events_total"]
    wall = max(r["wall"] for r in large)
    sim = max(r["simulate"] for r in large)
    peak = max(r["peak"] for r in large)
    same = np.allclose(large[0]["adjacency"], large[1]["adjacency"], rtol=0, atol=0)
    return [("HawkesExpKernel least squares from shards, 2 procs", f"{total:,}", "", f"{wall:.1f}", "",
             f"{total / wall:,.0f}", "", f"- / {peak:.2f}",
             (f"{args['shard_events']:.0e} events per shard; wall includes {sim:.1f} s of simulation per process; "
              f"ranks agree exactly: {same}; peak independent of the total: "
              f"{peak * 2**30 / args['shard_events']:.0f} bytes per event of one shard, interpreter included"))]


def merged(path: Path, rows: list[tuple[str, ...]]) -> list[str]:
    """The table lines of ``path`` with the rows measured now in place of their namesakes (new ones appended)."""
    new = {r[0]: "| " + " | ".join(r) + " |" for r in rows}
    old = [line for line in path.read_text().splitlines() if line.startswith("| ") and "---" not in line
           and not line.startswith("| workload")] if path.exists() else []
    lines = [new.pop(line.split(" | ")[0][2:], line) for line in old]
    return lines + list(new.values())


def main() -> None:
    # DDP's constructor imports torch._dynamo (seconds, once per process): import it before forking so that the
    # epoch timings hold the training, not a one-time import a long run pays once
    import torch._dynamo  # noqa: F401
    parser = argparse.ArgumentParser()
    parser.add_argument("--tpp-sequences", type=int, default=4000)
    parser.add_argument("--hawkes-patients", type=int, default=8000)
    parser.add_argument("--shard-tpp-sequences", type=int, default=40000)
    parser.add_argument("--shard-tpp-shards", type=int, default=16)
    parser.add_argument("--sccs-cases", type=int, default=40000)
    parser.add_argument("--conv-cases", type=int, default=10000)
    parser.add_argument("--conv-bootstrap", type=int, default=64)
    parser.add_argument("--large-events", type=float, default=1e8)
    parser.add_argument("--shard-events", type=float, default=1e6)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the code path in seconds")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "distributed.md"))
    ns = parser.parse_args()
    if ns.quick:
        ns.tpp_sequences, ns.hawkes_patients, ns.large_events, ns.shard_events = 200, 200, 2e5, 5e4
        ns.shard_tpp_sequences, ns.shard_tpp_shards = 400, 4
        ns.sccs_cases, ns.conv_cases, ns.conv_bootstrap = 400, 300, 8
    args = {"tpp_sequences": ns.tpp_sequences, "hawkes_patients": ns.hawkes_patients,
            "shard_tpp_sequences": ns.shard_tpp_sequences, "shard_tpp_shards": ns.shard_tpp_shards,
            "large_events": int(ns.large_events), "shard_events": int(ns.shard_events), "tasks": ns.tasks,
            "sccs_cases": ns.sccs_cases, "conv_cases": ns.conv_cases, "conv_bootstrap": ns.conv_bootstrap}
    with tempfile.TemporaryDirectory() as out:
        rows = in_memory_rows(args, out)
        rows += sccs_rows(args, out) if "sccs" in ns.tasks else []
        rows += shard_rows(args, out) if "shards" in ns.tasks else []
        rows += large_rows(args, out) if "large" in ns.tasks else []
    table = HEADER + "".join("| " + " | ".join(r) + " |\n" for r in rows)
    print(table)
    if not ns.quick:
        every = set(ns.tasks) == set(TASKS)
        lines = ["| " + " | ".join(r) + " |" for r in rows] if every else merged(Path(ns.out), rows)
        text = ("# Distributed benchmark (benchmarks/distributed.py)\n\n"
                f"Measured while the machine was shared with other jobs ({os.cpu_count()} cores; load average "
                f"{load_text()} at the end of the last run; rows from earlier runs keep their numbers, the shard rows "
                "say their load): wall times and their scaling efficiency are pessimistic, the CPU seconds per "
                "process in the notes measure the work.\n\n" + HEADER + "\n".join(lines) + "\n")
        with atomic_path(Path(ns.out)) as tmp:
            Path(tmp).write_text(text)


if __name__ == "__main__":
    main()
