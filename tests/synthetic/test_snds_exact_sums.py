"""Second round of synthetic SNDS fast paths against their direct forms: cost truth summed as integer cents
(against pandas' compensated group sums rounded to cents), department and provider dictionaries (against
``np.unique`` of the text), PMSI ddmmyyyy dates through a calendar lookup (against per-row formatting)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pathways.synthetic.snds.dcir import id_codes
from pathways.synthetic.snds.model import COST_CATEGORIES
from pathways.synthetic.snds.population import DEPARTMENTS, draw_population, department_codes
from pathways.synthetic.snds.referential import _dmy
from pathways.synthetic.snds.truth import costs_frame


def _pandas_costs(pop, services, reimbursed, stays, kept) -> pd.DataFrame:
    """The former costs_frame: one pandas group sum over services and kept stays, rounded to cents."""
    cat_of_kind = np.array([COST_CATEGORIES.index(c) for c in ("pharmacy", "gp", "specialist", "acts")])
    day = np.concatenate([services["day"], stays["entry"][kept] + stays["los"][kept]])
    frame = pd.DataFrame({
        "p": np.concatenate([services["pat"], stays["pat"][kept]]),
        "year": day.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970,
        "c": np.concatenate([cat_of_kind[services["kind"]], np.full(int(kept.sum()), 4)]),
        "reimbursed": np.concatenate([reimbursed, stays["cost"][kept]])})
    out = frame.groupby(["p", "year", "c"], sort=True)["reimbursed"].sum().reset_index()
    return pd.DataFrame({"patient_id": pop.pid[out["p"].to_numpy()], "year": out["year"].to_numpy(),
                         "category": np.array(COST_CATEGORIES)[out["c"].to_numpy()],
                         "reimbursed": out["reimbursed"].round(2).to_numpy()})


def test_cost_sums_in_integer_cents_equal_compensated_float_sums():
    gen = np.random.default_rng(4)
    pop = draw_population(gen, np.arange(300), (2020, 2021), salt=9)
    n, m = 20_000, 400
    # many small cent amounts per (patient, year, kind), with regularisations (negative) and fee sums
    cents = gen.integers(-3_000, 90_000, n)
    reimbursed = np.round(cents / 100.0, 2) + np.round(gen.integers(0, 2, n) * 1.02, 2)
    services = {"pat": gen.integers(0, pop.n, n), "day": gen.integers(18_262, 18_993, n),
                "kind": gen.integers(0, 4, n)}
    stays = {"pat": gen.integers(0, pop.n, m), "entry": gen.integers(18_262, 18_993, m),
             "los": gen.integers(0, 30, m), "cost": 3000.0 * gen.lognormal(0.0, 0.3, m)}
    kept = gen.random(m) < 0.9
    got = costs_frame(pop, services, reimbursed, stays, kept)
    want = _pandas_costs(pop, services, reimbursed, stays, kept)
    pd.testing.assert_frame_equal(got, want)
    assert (got["category"] == "hospital").sum() > 0 and got["year"].max() == 2022  # exits past the last year


def test_dictionary_codes_equal_sorted_unique_text():
    dept = np.random.default_rng(1).integers(0, DEPARTMENTS.size, 2_000)
    labels, index = department_codes(dept)
    want_labels, want_index = np.unique(DEPARTMENTS[dept], return_inverse=True)
    assert labels.tolist() == want_labels.tolist() and np.array_equal(index, want_index)
    ids = np.concatenate([np.random.default_rng(2).integers(0, 5_000, 3_000), [10**12]])  # sparse: sort path
    for values in (ids[:-1], ids):
        index, labels = id_codes(values, lambda u: u.astype(str))
        assert labels[index].tolist() == values.astype(str).tolist()
        assert labels.tolist() == np.unique(values).astype(str).tolist()


def test_dmy_lookup_equals_per_row_formatting():
    days = np.concatenate([np.random.default_rng(3).integers(17_000, 19_500, 500), [11_016, -1]])
    want = [np.datetime64(int(d), "D").item().strftime("%d%m%Y") for d in days]
    assert _dmy(days).tolist() == want
    sparse = np.array([0, 10**6])  # far apart: formatted row by row
    assert _dmy(sparse).tolist() == [np.datetime64(int(d), "D").item().strftime("%d%m%Y") for d in sparse]
