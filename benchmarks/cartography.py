"""Cartography benchmark: recovery of planted pathologies, costs and transitions, and scale.

**Recovery** (``--patients``, default 100 000 followed 2019-2022): the synthetic population of
:mod:`pathways.cartography.synthetic` (planted exclusive states chronic_heart_failure / dialysis / dementia /
parkinson with a yearly Markov chain and state-dependent death, independent diabetes and chronic_respiratory
chains; ALD periods, dialysis sessions and acts, tracer dispensations with regularisation rows, sub-threshold noise;
spending = base (age, sex) + attributable group costs, gamma noise). The packaged 37-group rule set is applied.
Checks: prevalence per group and year within +-1 percentage point of the planted one; mean allocated cost per group
and year within +-5 % of the planted attributable cost; planted yearly transition probabilities inside the 95 %
Wilson intervals of the estimated rates (pooled over years).

**Recovery on synthetic SNDS** (``--snds-patients``, default 100 000, 2019-2021): raw tables of
``pathways.synthetic.snds.write_snds`` read back with ``read_snds`` (CIP13 -> ATC through its IR_PHA_R), plus the
ALD periods of IR_IMB_R as ``ald`` events (``read_snds`` does not read IR_IMB_R yet), identified with a rule set
derived from the generator's published rules (ALD and PMSI main/linked diagnoses on its ICD-10 codes, >= 1
dispensation of the tracer drugs no other pathology shares; no ALD for pathologies with a remission). Checked:
prevalence per pathology and year within +-1 pp of the identifiable planted one (truth ``identifiable``: ALD, stay
or own tracer; the full planted prevalence and the part only a shared tracer reveals are columns too); the mean
yearly reimbursed amount of the identified members (truth costs per patient-year) against that of the
identifiable planted members (+-5 %); the mean allocated cost per group (``allocate`` on the rules' states and the
amounts read, DCIR and T_MCOaaVALO stay costs) against the same allocation on the planted identifiable states and
the planted costs (all of them, and those of the categories ``read_snds`` reads) (+-5 %); the planted transition
rates inside the rules' 95 % Wilson intervals.

**Spark** (``--spark-patients``, default 2 000; 0 skips): the cartography of the same synthetic SNDS tables read
by ``read_snds(engine="spark")`` and ``engine="duckdb"``: identical tables?

**Scale** (``--scale``, patient-years, default 1e6 and 1e7): in a fresh process, ``build_cartography`` runs over
the population drawn chunk by chunk (200 000 patients; identification, costs, allocation fitted on the summed
normal equations, both tables, transitions, survival). Reported: drawing and cartography wall time, peak resident
memory (``ru_maxrss``) of that process.

Usage: python benchmarks/cartography.py [--patients 100000] [--snds-patients 100000] [--spark-patients 2000]
                                        [--scale 1e6,1e7] [--out benchmarks/results/cartography.md]
       python benchmarks/cartography.py --only-scale --scale 1e7   (appends the scale rows to --out)
       python benchmarks/cartography.py --only-snds   (re-runs the synthetic-SNDS section, replaced in --out)
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import tempfile
import time
from pathlib import Path

import dataclasses

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pathways import EventLog
from pathways.cartography import identify
from pathways.cartography.build import build_cartography
from pathways.cartography.costs import allocate, patient_year_costs
from pathways.cartography.dynamics import transitions, wilson
from pathways.cartography.identify import year_start
from pathways.cartography.synthetic import PRIMARY, simulate_cartography
from pathways.io import read_snds
from pathways.io.snds_tables import ALL_SOURCES
from pathways.synthetic.snds import write_snds

from cartography_snds import CARE_ORDER, PLANTED_CARE, READ_CATEGORIES, SNDS_ESTIMAND, _markdown, _replace_snds, snds_section  # noqa: E402,F401

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
        lo, hi = wilson(np.zeros(int(missing.sum())), trans.loc[missing, "n_from"].to_numpy())
        trans.loc[missing, ["rate", "ci_low", "ci_high"]] = np.column_stack([np.zeros(lo.size), lo, hi])
    trans["covered"] = (trans["ci_low"] <= trans["probability"]) & (trans["probability"] <= trans["ci_high"])
    info = {"patients": n_patients, "patient_years": carto.patient_years.n_rows, "events": log.n_events,
            "simulate_s": t1 - t0, "cartography_s": t2 - t1,
            "total_equals_allocated": carto.metrics["total_spending"] == carto.metrics["allocated_spending"]}
    return prevalence, trans, info


SNDS_YEARS = (2019, 2020, 2021)


def snds_rules(truth) -> dict:
    """Rule set of the generator's pathologies: ALD and PMSI (main, linked) on their ICD-10 codes (and session
    diagnosis), >= 1 dispensation of the tracer drugs that no other pathology shares. Pathologies with a remission
    (cancer, psychiatric, dialysis) are not identified by their ALD: the generator keeps an ALD open 1-3 years
    after a remission (surveillance, as the insurer's "cancer under monitoring" groups), so an ALD alone does not
    say the pathology is active that year."""
    rules = truth.rules
    atc = {p: set(str(r).split()) for p, r in zip(rules["pathology"], rules["tracer_atc"])}
    groups = []
    for r in rules.itertuples():
        icd = str(r.icd10).split()
        own = sorted(c for c in atc[r.pathology] if all(c not in atc[o] for o in atc if o != r.pathology))
        group = {"id": r.pathology, "label": r.label,
                 "hospital": {"codes": icd + ([r.session_icd10] if r.session_icd10 else []),
                              "roles": ["main", "linked"], "lookback_years": 1}}
        if r.ald_probability > 0 and r.yearly_remission == 0:  # an ALD outlives a remission: not alone
            group["ald"] = {"codes": icd}
        if own:
            group["drugs"] = {"codes": own, "min_dispensations": 1}
        groups.append(group)
    return {"name": "synthetic_snds", "version": "1", "groups": groups}


def snds_log(folder: Path, truth) -> EventLog:
    """read_snds events + IR_IMB_R periods as ``ald`` events; patients observed from 2019 (or their first ALD).

    Every column of the events read is carried (value, prescriber, provider, institution with the amounts):
    ``from_pandas`` drops rows identical on the columns it is given, and two claims can differ only by their
    prescriber (two dispensing fees PRS:3336 of the same pharmacy and day for two prescriptions) -- ``read_snds``
    already merged its own exact duplicates, summing their amounts."""
    log = read_snds(folder, sources=ALL_SOURCES, cip_to_atc=folder / "nomenclatures" / "IR_PHA_R.parquet",
                    errors="warn")
    events, _ = log.to_pandas()
    extras = list(log.extras)
    events = events[["patient_id", "time", "end", "code", "value", "category", *extras]].assign(
        patient_id=events["patient_id"].astype(str))
    imb = pd.read_parquet(folder / "DCIR_DCIRS" / "IR_IMB_R")
    origin = pd.Timestamp("1970-01-01")
    start = pd.to_datetime(imb["IMB_ALD_DTD"].astype(str), errors="coerce")
    stop = pd.to_datetime(imb["IMB_ALD_DTF"].astype(str).replace("1600-01-01", None), errors="coerce")
    ald = pd.DataFrame({"patient_id": imb["BEN_NIR_PSA"].astype(str), "time": (start - origin).dt.days.astype(float),
                        "end": (stop - origin).dt.days.astype(float),
                        "code": "CIM10:" + imb["MED_MTF_COD"].astype(str), "category": "ald"})
    events = pd.concat([events, ald], ignore_index=True)
    patients = truth.patients()[["patient_id", "birth", "sex", "death", "department"]].copy()
    first_ald = ald.groupby("patient_id")["time"].min()
    patients["start"] = np.fmin(patients["patient_id"].map(first_ald).to_numpy(float), year_start(SNDS_YEARS[0]))
    patients["end"] = np.where(patients["death"].notna(), patients["death"], year_start(SNDS_YEARS[-1] + 1) - 1)
    return EventLog.from_pandas(events, patients, time_unit="days", outside_window="drop",
                                extra_columns=extras)


def planted_years(py, log: EventLog, planted: pd.DataFrame):
    """The rules' patient-years (same rows: patient, year, age, sex, deaths) with the planted **identifiable**
    pathology-years as flags instead of the identified ones; also the planted rows outside those patient-years."""
    pid = log.patients["patient_id"].astype(str).to_numpy()[py.patient]
    key = pd.MultiIndex.from_arrays([pid, py.year])
    held = planted[planted["identifiable"]]
    row = key.get_indexer(pd.MultiIndex.from_arrays([held["patient_id"].astype(str), held["year"].to_numpy()]))
    col = pd.Index(py.groups).get_indexer(held["pathology"])
    ok = (row >= 0) & (col >= 0)
    flags = sp.csr_matrix((np.ones(int(ok.sum()), bool), (row[ok], col[ok])), shape=(py.n_rows, len(py.groups)))
    return dataclasses.replace(py, flags=flags), int((~ok).sum())


def group_means(py, alloc) -> pd.DataFrame:
    """Mean allocated amount (euros) per member, by year and group."""
    rows = []
    members = py.flags.tocsc()
    for year in np.unique(py.year):
        in_year = py.year == year
        for j, g in enumerate(py.groups):
            n = int(members[:, j].multiply(in_year[:, None]).sum())
            cents = float(alloc.cents[:, j].multiply(in_year[:, None]).sum())
            rows.append({"year": int(year), "pathology": g, "members": n, "mean": cents / 100 / n if n else np.nan})
    return pd.DataFrame(rows)


def snds_costs_transitions(log: EventLog, py, truth, planted: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                                     dict]:
    """Mean allocated cost per group and transition rates: the rules' (identified states, amounts read from the
    tables: DCIR ``base`` = BSE_REM_MNT, stays ``base`` = T_MCOaaVALO MNT_BR) against the same methods on the
    planted identifiable states and the planted costs (truth ``costs``: reimbursed amounts, stays' GHS-like cost)."""
    read = patient_year_costs(log, py, amounts=["base"])
    ppy, outside = planted_years(py, log, planted)
    pid = log.patients["patient_id"].astype(str).to_numpy()[py.patient]
    truth_costs = truth.costs()

    def planted_cents(frame: pd.DataFrame) -> np.ndarray:
        by_py = frame.groupby(["patient_id", "year"])["reimbursed"].sum()
        return np.rint(by_py.reindex(pd.MultiIndex.from_arrays([pid, py.year])).fillna(0).to_numpy() * 100)

    def by_care(frame: pd.DataFrame) -> np.ndarray:  # planted cents per patient-year and read care category
        care = frame["category"].map(PLANTED_CARE).fillna("other")
        return np.column_stack([planted_cents(frame[care == c]) for c in CARE_ORDER]).astype(np.int64)

    read_kinds = truth_costs["category"].isin(READ_CATEGORIES)
    planted_costs = pd.DataFrame({"all": planted_cents(truth_costs), "read": planted_cents(truth_costs[read_kinds])})
    got = group_means(py, allocate(py, read, amount="base_total"))
    costs = got.rename(columns={"mean": "mean_allocated"})
    for kind, suffix in (("all", ""), ("read", "_read_categories")):
        want = group_means(ppy, allocate(ppy, planted_costs.astype(np.int64), amount=kind))
        costs[f"planted_mean{suffix}"] = want["mean"].to_numpy()
        costs[f"cost_error{suffix}_%"] = 100 * (costs["mean_allocated"] / costs[f"planted_mean{suffix}"] - 1)
    costs.insert(3, "planted_members", want["members"].to_numpy())
    order = list(py.groups)
    est, truth_rates = transitions(py, order=order), transitions(ppy, order=order)
    trans = truth_rates[["from_state", "to_state", "rate"]].rename(columns={"rate": "planted_rate"}).merge(
        est, on=["from_state", "to_state"], how="outer")
    trans["planted_rate"] = trans["planted_rate"].fillna(0.0)
    trans["n"] = trans["n"].fillna(0)
    trans["n_from"] = trans["from_state"].map(est.groupby("from_state")["n_from"].first()).fillna(0)
    missing = trans["rate"].isna()
    if missing.any():  # a planted transition the rules never see: rate 0 with its Wilson interval
        lo, hi = wilson(np.zeros(int(missing.sum())), trans.loc[missing, "n_from"].to_numpy())
        trans.loc[missing, ["rate", "ci_low", "ci_high"]] = np.column_stack([np.zeros(lo.size), lo, hi])
    trans["covered"] = (trans["ci_low"] <= trans["planted_rate"]) & (trans["planted_rate"] <= trans["ci_high"])
    hospital = truth_costs["category"] == "hospital"
    rows_of = pd.MultiIndex.from_arrays([truth_costs["patient_id"], truth_costs["year"]])
    in_py = rows_of.isin(pd.MultiIndex.from_arrays([pid, py.year]))
    read_care = read[[f"base_{c}" for c in CARE_ORDER]].to_numpy(np.int64)
    info = {"planted_outside": outside, "patient_years": py.n_rows,
            "rows_differing": int((read_care != by_care(truth_costs)).any(axis=1).sum()),
            "read_hospital": read["base_hospital"].sum() / 100,
            "planted_hospital": truth_costs.loc[hospital & in_py, "reimbursed"].sum(),
            "read_total": read["base_total"].sum() / 100, "read_consultations": read["base_consultations_acts"].sum() / 100,
            "read_drugs": read["base_drugs"].sum() / 100, "read_other": read["base_other"].sum() / 100,
            "planted_total": truth_costs.loc[in_py, "reimbursed"].sum(),
            "planted_read_categories": truth_costs.loc[in_py & read_kinds, "reimbursed"].sum()}
    return costs, trans, info


def snds_recovery(n_patients: int) -> tuple[pd.DataFrame, dict]:
    cpu0 = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        truth = write_snds(tmp, n_patients, years=SNDS_YEARS, seed=0)
        t1 = time.perf_counter()
        log = snds_log(Path(tmp), truth)
        t2 = time.perf_counter()
        py = identify(log, snds_rules(truth), years=SNDS_YEARS)
        t3 = time.perf_counter()
        planted = truth.pathologies()
        costs = truth.costs().groupby(["patient_id", "year"])["reimbursed"].sum()
        people = truth.patients()
        t4 = time.perf_counter()
        cost_table, trans, extra = snds_costs_transitions(log, py, truth, planted)
        import duckdb  # the dispensing fees on the tables (ER_PRS_F lines PRS_NAT_REF 3336, no ER_PHA_F detail)

        extra["fees"] = duckdb.sql(
            f"SELECT sum(BSE_REM_MNT) FROM read_parquet('{tmp}/DCIR/ER_PRS_F/*.parquet') WHERE PRS_NAT_REF = 3336 "
            f"AND DPN_QLF <> 71 AND year(EXE_SOI_DTD) BETWEEN {SNDS_YEARS[0]} AND {SNDS_YEARS[-1]}").fetchall()[0][0]
        t5 = time.perf_counter()
    frame = py.frame()
    frame["patient_id"] = log.patients["patient_id"].astype(str).to_numpy()[frame["patient"]]
    rows = []
    for year in SNDS_YEARS:
        alive = int((people["death"].isna() | (people["death"] >= year_start(year))).sum())
        ours = frame[frame["year"] == year]
        spend = costs.reindex(pd.MultiIndex.from_arrays([ours["patient_id"], ours["year"]])).fillna(0).to_numpy()
        for group in py.groups:
            active = planted[(planted["year"] == year) & (planted["pathology"] == group)]
            held = active[active["identifiable"]]
            true_spend = costs.reindex(pd.MultiIndex.from_arrays([held["patient_id"], held["year"]])).fillna(0)
            mine = ours[group].to_numpy(bool)
            rows.append({"pathology": group, "year": year, "population": len(ours), "planted_population": alive,
                         "planted_prevalence_%": 100 * len(active) / alive,
                         "shared_tracer_only_%": 100 * (active["drug"] & ~active["identifiable"]).sum() / alive,
                         "identifiable_prevalence_%": 100 * len(held) / alive, "prevalence_%": 100 * mine.mean(),
                         "error_pp": 100 * (mine.mean() - len(held) / alive),
                         "planted_members_mean_spend": true_spend.mean(), "members_mean_spend": spend[mine].mean()})
    table = pd.DataFrame(rows)
    table["spend_error_%"] = 100 * (table["members_mean_spend"] / table["planted_members_mean_spend"] - 1)
    info = {"patients": n_patients, "events": log.n_events, "write_s": t1 - t0, "read_s": t2 - t1,
            "identify_s": t3 - t2, "costs_transitions_s": t5 - t4, "cpu_s": time.process_time() - cpu0, "costs": cost_table, "transitions": trans,
            **extra}
    return table, info


def _same_tables(a, b) -> bool:
    """Every aggregate table of two cartographies equal cell for cell (values, dtypes, order), and the metrics."""
    try:
        for name, table in a.tables().items():
            pd.testing.assert_frame_equal(b.tables()[name], table, check_exact=True)
    except AssertionError:
        return False
    return a.metrics == b.metrics


def spark_equality(n_patients: int) -> dict:
    """Cartography (packaged rules, paid amounts) of the same synthetic SNDS tables read by the DuckDB and the
    Spark engines of ``read_snds`` (local session on every core): are the tables identical?"""
    from pathways.io.spark import spark_session

    with tempfile.TemporaryDirectory() as tmp:
        write_snds(tmp, n_patients, years=SNDS_YEARS, seed=1, truth_events=False)
        kwargs = {"cip_to_atc": Path(tmp) / "nomenclatures" / "IR_PHA_R.parquet", "errors": "warn"}
        t0 = time.perf_counter()
        duck_log = read_snds(tmp, **kwargs)
        t1 = time.perf_counter()
        spark = spark_session("local[*]", app_name="cartography-benchmark", shuffle_partitions=4)
        t2 = time.perf_counter()
        spark_log = read_snds(tmp, engine="spark", spark=spark, **kwargs)
        t3 = time.perf_counter()
    duck, spk = build_cartography(duck_log, years=SNDS_YEARS), build_cartography(spark_log, years=SNDS_YEARS)
    held = duck.groups[(duck.groups["group"] != "total") & (duck.groups["prevalent"] > 0)]["group"].nunique()
    return {"patients": n_patients, "events": duck_log.n_events, "duckdb_read_s": t1 - t0, "spark_start_s": t2 - t1,
            "spark_read_s": t3 - t2, "groups_held": held, "same_tables": _same_tables(duck, spk),
            "same_patient_years": duck.patient_years.frame().equals(spk.patient_years.frame())}


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
    usage = resource.getrusage(resource.RUSAGE_SELF)
    queue.put({"events": chunks.events, "patient_years": carto.metrics["n_patient_years"],
               "simulate_s": chunks.simulate_s, "cartography_s": total - chunks.simulate_s,
               "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_GiB": usage.ru_maxrss / 2**20,
               "exact_total": carto.metrics["total_spending"] == carto.metrics["allocated_spending"]})


def scale(patient_years: float) -> dict:
    n_patients = round(patient_years / PY_PER_PATIENT)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_scale_child, args=(n_patients, queue))
    proc.start()
    row = queue.get()
    proc.join()
    row.update(patients=n_patients)
    return row


