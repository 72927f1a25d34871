import numpy as np
import pandas as pd
import pytest

from pathways.errors import PathwaysInputError
from pathways.signals.calibration import fit_null
from pathways.signals.table import SIGNAL_COLUMNS, benjamini_hochberg, signal_table


def test_bh_matches_definition():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205])
    q = benjamini_hochberg(p)
    expected = np.minimum.accumulate((p * 8 / np.arange(1, 9))[::-1])[::-1]
    np.testing.assert_allclose(q, expected)


def test_null_fit_recovers_bias_and_spread():
    rng = np.random.default_rng(1)
    se = rng.uniform(0.05, 0.3, 400)
    null = fit_null(rng.normal(0.4, 0.25, 400) + rng.normal(0, se), se)
    assert null.mean == pytest.approx(0.4, abs=0.05)
    assert null.sd == pytest.approx(0.25, abs=0.05)


def test_too_few_controls():
    with pytest.raises(PathwaysInputError, match="at least 5"):
        fit_null(np.zeros(3), np.ones(3))


def _estimates(bias, rng, n_null=60, effects=(2.0, 3.0)):
    """Null pairs biased by exp(bias) plus a few true effects, with se 0.1."""
    log_null = bias + rng.normal(0, 0.1, n_null)
    log_eff = np.log(effects) + bias + rng.normal(0, 0.1, len(effects))
    log_est = np.concatenate([log_null, log_eff])
    se = np.full(log_est.size, 0.1)
    from scipy import stats
    return pd.DataFrame({
        "exposure": [f"d{i}" for i in range(log_est.size)], "outcome": "ae", "method": "SCCS",
        "estimate": np.exp(log_est), "ci_low": np.exp(log_est - 1.96 * se), "ci_high": np.exp(log_est + 1.96 * se),
        "p": 2 * stats.norm.sf(np.abs(log_est / se)), "se_log": se, "n_exposed_events": 50,
    })


def test_calibration_removes_systematic_bias_as_theory_says():
    rng = np.random.default_rng(0)
    est = _estimates(bias=0.5, rng=rng)
    controls = [(f"d{i}", "ae") for i in range(60)]
    raw = signal_table(est)
    cal = signal_table(est, negative_controls=controls)
    null_rows = cal["negative_control"]
    # uncalibrated: a bias of 5 standard errors flags nearly every null pair
    assert raw.loc[:59, "flag"].mean() > 0.9
    # calibrated: null p-values are roughly uniform and true effects stay flagged
    assert cal.loc[null_rows, "flag"].mean() <= 0.05
    assert cal.loc[~null_rows, "flag"].all()
    assert cal.attrs["null"]["SCCS"]["mean"] == pytest.approx(0.5, abs=0.05)
    # calibrated interval of a null pair covers 1
    row = cal.loc[null_rows].iloc[0]
    assert row["ci_low_calibrated"] < 1 < row["ci_high_calibrated"]
    assert list(cal.columns[: len(SIGNAL_COLUMNS)]) == list(SIGNAL_COLUMNS)


def test_no_bias_keeps_p_values_close():
    rng = np.random.default_rng(2)
    est = _estimates(bias=0.0, rng=rng)
    cal = signal_table(est, negative_controls=[(f"d{i}", "ae") for i in range(60)])
    ratio = cal["p_calibrated"] / cal["p"]
    assert np.nanmedian(ratio) == pytest.approx(1.0, abs=0.35)


def test_rank_puts_flagged_first_and_min_events_blocks_flags():
    rng = np.random.default_rng(0)
    est = _estimates(bias=0.0, rng=rng)
    est.loc[est.index[-1], "n_exposed_events"] = 1
    table = signal_table(est, min_events=3)
    assert not table.iloc[-1]["flag"]
    flagged = table[table["flag"]]
    assert flagged["rank"].max() < table.loc[~table["flag"], "rank"].min()


def test_missing_columns_named():
    with pytest.raises(PathwaysInputError, match="missing column.*p"):
        signal_table(pd.DataFrame({"exposure": [], "outcome": [], "method": []}))
