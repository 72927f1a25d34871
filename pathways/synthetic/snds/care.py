"""Outpatient care of one chunk as flat "service" arrays (one per billed service, before the DCIR quirks):
monthly renewals of tracer drugs, acute dispensations, GP and specialist visits, CCAM acts, and the planted
abuse: prescriber/pharmacy shopping, over-prescribing GPs, fraudulent pharmacies."""
from __future__ import annotations

import numpy as np

from pathways.synthetic.snds.catalogue import Catalogue
from pathways.synthetic.snds.model import BACKGROUND_ACTS, MISUSE, PATHOLOGIES
from pathways.synthetic.snds.population import Population
from pathways.synthetic.snds.providers import Providers

PHARMACY, GP, SPECIALIST, ACT = 0, 1, 2, 3
#: fraud codes of a service (truth)
FRAUD = ("", "shopping", "over_prescribing", "no_prescription", "inflated_quantity", "impossible_dates")
FIELDS = ("pat", "day", "kind", "item", "qty", "prescriber", "executor", "etb", "path", "pre_day", "seq", "fraud")


def _block(n: int, **values) -> dict[str, np.ndarray]:
    """A block of ``n`` services; missing fields get their neutral value."""
    neutral = {"item": -1, "qty": 1, "prescriber": -1, "executor": -1, "etb": -1, "path": -1, "seq": 0, "fraud": 0}
    out = {}
    for f in FIELDS:
        v = values.get(f, neutral.get(f, np.nan))
        out[f] = np.broadcast_to(np.asarray(v), (n,)).copy() if np.ndim(v) == 0 else np.asarray(v)
    return out


