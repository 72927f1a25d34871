"""Benchmark: abuse and fraud detection against planted truth.

Data: :func:`pathways.abuse.scenarios.simulate_abuse` (the scenarios planted over ``simulate_cohort``; the
synthetic-SNDS generator of issue 14 had not landed), 50 000 patients, every scenario at 1 % of its entity type:
doctor/pharmacy shopping for opioids, benzodiazepines, methylphenidate and buprenorphine (patients), over-prescribing
(prescribers), billing without prescription, inflated quantities and billing on impossible dates (pharmacies).

Measured per scenario on the ranked table of its entity type (``pathways.abuse.detect_abuse``): AUROC and
precision among the top 1 % of entities, each scenario scored as if alone (entities planted with *another*
scenario leave the pool; the top 1 % is 1 % of that pool). Two rankings: indicators alone (transparent
indicators, peer groups, network) and indicators + the model-based surprise (Hawkes time-rescaling) for patients;
the lift is their difference. Targets: AUROC >= 0.95 and top-1 % precision >= 0.8 per scenario.

Run: ``python benchmarks/abuse.py [--patients 50000] [--quick]``; writes benchmarks/results/abuse.md.
``--snds N``: instead, the issue-14 raw synthetic SNDS of N patients written, read back with ``read_snds`` and
ranked (its own prevalences), written to benchmarks/results/abuse_synthetic_snds.md.
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pathways.abuse import detect_abuse, evaluate, rank_entities, simulate_abuse
from pathways.abuse.scenarios import SCENARIOS

RESULTS = Path(__file__).resolve().parent / "results" / "abuse.md"


def run(n_patients: int, prevalence: float, seed: int) -> tuple[pd.DataFrame, dict[str, float], str]:
    timings: dict[str, float] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    log, truth = simulate_abuse(n_patients, prevalence=prevalence, seed=seed)
    timings["simulate (wall s)"] = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    result = detect_abuse(log, truth.providers, min_count=0, seed=seed)
    timings["detect_abuse (wall s)"] = time.perf_counter() - t0
    timings["detect_abuse (CPU s)"] = time.process_time() - c0
    rows = []
    for scenario, entity in SCENARIOS.items():
        others = np.setdiff1d(truth.planted(entity), truth.positives[scenario])
        full = evaluate(result.tables[entity], truth.positives[scenario], others)
        alone = evaluate(rank_entities(result.reasons[entity], exclude=("model_surprise",)),
                         truth.positives[scenario], others)
        top = result.tables[entity]
        top = top[top["entity"].isin(truth.positives[scenario])].head(1)
        rows.append({"scenario": scenario, "entity": entity, "n_entities": len(result.tables[entity]) - len(others),
                     "n_planted": full["n_positives"], "AUROC": full["auroc"],
                     "top-1% precision": full["precision_top"], "AUROC indicators alone": alone["auroc"],
                     "top-1% precision indicators alone": alone["precision_top"],
                     "AUROC lift": round(full["auroc"] - alone["auroc"], 4),
                     "precision lift": round(full["precision_top"] - alone["precision_top"], 4),
                     "met": bool(full["auroc"] >= 0.95 and full["precision_top"] >= 0.8),
                     "best planted entity's behaviours": top["behaviours"].iloc[0] if len(top) else ""})
    summary = f"{log.n_events} events; ranked " + ", ".join(
        f"{len(t)} {k}" for k, t in zip(("patients", "prescribers", "pharmacies"), result.tables.values()))
    return pd.DataFrame(rows), timings, summary


def run_synthetic_snds(n_patients: int, seed: int, folder: Path) -> tuple[pd.DataFrame, str]:
    """The issue-14 raw synthetic SNDS (its own prevalences: shoppers 0.2 % of patients, 1 % of pharmacies per
    fraud pattern, over-prescribing GPs) written, read back with ``read_snds`` and ranked by ``detect_abuse``."""
    from pathways.synthetic.snds import SndsTruth, read_synthetic_snds

    t0 = time.perf_counter()
    log = read_synthetic_snds(n_patients, seed=seed, folder=folder, events_after_death="keep")
    result = detect_abuse(log, min_count=0, seed=seed)
    truth = SndsTruth.load(folder)
    shopper = truth.patients().set_index("patient_id")["shopper"].astype(str)
    planted = {f"shopping_{c}": ("patient", shopper.index[shopper == c].to_numpy())
               for c in sorted(set(shopper) - {""})}
    planted["shopping (any class)"] = ("patient", shopper.index[shopper != ""].to_numpy())
    fraud = truth.fraud_providers
    for pattern, rows in fraud.groupby("pattern"):
        planted[pattern] = (rows["actor"].iloc[0], rows["id"].astype(str).to_numpy())
    rows = []
    for scenario, (entity, ids) in planted.items():
        same = [v for name, (e, v) in planted.items() if e == entity and name not in (scenario, "shopping (any class)")]
        others = np.setdiff1d(np.concatenate(same), ids) if same else np.array([], dtype=object)
        scores = evaluate(result.tables[entity], ids, others)
        rows.append({"scenario": scenario, "entity": entity, "n_planted": scores["n_positives"],
                     "AUROC": scores["auroc"], "top-1% precision": scores["precision_top"]})
    text = (f"Issue-14 synthetic SNDS, {n_patients} patients (seed {seed}), read with `read_snds`: {log.n_events} "
            f"events; `detect_abuse` without provider attributes (no peer groups); "
            f"{time.perf_counter() - t0:.0f} s wall in all.")
    return pd.DataFrame(rows), text


def markdown(table: pd.DataFrame) -> str:
    """A pipe table (tabulate is not a dependency)."""
    cells = [[str(c) for c in table.columns]] + [[str(v) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    lines.insert(1, "|" + "---|" * table.shape[1])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=50_000)
    parser.add_argument("--prevalence", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="5 000 patients at 2 %% (a smoke run, not written)")
    parser.add_argument("--snds", type=int, default=0, metavar="N",
                        help="only the issue-14 synthetic SNDS section, N patients (abuse_synthetic_snds.md)")
    args = parser.parse_args()
    if args.snds:
        table, text = run_synthetic_snds(args.snds, args.seed, Path("/tmp") / f"pathways_abuse_snds_{args.snds}")
        out = f"# Abuse detection on the synthetic SNDS (`benchmarks/abuse.py --snds {args.snds}`)\n\n{text}\n\n"
        out += markdown(table) + "\n"
        print(out)
        (RESULTS.parent / "abuse_synthetic_snds.md").write_text(out)
        return
    n, prevalence = (5000, 0.02) if args.quick else (args.patients, args.prevalence)
    table, timings, summary = run(n, prevalence, args.seed)
    lines = [
        "# Abuse and fraud detection (`benchmarks/abuse.py`)", "",
        (f"{n} simulated patients (`simulate_abuse`, seed {args.seed}), every scenario at {prevalence:.0%} of its "
         f"entity type: {summary}. Machine: {platform.machine()}, shared 2-core CPU."), "",
        markdown(table), "",
        "Timings: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()), "",
        (f"Targets met (AUROC >= 0.95 and top-1 % precision >= 0.8): {int(table['met'].sum())} of {len(table)} "
         "scenarios. Lift = with the model-based surprise minus indicators alone (patients only; providers have no "
         "model score, lift 0)."),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        RESULTS.write_text(text)


if __name__ == "__main__":
    main()
