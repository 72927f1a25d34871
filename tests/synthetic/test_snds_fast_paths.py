"""The vectorised fast paths of the synthetic SNDS writer give what their direct, slower forms give: flux months
through calendar lookup tables, pseudonyms formatted by Arrow, services ordered by one stable key."""
from __future__ import annotations

import numpy as np

from pathways.synthetic.snds.care import services
from pathways.synthetic.snds.catalogue import catalogue
from pathways.synthetic.snds.dcir import _month_after
from pathways.synthetic.snds.population import draw_population, pseudonym, year_start
from pathways.synthetic.snds.providers import Providers


def _direct_month_after(day: np.ndarray, months) -> np.ndarray:
    m = day.astype("datetime64[D]").astype("datetime64[M]") + months
    return m.astype("datetime64[D]").astype(np.int64)


def test_month_after_lookup_equals_calendar_arithmetic():
    gen = np.random.default_rng(0)
    day = gen.integers(-800, 20_000, 5_000)  # 1967-2024, leap years and month ends included
    day[:4] = [-1, 0, 11_016, 11_017]  # 1969-12-31, 1970-01-01, 2000-02-29, 2000-03-01
    months = gen.integers(1, 4, day.size)
    assert np.array_equal(_month_after(day, months), _direct_month_after(day, months))
    sparse = np.array([-135_140, 19_000])  # a sentinel and a 2022 day: the direct path
    assert np.array_equal(_month_after(sparse, 1), _direct_month_after(sparse, 1))
    assert _month_after(np.array([], np.int64)).size == 0


def test_pseudonyms_equal_exact_integer_formatting():
    index = np.concatenate([np.arange(50), np.arange(10**9, 10**9 + 50)])
    salt, mult = 12_345_678_901_234, 7_919_000_003
    expected = [f"{(int(i) * mult + salt) % 10**17:017d}" for i in index]
    assert pseudonym(index, salt).tolist() == expected
    big = np.array([2**61])  # beyond int64 arithmetic: the exact Python path
    assert pseudonym(big, salt).tolist() == [f"{(2**61 * mult + salt) % 10**17:017d}"]


def test_services_are_ordered_like_a_lexsort():
    gen = np.random.default_rng(3)
    prov = Providers.draw(gen, 500)
    pop = draw_population(gen, np.arange(500), (2020, 2021), 7)
    s = services(gen, catalogue(), pop, prov, year_start(2020), year_start(2022))
    assert s["day"].size > 1000
    order = np.lexsort((s["kind"], s["day"], s["pat"]))
    assert np.array_equal(order, np.arange(order.size))  # already in (patient, day, kind) order
