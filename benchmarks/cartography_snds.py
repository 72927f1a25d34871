"""Report helpers of the synthetic-SNDS section of ``benchmarks/cartography.py`` (its markdown section, the
planted cost categories read, the estimand text), kept apart so that the benchmark stays one readable file."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

#: planted cost categories (truth ``costs``) that ``read_snds`` turns into event amounts: with the ``dcir_services``
#: source, all of them (dispensations and their dispensing fees PRS:3336, CCAM acts, GP and specialist
#: consultations PRS:1111 / PRS:1112, stays)
READ_CATEGORIES = ("pharmacy", "gp", "specialist", "acts", "hospital")
#: planted cost category -> the care category of ``patient_year_costs`` its amounts are read into
PLANTED_CARE = {"pharmacy": "drugs", "gp": "consultations_acts", "specialist": "consultations_acts",
                "acts": "consultations_acts", "hospital": "hospital"}
CARE_ORDER = ("hospital", "drugs", "consultations_acts", "other")
SNDS_ESTIMAND = (
    "Estimand: the rules see the tables, so they are compared with the **identifiable** planted prevalence: "
    "pathology-years the tables reveal by an ALD, a stay (principal or related diagnosis) or a dispensation of a "
    "tracer drug that no other pathology lists (truth columns `identifiable` = `ald | hospital | own_drug`). "
    "Pathology-years shown only by a shared tracer (atorvastatin C10AA05 of hypertension, coronary disease and "
    "stroke; bisoprolol, clopidogrel) cannot be attributed to one pathology by any rule; they are in "
    "`planted_prevalence_%` (every active pathology-year) and counted in `shared_tracer_only_%`. Pathologies "
    "with a remission (cancer, psychiatric, dialysis) are not identified by their ALD alone: the generator keeps "
    "an ALD open 1-3 years after a remission (surveillance years, not planted active years).")


def _markdown(frame: pd.DataFrame) -> str:
    """A markdown table (header, separator, rows)."""
    cols = [str(c) for c in frame.columns]
    rows = ["|" + "|".join(str(v) for v in row) + "|" for row in frame.itertuples(index=False)]
    return "\n".join(["|" + "|".join(cols) + "|", "|" + "|".join("---" for _ in cols) + "|", *rows])


def snds_section(snds: pd.DataFrame, snds_info: dict, n_patients: int) -> list[str]:
    """Markdown lines of the synthetic-SNDS recovery section (its own ``--only-snds`` command and load)."""
    lines = ["## Recovery on synthetic SNDS (pathways.synthetic.snds)", "",
             (f"`python benchmarks/cartography.py --only-snds --snds-patients {n_patients}` (or the full run); "
              f"{snds_info['cpu_s']:.1f} CPU s, load average (1 min) at the end {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores."), "",
              (f"{snds_info['patients']} beneficiaries, {snds_info['events']} events (read_snds + IR_IMB_R); write "
              f"{snds_info['write_s']:.1f} s, read {snds_info['read_s']:.1f} s, identification "
              f"{snds_info['identify_s']:.2f} s."), "", SNDS_ESTIMAND, "",
              (f"- prevalence vs the identifiable planted prevalence: max |error| {snds['error_pp'].abs().max():.3f} "
              "pp (criterion 1 pp)"),
              (f"- planted pathology-years revealed only by a shared tracer: up to "
              f"{snds['shared_tracer_only_%'].max():.3f} % of the population (in planted_prevalence_%, not in "
              "identifiable_prevalence_%)"),
              f"- population per year equals the planted one: {bool((snds['population'] == snds['planted_population']).all())}",
              (f"- mean yearly reimbursement of the identified members vs the identifiable planted members: max "
              f"|error| {snds['spend_error_%'].abs().max():.2f} % (criterion 5 %)"), "", _markdown(snds.round(3))]
    sc, st = snds_info["costs"], snds_info["transitions"]
    lines += ["", "### Mean allocated cost per group and transitions on synthetic SNDS", "",
              ("The rules' side: identified pathology-years, amounts `base` read by `read_snds` with every source, "
               "`dcir_services` included (DCIR BSE_REM_MNT, services by PRS_NAT_REF family: SERVICE_FAMILIES; "
               "stays: T_MCOaaVALO MNT_BR, in the year of the stay's discharge), allocated by `allocate` (regression "
               "on group "
               "indicators, age bands, sex); transitions of the rules' states (first group in rule order). The "
               "planted side: the same allocation on the planted identifiable pathology-years (same patient-years) "
               "and the planted costs (truth `costs`: reimbursed amounts, stays' GHS-like cost by discharge year); "
               "transition rates of the planted identifiable states. "
               f"Computed in {snds_info['costs_transitions_s']:.1f} s."), "",
              (f"- hospital stay costs read: {snds_info['read_hospital']:,.2f} EUR vs planted "
               f"{snds_info['planted_hospital']:,.2f} EUR; all spending read {snds_info['read_total']:,.2f} vs "
               f"planted {snds_info['planted_total']:,.2f} EUR"),
              (f"- planted spending of the categories read_snds turns into amounts ({', '.join(READ_CATEGORIES)}): "
               f"{snds_info['planted_read_categories']:,.2f} EUR. Read by care category: consultations and acts "
               f"{snds_info['read_consultations']:,.2f}, drugs (dispensing fees PRS:3336 included) "
               f"{snds_info['read_drugs']:,.2f}, other {snds_info['read_other']:,.2f} EUR"),
              (f"- mean allocated cost per group vs the planted allocation of all planted spending: max |error| "
               f"{sc['cost_error_%'].abs().max():.2f} % (criterion 5 %); groups x years within 5 %: "
               f"{int((sc['cost_error_%'].abs() <= 5).sum())} / {len(sc)}"),
              (f"- the same vs the planted allocation of the planted spending of the categories read: max |error| "
               f"{sc['cost_error_read_categories_%'].abs().max():.2f} %; groups x years within 5 %: "
               f"{int((sc['cost_error_read_categories_%'].abs() <= 5).sum())} / {len(sc)}. Planted spending of "
               f"these categories minus the amounts read = "
               f"{snds_info['planted_read_categories'] - snds_info['read_total']:,.2f} EUR (the pharmacy "
               f"dispensing fees summed on the tables, ER_PRS_F PRS_NAT_REF 3336, are {snds_info['fees']:,.2f} EUR, "
               "read as services)"),
              (f"- patient-years whose spending read differs from the planted one (any care category, to the "
               f"cent): {snds_info['rows_differing']} of {snds_info['patient_years']}; what still differs between "
               "the two allocations is the rules' states against the planted ones (members vs planted_members) "
               "and the regression fitted on them"),
              (f"- transitions: {int(st['covered'].sum())} / {len(st)} planted rates inside the rules' 95 % "
               "interval"),
              f"- planted identifiable pathology-years outside the rules' patient-years: {snds_info['planted_outside']}",
              "", _markdown(sc.round(3)), "",
              _markdown(st[["from_state", "to_state", "planted_rate", "n", "n_from", "rate", "ci_low", "ci_high",
                            "covered"]].round(4))]
    return lines


def _replace_snds(out: Path, lines: list[str]) -> None:
    """Replace the synthetic-SNDS section of the results file (up to the next ``## `` header) by ``lines``."""
    text = out.read_text() if out.exists() else "# Cartography benchmark\n"
    head = "## Recovery on synthetic SNDS"
    new = "\n".join(lines) + "\n"
    if head in text:
        before, rest = text.split(head, 1)
        nxt = rest.find("\n## ")
        text = before + new + (rest[nxt + 1:] if nxt >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + new
    out.write_text(text)
    print(new)