def _concat(blocks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {f: np.concatenate([b[f] for b in blocks]) for f in FIELDS}


def _intervals(pop: Population, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """(patient, pathology) active intervals clipped to the study period and death: lo, hi (days)."""
    death = np.where(np.isnan(pop.death), stop, pop.death + 1)
    lo = np.maximum(pop.onset, start)
    hi = np.minimum(np.minimum(pop.end, stop), death[:, None])
    return lo, hi


def _uniform_days(gen: np.random.Generator, owner: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.floor(lo[owner] + gen.random(owner.size) * (hi[owner] - lo[owner])).astype(np.int64)


def renewals(gen: np.random.Generator, lo: np.ndarray, hi: np.ndarray, interval: np.ndarray,
             jitter: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Regular dispensations: one every ``interval`` days (+- jitter) over [lo, hi); (owner row, day, sequence)."""
    first = lo + np.floor(gen.random(lo.size) * np.minimum(10, np.maximum(hi - lo, 1)))
    count = np.where(hi > first, np.floor((hi - 1 - first) / interval) + 1, 0).astype(np.int64)
    owner = np.repeat(np.arange(lo.size), count)
    seq = np.arange(owner.size) - np.repeat(np.cumsum(count) - count, count)
    day = first[owner] + seq * interval[owner] + gen.integers(-jitter, jitter + 1, owner.size)
    day = np.clip(day, lo[owner], hi[owner] - 1).astype(np.int64)
    return owner, day, seq


def chronic_drugs(gen: np.random.Generator, cat: Catalogue, pop: Population, prov: Providers, start: int,
                  stop: int) -> dict[str, np.ndarray]:
    """Tracer drugs of each active pathology: 1-2 per patient (hypertension 1-3), monthly or 3-month boxes."""
    lo, hi = _intervals(pop, start, stop)
    pats, paths, rows, lows, highs = [], [], [], [], []
    for k, p in enumerate(PATHOLOGIES):
        monthly, quarterly = cat.tracers[k]
        pat = np.flatnonzero(hi[:, k] > lo[:, k])
        n_drugs = np.minimum(1 + (gen.random(pat.size) < 0.4) + (k == 1) * (gen.random(pat.size) < 0.3),
                             len(p.drugs))
        first = gen.integers(0, len(p.drugs), pat.size)
        long_box = gen.random(pat.size) < 0.25
        for j in range(int(n_drugs.max(initial=0))):
            take = n_drugs > j
            which = (first[take] + j) % len(p.drugs)
            rows.append(np.where(long_box[take], quarterly[which], monthly[which]))
            pats.append(pat[take]), paths.append(np.full(int(take.sum()), k))
            lows.append(lo[pat[take], k]), highs.append(hi[pat[take], k])
    if not rows:
        return _block(0, pat=np.zeros(0, np.int64), day=np.zeros(0, np.int64), kind=PHARMACY)
    row, pat, path = np.concatenate(rows), np.concatenate(pats), np.concatenate(paths)
    owner, day, seq = renewals(gen, np.concatenate(lows), np.concatenate(highs), cat.units[row].astype(float))
    p = pat[owner]
    spe = prov.n_gp + prov.specialist(pop.index[p], path[owner])
    by_spe = gen.random(owner.size) < 0.3
    hospital_drug = np.isin(path[owner], [5, 6])  # cancer, dialysis: hospital prescriptions (ETB_PRE_FIN)
    return _block(owner.size, pat=p, day=day, kind=PHARMACY, item=row[owner], qty=1,
                  prescriber=np.where(by_spe | hospital_drug, spe, prov.gp(pop.index[p])),
                  executor=prov.pharmacy(pop.index[p]),
                  etb=np.where(hospital_drug, prov.hospital(pop.index[p]), -1), path=path[owner],
                  pre_day=day - np.minimum(seq % 3 * 30 + gen.integers(0, 5, owner.size), 120), seq=seq % 3)


def acute_drugs(gen: np.random.Generator, cat: Catalogue, pop: Population, prov: Providers, years: np.ndarray,
                lo: np.ndarray, hi: np.ndarray) -> dict[str, np.ndarray]:
    """Occasional dispensations (antibiotics, analgesics, ...): Poisson(3 a year), GP-prescribed mostly."""
    n = gen.poisson(3.0 * years)
    pat = np.repeat(np.arange(pop.n), n)
    day = _uniform_days(gen, pat, lo, hi)
    spe = prov.n_gp + prov.specialist(pop.index[pat], 15)
    return _block(pat.size, pat=pat, day=day, kind=PHARMACY, item=cat.acute[gen.integers(0, cat.acute.size, pat.size)],
                  qty=1 + (gen.random(pat.size) < 0.15), prescriber=np.where(gen.random(pat.size) < 0.85,
                                                                           prov.gp(pop.index[pat]), spe),
                  executor=prov.pharmacy(pop.index[pat]), pre_day=day - gen.integers(0, 3, pat.size))


def misuse_drugs(gen: np.random.Generator, cat: Catalogue, pop: Population, prov: Providers, years: np.ndarray,
                 lo: np.ndarray, hi: np.ndarray) -> dict[str, np.ndarray]:
    """Drugs open to misuse: background use, over-prescribing GPs' patients, and shoppers (prescribers and
    pharmacies drawn from a pool of 8-15 / 4-8 for each dispensation, every ~6 days)."""
    blocks = []
    gp = prov.gp(pop.index)
    over = np.isin(gp, prov.over_prescribers)
    classes = sorted(MISUSE)
    common = np.concatenate([cat.misuse["opioids"], cat.misuse["benzodiazepines"]])
    for rate, who, fraud in ((0.3, np.ones(pop.n, bool), 0), (8.0, over, 2)):
        n = np.where(who, gen.poisson(rate * years), 0)
        pat = np.repeat(np.arange(pop.n), n)
        day = _uniform_days(gen, pat, lo, hi)
        blocks.append(_block(pat.size, pat=pat, day=day, kind=PHARMACY,
                             item=common[gen.integers(0, common.size, pat.size)], qty=1, prescriber=gp[pat],
                             executor=prov.pharmacy(pop.index[pat]), pre_day=day - gen.integers(0, 3, pat.size),
                             fraud=fraud))
    shop = np.flatnonzero(pop.shopper != "")
    if shop.size:
        n = gen.poisson((hi[shop] - lo[shop]) / 6.0)
        owner = np.repeat(np.arange(shop.size), n)
        pat = shop[owner]
        day = _uniform_days(gen, owner, lo[shop], hi[shop])
        item = np.empty(pat.size, np.int64)
        for c in classes:
            mask = pop.shopper[pat] == c
            item[mask] = cat.misuse[c][gen.integers(0, cat.misuse[c].size, int(mask.sum()))]
        n_presc = prov.n_gp + prov.n_specialists
        pool_p = gen.integers(8, 16, shop.size)
        pool_f = gen.integers(4, 9, shop.size)
        # pool member m of shopper s: a fixed pseudo-random provider (hash of s and m)
        m_p = np.floor(gen.random(pat.size) * pool_p[owner]).astype(np.int64)
        m_f = np.floor(gen.random(pat.size) * pool_f[owner]).astype(np.int64)
        presc = (pop.index[pat] * 7919 + m_p * 104729) % n_presc
        pharm = (pop.index[pat] * 15485863 + m_f * 1299709) % prov.n_pharmacies
        blocks.append(_block(pat.size, pat=pat, day=day, kind=PHARMACY, item=item,
                             qty=1 + (gen.random(pat.size) < 0.5), prescriber=presc, executor=pharm,
                             pre_day=day - gen.integers(0, 3, pat.size), fraud=1))
    return _concat(blocks)


def visits_and_acts(gen: np.random.Generator, cat: Catalogue, pop: Population, prov: Providers, start: int,
                    stop: int, years: np.ndarray, lo_p: np.ndarray, hi_p: np.ndarray) -> dict[str, np.ndarray]:
    """GP visits (more with age and pathologies), specialist visits and CCAM acts of each pathology."""
    lo, hi = _intervals(pop, start, stop)
    span = np.maximum(hi - lo, 0) / 365.25
    age = (start - pop.birth) / 365.25
    blocks = []
    n = gen.poisson((2.0 + age / 25.0) * years + 1.5 * span.sum(axis=1))
    pat = np.repeat(np.arange(pop.n), n)
    gp = prov.gp(pop.index[pat])
    blocks.append(_block(pat.size, pat=pat, day=_uniform_days(gen, pat, lo_p, hi_p), kind=GP, prescriber=gp,
                         executor=gp))
    for k, p in enumerate(PATHOLOGIES):
        for kind, rate in ((SPECIALIST, p.specialist_per_year), (ACT, p.acts_per_year)):
            if rate <= 0 or (kind == ACT and not p.acts):
                continue
            n = gen.poisson(rate * span[:, k])
            pat = np.repeat(np.arange(pop.n), n)
            day = np.floor(lo[pat, k] + gen.random(pat.size) * (hi[pat, k] - lo[pat, k])).astype(np.int64)
            spe = prov.n_gp + prov.specialist(pop.index[pat], k)
            item = cat.path_acts[k][gen.integers(0, len(p.acts), pat.size)] if kind == ACT else -1
            blocks.append(_block(pat.size, pat=pat, day=day, kind=kind, item=item, path=k,
                                 prescriber=spe if kind == SPECIALIST else prov.gp(pop.index[pat]), executor=spe))
    n = gen.poisson(0.4 * years)
    pat = np.repeat(np.arange(pop.n), n)
    acts = cat.ccam_index(BACKGROUND_ACTS)
    blocks.append(_block(pat.size, pat=pat, day=_uniform_days(gen, pat, lo_p, hi_p), kind=ACT,
                         item=acts[gen.integers(0, acts.size, pat.size)], prescriber=prov.gp(pop.index[pat]),
                         executor=prov.n_gp + prov.specialist(pop.index[pat], 14)))
    return _concat(blocks)


def pharmacy_fraud(gen: np.random.Generator, s: dict[str, np.ndarray], prov: Providers) -> None:
    """Fraudulent pharmacies, in place: no prescription (30 %), tripled quantities (30 %), prescription dated after
    the dispensation (25 %) on their dispensations."""
    pha = s["kind"] == PHARMACY
    kind = np.where(pha, prov.pharmacy_fraud(np.where(pha, s["executor"], -1)), -1)
    u = gen.random(kind.size)
    no_rx = (kind == 0) & (u < 0.3) & (s["fraud"] == 0)
    s["prescriber"][no_rx] = -1
    s["etb"][no_rx] = -1
    s["pre_day"][no_rx] = np.nan
    s["fraud"][no_rx] = 3
    inflated = (kind == 1) & (u < 0.3) & (s["fraud"] == 0)
    s["qty"][inflated] *= 3
    s["fraud"][inflated] = 4
    late = (kind == 2) & (u < 0.25) & (s["fraud"] == 0)
    s["pre_day"][late] = s["day"][late] + gen.integers(5, 31, int(late.sum()))
    s["fraud"][late] = 5


def services(gen: np.random.Generator, cat: Catalogue, pop: Population, prov: Providers, start: int,
             stop: int) -> dict[str, np.ndarray]:
    """Every outpatient service of the chunk, sorted by (patient, day)."""
    stop_p = np.where(np.isnan(pop.death), stop, pop.death + 1)
    lo_p = np.full(pop.n, float(start))
    years = np.maximum(stop_p - lo_p, 0) / 365.25
    s = _concat([chronic_drugs(gen, cat, pop, prov, start, stop),
                 acute_drugs(gen, cat, pop, prov, years, lo_p, stop_p),
                 misuse_drugs(gen, cat, pop, prov, years, lo_p, stop_p),
                 visits_and_acts(gen, cat, pop, prov, start, stop, years, lo_p, stop_p)])
    s["pre_day"] = s["pre_day"].astype(float)
    s["qty"] = s["qty"].astype(np.int64)
    pharmacy_fraud(gen, s, prov)
    # one int64 key and a stable sort: the order of lexsort((kind, day, pat)), about twice as fast
    day0 = int(s["day"].min()) if s["day"].size else 0
    span = int(s["day"].max()) - day0 + 1 if s["day"].size else 1
    order = np.argsort((s["pat"] * span + (s["day"] - day0)) * 4 + s["kind"], kind="stable")
    return {f: v[order] for f, v in s.items()}


__all__ = ["ACT", "FRAUD", "GP", "PHARMACY", "SPECIALIST", "renewals", "services"]
