"""Surveillance benchmark: effects that start mid-study, null drugs, 12 quarterly looks, repeated simulations.

`python benchmarks/surveillance.py --reps 20 --patients 10000 --null` simulates cohorts with
`pathways.synthetic.simulate_cohort` *without* planted effects (every drug null), then plants effects with an
onset date here (the simulator has no onset parameter; its files are left untouched): for a risky pair (drug d,
outcome o, relative incidence RI), every dispensation of d at time t adds Poisson(mu_o s_p (RI - 1) x exposed
days) outcome events, uniform on ``[max(t, onset), t + 60)`` and inside the patient's window (the simulator's own
step kernel, switched on at ``onset``). Two drugs per RI in {1.5, 2, 3}; all other (drug, outcome) pairs are null.

Reports, per RI, the median time from onset to the first alert (days; looks are quarterly, so a multiple of about
91 days minus the onset offset), the share detected within 2 quarters of onset and ever, and the share of null
pairs ever alerted over the 12 looks, for the binomial MaxSPRT (power spending) and, with ``--repeated``, the
Bonferroni-corrected repeated SCCS screen. ``--null`` also screens every cohort before planting (all pairs null:
the test's own type I error over 12 looks); ``--calendar-days 0`` and ``--no-comedication`` switch the two
adjustments off (the ablation that shows where the null alerts came from). Writes the markdown to
``benchmarks/results/surveillance.md`` (or ``--out``).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pathways.data.dates import EPOCH
from pathways.data.eventlog import EventLog
from pathways.signals.detect import StudyDesign
from pathways.signals.surveillance import SurveillancePlan, alert_history, surveil
from pathways.synthetic.cohort import simulate_cohort

RIS = (1.5, 2.0, 3.0)
ONSET = "2016-07-01"
START = "2015-07-01"


def plant_with_onset(log: EventLog, truth, effects: pd.DataFrame, onset: float, seed: int,
                     width: float = 60.0) -> EventLog:
    """Add the children events of step effects ``(drug, event, relative_incidence)`` switched on at ``onset``."""
    gen = np.random.default_rng(seed)
    codes = log.vocab.codes
    scale = np.asarray(truth.patient_scale, float)
    end = log.patients["end"].to_numpy(float)
    new_p, new_t, new_c = [log.patient], [log.time], [log.code]
    for drug, event, ri in effects[["drug", "event", "relative_incidence"]].itertuples(index=False):
        d, o = int(np.flatnonzero(codes == drug)[0]), int(np.flatnonzero(codes == event)[0])
        rows = np.flatnonzero(log.code == d)
        p, t = log.patient[rows], log.time[rows]
        lo = np.maximum(t, onset)
        hi = np.minimum(t + width, end[p])
        length = np.clip(hi - lo, 0.0, None)
        n = gen.poisson(truth.baseline[o] * scale[p] * (ri - 1.0) * length)
        new_p.append(np.repeat(p, n))
        new_t.append(np.repeat(lo, n) + gen.random(int(n.sum())) * np.repeat(length, n))
        new_c.append(np.full(int(n.sum()), o))
    patient, times, code = (np.concatenate(a) for a in (new_p, new_t, new_c))
    cat = pd.Series(log.category).astype(object).to_numpy()
    cat_of_code = pd.Series(cat, index=log.code).groupby(level=0).first()
    return EventLog.from_arrays(patient, times, code, log.vocab, patients=log.patients,
                                category=cat_of_code.reindex(code).to_numpy(), origin=EPOCH)


def pure_null(log: EventLog, outcomes: list[str], **plan: object) -> pd.DataFrame:
    """The same cohort before planting (every pair null): per pair, ever alerted by the sequential test."""
    looks = surveil(log, StudyDesign(outcomes=outcomes), SurveillancePlan(start=START, n_looks=12,
                                                                          methods=("maxsprt",), **plan))
    return looks.groupby(["exposure", "outcome"])["alert_maxsprt"].any().rename("alerted").reset_index()


def one_rep(rep: int, n_patients: int, repeated: bool, null: bool = False,
            **plan: object) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    log, truth = simulate_cohort(n_patients, seed=1000 + rep, n_strong=0, n_weak=0)
    before = pure_null(log, list(truth.outcomes), **plan) if null else None
    gen = np.random.default_rng(rep)
    drugs = pd.Series(log.code_strings()[pd.Series(log.category).astype(object).to_numpy() == "drug"])
    common = drugs.value_counts().index[:12].to_numpy()  # risky drugs among the 12 most dispensed
    risky = gen.choice(common, 2 * len(RIS), replace=False)
    outcomes = list(truth.outcomes)
    effects = pd.DataFrame({"drug": risky, "event": gen.choice(outcomes, risky.size),
                            "relative_incidence": np.repeat(RIS, 2)})
    onset = (pd.Timestamp(ONSET) - EPOCH) / pd.Timedelta(days=1)
    log = plant_with_onset(log, truth, effects, onset, seed=rep)
    risky_pairs = set(zip(effects["drug"], effects["event"]))
    controls = [(d, o) for d in np.setdiff1d(drugs.unique(), risky) for o in outcomes][::2]  # half the null pairs
    plan = SurveillancePlan(start=START, n_looks=12, methods=("maxsprt", "repeated") if repeated else ("maxsprt",),
                            negative_controls=controls, **plan)
    looks = surveil(log, StudyDesign(outcomes=outcomes), plan)
    alerts = alert_history(looks)
    looks["risky"] = [(e, o) in risky_pairs for e, o in zip(looks["exposure"], looks["outcome"])]
    looks["control"] = [(e, o) in set(controls) for e, o in zip(looks["exposure"], looks["outcome"])]
    alerts = alerts.merge(effects.rename(columns={"drug": "exposure", "event": "outcome"}), how="left",
                          on=["exposure", "outcome"])
    pairs = looks[looks["look"] == 1][["exposure", "outcome", "risky", "control"]].merge(
        effects.rename(columns={"drug": "exposure", "event": "outcome"}), how="left", on=["exposure", "outcome"])
    pairs["rep"] = rep
    alerts["rep"] = rep
    return pairs, alerts, before


def summarise(pairs: pd.DataFrame, alerts: pd.DataFrame, methods: list[str]) -> str:
    onset = pd.Timestamp(ONSET)
    lines = ["| method | RI | pairs | median days onset -> first alert | detected within 2 quarters | ever |",
             "|---|---|---|---|---|---|"]
    for method in methods:
        a = alerts[alerts["method"] == method]
        for ri in RIS:
            p = pairs[pairs["relative_incidence"] == ri]
            hit = p.merge(a[["exposure", "outcome", "rep", "first_alert_date"]], how="left",
                          on=["exposure", "outcome", "rep"])
            days = (pd.to_datetime(hit["first_alert_date"]) - onset).dt.days
            within = (days <= 184).mean()  # 2 quarters after 2016-07-01 = 2017-01-01 (184 days)
            median = np.nanmedian(days.to_numpy(float)) if days.notna().any() else float("nan")
            lines.append(f"| {method} | {ri} | {len(p)} | {median:.0f} | {within:.2f} | {days.notna().mean():.2f} |")
    lines += ["", "| method | null pairs | ever alerted | share | null pairs not used as controls | share |",
              "|---|---|---|---|---|---|"]
    for method in methods:
        a = alerts[alerts["method"] == method][["exposure", "outcome", "rep"]].assign(alerted=True)
        null = pairs[~pairs["risky"]].merge(a, how="left", on=["exposure", "outcome", "rep"])
        alerted = null["alerted"].astype("boolean").fillna(False).astype(bool)
        free = ~null["control"].astype(bool)
        lines.append(f"| {method} | {len(null)} | {int(alerted.sum())} | {alerted.mean():.3f} | {int(free.sum())} "
                     f"| {alerted[free].mean():.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--patients", type=int, default=20000)
    parser.add_argument("--repeated", action="store_true", help="also run the repeated SCCS screen (slower)")
    parser.add_argument("--null", action="store_true", help="also screen each cohort before planting (all null)")
    parser.add_argument("--calendar-days", type=float, default=30.0, help="0: no calendar adjustment")
    parser.add_argument("--no-comedication", action="store_true", help="no adjustment for co-medication")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "surveillance.md"))
    args = parser.parse_args()
    tic = time.time()
    plan = {"calendar_days": args.calendar_days, "comedication": not args.no_comedication}
    parts = [one_rep(r, args.patients, args.repeated, args.null, **plan) for r in range(args.reps)]
    pairs = pd.concat([p for p, _, _ in parts], ignore_index=True)
    alerts = pd.concat([a for _, a, _ in parts], ignore_index=True)
    methods = ["maxsprt"] + (["repeated"] if args.repeated else [])
    table = summarise(pairs, alerts, methods)
    if args.null:
        before = pd.concat([b for _, _, b in parts], ignore_index=True)
        table += ("\n\n| same cohorts before planting (all pairs null) | pairs | ever alerted | share |\n|---|---|---|---|"
                  f"\n| maxsprt | {len(before)} | {int(before['alerted'].sum())} | {before['alerted'].mean():.3f} |")
    seconds = time.time() - tic
    flags = "".join(f" {f}" for f, on in (("--repeated", args.repeated), ("--null", args.null),
                                          ("--no-comedication", args.no_comedication)) if on)
    text = (f"# Surveillance benchmark\n\n`python benchmarks/surveillance.py --reps {args.reps} --patients "
            f"{args.patients} --calendar-days {args.calendar_days:g}{flags}` ({seconds:.0f} s, measured while the "
            f"machine was shared with other jobs). Onset {ONSET}, 12 quarterly looks from {START}, binomial MaxSPRT "
            f"with power spending (alpha 0.05, rho 1, max 200 cases, risk 0-60 days, control -120 to -60 days), "
            f"calendar adjustment on {args.calendar_days:g}-day bins (0: none), co-medication adjustment "
            f"{'off' if args.no_comedication else 'on'}; repeated SCCS screen at q < 0.05 / 12 with half the null "
            f"pairs as negative controls.\n\n{table}\n")
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
