"""The cartography tables built from ``read_snds(engine="spark")`` equal those from the DuckDB engine, cell for
cell (small synthetic SNDS tables, the packaged rule set, paid and base amounts; stays spanning New Year among them,
whose costs go to their discharge year)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pathways.cartography.build import build_cartography
from pathways.io import read_snds
from pathways.synthetic.snds import write_snds
from tests.io.spark_fixtures import local_spark, quiet

pytestmark = pytest.mark.spark

YEARS = (2020, 2021)


@pytest.fixture(scope="module")
def spark():
    return local_spark()


def test_spark_engine_gives_the_same_cartography(spark, tmp_path):
    write_snds(tmp_path, 400, years=YEARS, seed=9, truth_events=False)
    kwargs = {"cip_to_atc": tmp_path / "nomenclatures" / "IR_PHA_R.parquet", "window": ("2020-01-01", "2021-12-31")}
    duck_log = quiet(read_snds, tmp_path, **kwargs)
    stays, _ = duck_log.to_pandas()
    stays = stays[stays["category"] == "stay"]
    year = lambda days: np.asarray(days, "datetime64[D]").astype("datetime64[Y]")  # noqa: E731
    spans = year(stays["time"]) != year(stays["end"].fillna(stays["time"]))
    assert spans.any() and stays.loc[spans, "base"].sum() > 0  # discharge-year booking is compared too
    duck = build_cartography(duck_log, years=YEARS)
    spk = build_cartography(quiet(read_snds, tmp_path, engine="spark", spark=spark, **kwargs), years=YEARS)
    assert spk.metrics == duck.metrics
    assert duck.metrics["total_spending"] > 0 and duck.metrics["share_with_group"] > 0.05
    for name, table in duck.tables().items():
        pd.testing.assert_frame_equal(spk.tables()[name], table, check_exact=True, obj=name)
    held = duck.groups[(duck.groups["group"] != "total") & (duck.groups["prevalent"] > 0)]
    assert held["group"].nunique() >= 3  # several groups identified: not a comparison of empty tables
    pd.testing.assert_frame_equal(spk.patient_years.frame(), duck.patient_years.frame(), check_exact=True)
    pd.testing.assert_frame_equal(spk.costs, duck.costs, check_exact=True)
    assert (spk.allocation.cents != duck.allocation.cents).nnz == 0
