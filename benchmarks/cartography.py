"""Cartography benchmark: recovery of planted pathologies, costs and transitions, and scale.

**Recovery** (``--patients``, default 100 000 followed 2019-2022): the synthetic population of
:mod:`pathways.cartography.synthetic` (planted exclusive states chronic_heart_failure / dialysis / dementia /
parkinson with a yearly Markov chain and state-dependent death, independent diabetes and chronic_respiratory
chains; ALD periods, dialysis sessions and acts, tracer dispensations with regularisation rows, sub-threshold noise;
spending = base (age, sex) + attributable group costs, gamma noise). The packaged 37-group rule set is applied.
Checks: prevalence per group and year within +-1 percentage point of the planted one; mean allocated cost per group
and year within +-5 % of the planted attributable cost; planted yearly transition probabilities inside the 95 %
Wilson intervals of the estimated rates (pooled over years).

The synthetic-SNDS generator of issue 14 (``pathways.synthetic.snds``) writes raw tables; ``read_snds`` does not yet
emit ALD periods (IR_IMB_R) or amounts (PRS_PAI_MNT), so this benchmark draws its own population (see
``docs/cartography.md``: what a user must provide).

**Scale** (``--scale``, patient-years, default 1e6 and 1e7): in a fresh process, ``build_cartography`` runs over
the population drawn chunk by chunk (200 000 patients; identification, costs, allocation fitted on the summed
normal equations, both tables, transitions, survival). Reported: drawing and cartography wall time, peak resident
memory (``ru_maxrss``) of that process.

Usage: python benchmarks/cartography.py [--patients 100000] [--scale 1e6,1e7] [--out benchmarks/results/cartography.md]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pathways.cartography.build import build_cartography
from pathways.cartography.dynamics import transitions
from pathways.cartography.synthetic import PRIMARY, simulate_cartography

YEARS = (2019, 2020, 2021, 2022)
PY_PER_PATIENT = 3.8  # patient-years per patient over 4 years (deaths)


def recovery(n_patients: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    t0 = time.perf_counter()
    log, truth = simulate_cartography(n_patients, YEARS, seed=seed)
    t1 = time.perf_counter()
    carto = build_cartography(log, by=())
    t2 = time.perf_counter()
    groups = carto.groups.set_index(["year", "group"])
    planted = truth.patient_years
    rows = []
    for g, cost in truth.costs.items():
        for year in YEARS:
            held = planted.loc[planted["year"] == year, g]
            got = groups.loc[(year, g)]
            rows.append({"group": g, "year": year, "planted_prevalence_%": 100 * held.mean(),
                         "prevalence_%": 100 * got["prevalence_rate"], "error_pp": 100 * (got["prevalence_rate"] - held.mean()),
                         "planted_cost": cost, "mean_allocated_cost": got["mean_cost"],
                         "cost_error_%": 100 * (got["mean_cost"] / cost - 1)})
    prevalence = pd.DataFrame(rows)
    est = transitions(carto.patient_years, order=list(PRIMARY))
    trans = truth.transition.merge(est, on=["from_state", "to_state"], how="left")
    trans[["n"]] = trans[["n"]].fillna(0)
    n_from = est.groupby("from_state")["n_from"].first()
    trans["n_from"] = trans["from_state"].map(n_from)
    missing = trans["rate"].isna()
    if missing.any():  # a transition never observed: rate 0 with its Wilson interval
        from pathways.cartography.dynamics import wilson
        lo, hi = wilson(np.zeros(int(missing.sum())), trans.loc[missing, "n_from"].to_numpy())
        trans.loc[missing, ["rate", "ci_low", "ci_high"]] = np.column_stack([np.zeros(lo.size), lo, hi])
    trans["covered"] = (trans["ci_low"] <= trans["probability"]) & (trans["probability"] <= trans["ci_high"])
    info = {"patients": n_patients, "patient_years": carto.patient_years.n_rows, "events": log.n_events,
            "simulate_s": t1 - t0, "cartography_s": t2 - t1,
            "total_equals_allocated": carto.metrics["total_spending"] == carto.metrics["allocated_spending"]}
    return prevalence, trans, info


class SimulatedChunks:
    """The population drawn chunk by chunk, again at each iteration (same seeds): at most one chunk in memory.
    ``simulate_s`` adds up the time spent drawing."""

    def __init__(self, n_patients: int, chunk: int = 200_000):
        self.n_patients, self.chunk, self.simulate_s, self.events = n_patients, chunk, 0.0, 0

    def __iter__(self):
        self.events = 0
        for k, lo in enumerate(range(0, self.n_patients, self.chunk)):
            t0 = time.perf_counter()
            log, _ = simulate_cartography(min(self.chunk, self.n_patients - lo), YEARS, seed=1000 + k)
            self.simulate_s += time.perf_counter() - t0
            self.events += log.n_events
            yield log
            del log


def _scale_child(n_patients: int, queue: mp.Queue) -> None:
    chunks = SimulatedChunks(n_patients)
    t0 = time.perf_counter()
    carto = build_cartography(chunks, years=YEARS, amounts=("paid",))
    total = time.perf_counter() - t0
    queue.put({"events": chunks.events, "patient_years": carto.metrics["n_patient_years"],
               "simulate_s": chunks.simulate_s, "cartography_s": total - chunks.simulate_s,
               "peak_rss_GiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
               "exact_total": carto.metrics["total_spending"] == carto.metrics["allocated_spending"]})


def scale(patient_years: float) -> dict:
    n_patients = int(round(patient_years / PY_PER_PATIENT))
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_scale_child, args=(n_patients, queue))
    proc.start()
    row = queue.get()
    proc.join()
    row.update(patients=n_patients)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--scale", default="1e6,1e7", help="patient-year sizes, comma-separated ('' = none)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cartography.md"))
    args = parser.parse_args()
    prevalence, trans, info = recovery(args.patients)
    scale_rows = []
    for size in [float(s) for s in args.scale.split(",") if s]:
        scale_rows.append(scale(size))
        print(scale_rows[-1], flush=True)
    lines = ["# Cartography benchmark", "", f"`python benchmarks/cartography.py --patients {args.patients} "
             f"--scale {args.scale}`", "", "## Recovery", "",
             f"{info['patients']} patients, {info['patient_years']} patient-years, {info['events']} events; "
             f"simulation {info['simulate_s']:.1f} s, cartography {info['cartography_s']:.1f} s; allocated total "
             f"equals total spending to the cent: {info['total_equals_allocated']}.", "",
             f"- prevalence: max |error| {prevalence['error_pp'].abs().max():.3f} pp (criterion 1 pp)",
             f"- mean cost: max |error| {prevalence['cost_error_%'].abs().max():.2f} % (criterion 5 %)",
             f"- transitions: {int(trans['covered'].sum())} / {len(trans)} planted probabilities inside the 95 % "
             "interval", "", "### Prevalence and mean allocated cost per group and year", "",
             prevalence.round(3).to_csv(sep="|", index=False).replace("\n", "|\n|").join(["|", ""]).rstrip("|"),
             "", "### Transitions (pooled 2019-2021 -> next year)", "",
             trans[["from_state", "to_state", "probability", "n", "n_from", "rate", "ci_low", "ci_high",
                    "covered"]].round(4).to_csv(sep="|", index=False).replace("\n", "|\n|").join(["|", ""]).rstrip("|")]
    if scale_rows:
        table = pd.DataFrame(scale_rows)[["patient_years", "patients", "events", "simulate_s", "cartography_s",
                                          "peak_rss_GiB", "exact_total"]]
        lines += ["", "## Scale", "", "Fresh process per size: build_cartography over chunks of 200 000 patients "
                  "(37 groups, paid amounts, cells by age band x sex x department); each chunk is drawn twice (the "
                  "regression pass and the allocation pass): simulate_s is the drawing time, cartography_s the "
                  "rest. Peak RSS is the whole process's (chunks drawn included).", "",
                  table.round(2).to_csv(sep="|", index=False).replace("\n", "|\n|").join(["|", ""]).rstrip("|")]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