SCALE_COLUMNS = ["patient_years", "patients", "events", "simulate_s", "cartography_s", "cpu_s", "peak_rss_GiB",
                 "exact_total"]


def _append_scale(out: Path, rows: list[dict], sizes: str) -> None:
    """Scale rows of an ``--only-scale`` run, appended to the results file (with the machine's load: the wall
    times depend on it, CPU seconds much less)."""
    text = (f"\n### Scale rows: `python benchmarks/cartography.py --only-scale --scale '{sizes}'`\n\n"
            f"Load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. cpu_s: user + "
            "system seconds of the process (drawing included).\n\n"
            + _markdown(pd.DataFrame(rows)[SCALE_COLUMNS].round(2)))
    print(text)
    out.write_text((out.read_text().rstrip() + "\n" if out.exists() else "# Cartography benchmark\n") + text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--snds-patients", type=int, default=100_000,
                        help="synthetic SNDS beneficiaries (the allocation's regression needs large groups)")
    parser.add_argument("--spark-patients", type=int, default=2000, help="Spark vs DuckDB tables (0 = skip)")
    parser.add_argument("--scale", default="1e6,1e7", help="patient-year sizes, comma-separated ('' = none)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cartography.md"))
    parser.add_argument("--only-scale", action="store_true",
                        help="run only the --scale rows and append them to --out (recovery sections kept)")
    parser.add_argument("--only-snds", action="store_true",
                        help="run only the synthetic-SNDS recovery and replace its section in --out")
    args = parser.parse_args()
    if args.only_snds:
        snds, snds_info = snds_recovery(args.snds_patients)
        _replace_snds(Path(args.out), snds_section(snds, snds_info, args.snds_patients))
        return
    if args.only_scale:
        _append_scale(Path(args.out), [scale(float(s)) for s in args.scale.split(",") if s], args.scale)
        return
    prevalence, trans, info = recovery(args.patients)
    snds, snds_info = snds_recovery(args.snds_patients)
    spark = spark_equality(args.spark_patients) if args.spark_patients else None
    scale_rows = []
    for size in [float(s) for s in args.scale.split(",") if s]:
        scale_rows.append(scale(size))
        print(scale_rows[-1], flush=True)
    lines = ["# Cartography benchmark", "", (f"`python benchmarks/cartography.py --patients {args.patients} "
             f"--snds-patients {args.snds_patients} --spark-patients {args.spark_patients} --scale '{args.scale}'`"), "", "## Recovery", "",
             (f"{info['patients']} patients, {info['patient_years']} patient-years, {info['events']} events; "
             f"simulation {info['simulate_s']:.1f} s, cartography {info['cartography_s']:.1f} s; allocated total "
             f"equals total spending to the cent: {info['total_equals_allocated']}."), "",
             f"- prevalence: max |error| {prevalence['error_pp'].abs().max():.3f} pp (criterion 1 pp)",
             f"- mean cost: max |error| {prevalence['cost_error_%'].abs().max():.2f} % (criterion 5 %)",
             (f"- transitions: {int(trans['covered'].sum())} / {len(trans)} planted probabilities inside the 95 % "
             "interval"), "", "### Prevalence and mean allocated cost per group and year", "",
             _markdown(prevalence.round(3)),
             "", "### Transitions (pooled 2019-2021 -> next year)", "",
             _markdown(trans[["from_state", "to_state", "probability", "n", "n_from", "rate", "ci_low", "ci_high",
                              "covered"]].round(4))]
    lines += [""] + snds_section(snds, snds_info, args.snds_patients)
    if spark is not None:
        lines += ["", "## Spark engine: the same tables", "",
                  (f"`read_snds(engine=\"spark\")` (local session, every core) against `engine=\"duckdb\"` on "
                   f"{spark['patients']} synthetic SNDS beneficiaries ({spark['events']} events, "
                   f"{SNDS_YEARS[0]}-{SNDS_YEARS[-1]}), then `build_cartography` (packaged rules, "
                   f"{spark['groups_held']} groups held): every table (cells, groups, coefficients, transitions, "
                   f"survival, factors) and the metrics identical: **{spark['same_tables']}**; patient-year "
                   f"identification identical: {spark['same_patient_years']}. Read: DuckDB "
                   f"{spark['duckdb_read_s']:.1f} s, Spark {spark['spark_read_s']:.1f} s (session start "
                   f"{spark['spark_start_s']:.1f} s); load average at the end {os.getloadavg()[0]:.1f} on "
                   f"{os.cpu_count()} cores.")]
    if scale_rows:
        table = pd.DataFrame(scale_rows)[SCALE_COLUMNS]
        lines += ["", "## Scale", "", ("Fresh process per size: build_cartography over chunks of 200 000 patients "
                  "(37 groups, paid amounts, cells by age band x sex x department); each chunk is drawn twice (the "
                  "regression pass and the allocation pass): simulate_s is the drawing time, cartography_s the "
                  "rest. Peak RSS is the whole process's (chunks drawn included)."), "",
                  _markdown(table.round(2))]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
