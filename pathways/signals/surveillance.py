"""Signal surveillance over time: screen cumulative data at each period and say when each alert came.

At every look (end of a month or quarter) the data known by that date are analysed with the same design:

* **sequential test** (``"maxsprt"``): a self-controlled risk interval count per (drug, outcome). Each *incident*
  dispensation (no dispensation of the drug in the ``washout`` days before) whose risk and control windows are
  fully observed by the look contributes its outcome events in the risk window ``[t + r0, t + r1)`` and in the
  control window ``[t + c0, t + c1)`` (before the dispensation). Under the null each such event falls in the risk
  window with probability ``1 / (1 + z)``, ``z`` = control length / risk length, so the risk-window count is
  binomial given the total: the binomial MaxSPRT applies, with power alpha spending over the planned information
  ``max_cases`` (:mod:`pathways.signals.sequential`) or the flat Wald boundary of the continuous test. Two
  adjustments make "under the null" hold on real claims: the probability is computed per case from the outcome's
  **background incidence by calendar bin** (the control window comes first, so any rise of the outcome over
  calendar time would otherwise count as an effect of every drug), and from the **other drugs raised on the same
  outcome** at that look (a drug co-started with a harmful one would otherwise inherit its excess). The unequal
  probabilities keep the spending thresholds conservative (:func:`~pathways.signals.sequential.binomial_spending_thresholds`).
* **repeated screen** (``"repeated"``): :func:`pathways.signals.detect` (SCCS, calibrated on negative controls)
  on the cumulative data, a pair alerting when its calibrated q-value is below ``alpha / n_looks``. The Bonferroni
  division by the number of planned looks bounds, for each pair, the probability of ever alerting under the null
  by ``alpha`` (union bound over looks; conservative, since successive looks share most of their data).

The history of every (pair, method) gives the first alert, how many looks alerted, persistence (share of looks
alerted since the first alert) and dropped alerts (an alert followed by a look without). A sequential signal is
final (the test stops), so it never drops.
"""
from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from pathways.data.dates import EPOCH
from pathways.data.eventlog import EventLog
from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.signals.detect import StudyDesign, detect
from pathways.signals.plan import SurveillancePlan
from pathways.signals.scri import ScriIndex, scri_counts
from pathways.signals.sequential import (
    binomial_llr,
    binomial_maxsprt_cv,
    binomial_spending_thresholds,
)

__all__ = ["SurveillancePlan", "alert_history", "look_times", "plot_timeline", "scri_counts", "surveil"]

PERIOD_MONTHS = {"month": 1, "quarter": 3, "semester": 6, "year": 12}
LOOK_COLUMNS = ("look", "date", "exposure", "outcome", "n_cases", "n_risk", "estimate", "llr", "threshold",
                "alert_maxsprt")


def look_times(plan: SurveillancePlan) -> pd.DataFrame:
    """Date and time (days since 1970-01-01, the EventLog clock) of each look.

    Examples
    --------
    >>> look_times(SurveillancePlan(start="2020-01-01", n_looks=2))["date"].dt.strftime("%Y-%m-%d").tolist()
    ['2020-04-01', '2020-07-01']
    """
    start = pd.Timestamp(plan.start)
    k = np.arange(1, plan.n_looks + 1)
    if isinstance(plan.period, str):
        if plan.period not in PERIOD_MONTHS:
            raise PathwaysInputError(f"period: expected one of {sorted(PERIOD_MONTHS)} or days, got {plan.period!r}")
        dates = pd.DatetimeIndex([start + pd.DateOffset(months=int(PERIOD_MONTHS[plan.period] * i)) for i in k])
    else:
        dates = pd.DatetimeIndex(start + pd.to_timedelta(k * float(plan.period), unit="D"))
    return pd.DataFrame({"look": k, "date": dates, "time": (dates - EPOCH) / pd.Timedelta(days=1)})


def _sequential(counts: pd.DataFrame, plan: SurveillancePlan) -> pd.DataFrame:
    """Per pair and look: the SCRI estimate, LLR, threshold (risk count that signals) and the cumulative alert."""
    counts = counts.sort_values(["exposure", "outcome", "look"]).reset_index(drop=True)
    z = plan.z
    n, k = counts["n_cases"].to_numpy(), counts["n_risk"].to_numpy()
    e = counts["expected_risk"].to_numpy(float) if "expected_risk" in counts else n / (1.0 + z)
    with np.errstate(divide="ignore", invalid="ignore"):
        z_pair = np.where((e > 0) & (n > e), (n - e) / e, z)  # null odds control : risk of these cases
        counts["estimate"] = np.where(n - k > 0, z_pair * k / (n - k), np.nan)  # incidence ratio risk vs control
    counts["llr"] = binomial_llr(k, n, z_pair)
    if plan.spending == "flat":  # the continuous test's critical value at the nominal z
        cv = binomial_maxsprt_cv(plan.max_cases, z, plan.alpha, plan.min_cases)
        counts["threshold"] = np.nan
        counts["llr_threshold"] = cv
        signal = (counts["llr"].to_numpy() >= cv) & (n >= plan.min_cases)
    else:
        thresholds = [_pair_thresholds(part, plan) for _, part in counts.groupby(["exposure", "outcome"], sort=False)]
        table = pd.concat(thresholds, ignore_index=True)
        counts["threshold"] = table["threshold"].to_numpy()
        counts["llr_threshold"] = table["llr_threshold"].to_numpy()
        signal = k >= counts["threshold"].to_numpy()
    counts["alert_maxsprt"] = pd.Series(signal).groupby([counts["exposure"], counts["outcome"]]).cummax().to_numpy()
    return counts


def _pair_thresholds(part: pd.DataFrame, plan: SurveillancePlan) -> pd.DataFrame:
    """Spending thresholds of one pair over its looks. The background rates are re-estimated at each look, so a
    case's null probability may move slightly between looks: the cumulative expectation is kept non-decreasing."""
    cases = np.maximum.accumulate(part["n_cases"].to_numpy())
    expected = None
    if "expected_risk" in part:
        expected = np.minimum(np.maximum.accumulate(part["expected_risk"].to_numpy(float)), cases)
    return binomial_spending_thresholds(cases, plan.max_cases, plan.z, plan.alpha, plan.rho, plan.min_cases,
                                        expected=expected)


def _repeated(log: EventLog, design: StudyDesign, plan: SurveillancePlan, at: float) -> pd.DataFrame:
    """The SCCS screen of the data known at ``at``, flagged at the Bonferroni-corrected level ``alpha / K``."""
    sccs = replace(design, methods=("SCCS",), negative_controls=list(plan.negative_controls or
                                                                        design.negative_controls))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PathwaysDataWarning)
        table = detect(log.window(end=at), sccs, q_threshold=plan.alpha / plan.n_looks, alpha=plan.alpha)
    calibrated = table["p_calibrated"].notna().any()
    pick = (lambda c: table[f"{c}_calibrated"]) if calibrated else (lambda c: table[c])
    return pd.DataFrame({"exposure": table["exposure"].astype(str), "outcome": table["outcome"].astype(str),
                         "sccs_estimate": table["estimate"], "sccs_ci_low": pick("ci_low"),
                         "sccs_ci_high": pick("ci_high"), "sccs_p": pick("p"),
                         "n_sccs_events": table["n_exposed_events"], "alert_repeated": table["flag"].astype(bool)})


def surveil(log: EventLog, design: StudyDesign, plan: SurveillancePlan | None = None) -> pd.DataFrame:
    """Run the surveillance: one row per (look, drug, outcome) with the sequential and repeated-screen results.

    Parameters
    ----------
    log : the full event log; each look only sees events before its date.
    design : the screen's :class:`StudyDesign` (drugs, outcomes, SCCS design, negative controls).
    plan : looks, tests and error control (:class:`SurveillancePlan`).

    Returns
    -------
    DataFrame :data:`LOOK_COLUMNS` (+ ``llr_threshold``, ``n_exposures`` and, with ``"repeated"``, the SCCS
    estimate and calibrated interval and ``alert_repeated``); ``attrs["plan"]`` keeps the plan's main fields.

    Examples
    --------
    >>> from pathways.synthetic.cohort import simulate_cohort
    >>> log, truth = simulate_cohort(300, seed=0)
    >>> plan = SurveillancePlan(start="2015-01-01", n_looks=4, methods=("maxsprt",))
    >>> looks = surveil(log, StudyDesign(outcomes=truth.outcomes), plan)
    >>> sorted(looks["look"].unique().tolist())
    [1, 2, 3, 4]
    """
    plan = plan or SurveillancePlan()
    plan.check()
    times = look_times(plan)
    index = ScriIndex(log, plan, design.drugs, design.outcomes)
    parts = []
    for look, date, at in times.itertuples(index=False):  # 12 looks or so: each is one screen of the data
        counts = scri_counts(log, at, plan, index=index)
        counts.insert(0, "look", look)
        counts.insert(1, "date", date)
        if "repeated" in plan.methods:
            counts = counts.merge(_repeated(log, design, plan, at), on=["exposure", "outcome"], how="left")
            counts["alert_repeated"] = counts["alert_repeated"].fillna(False).astype(bool)
        parts.append(counts)
    looks = _sequential(pd.concat(parts, ignore_index=True), plan)
    if "maxsprt" not in plan.methods:
        looks = looks.drop(columns=["alert_maxsprt"])
    rest = [c for c in looks.columns if c not in LOOK_COLUMNS]
    looks = looks[[c for c in LOOK_COLUMNS if c in looks.columns] + rest].sort_values(["look", "exposure", "outcome"])
    looks = looks.reset_index(drop=True)
    looks.attrs["plan"] = {"alpha": plan.alpha, "n_looks": plan.n_looks, "z": plan.z, "max_cases": plan.max_cases,
                           "spending": plan.spending, "rho": plan.rho, "period": str(plan.period)}
    return looks


def alert_history(looks: pd.DataFrame) -> pd.DataFrame:
    """The alert table: one row per (drug, outcome, method) that alerted at least once.

    Columns ``exposure, outcome, method, first_alert_look, first_alert_date, n_looks_alerted, persistence``
    (share of looks alerted from the first alert on), ``n_dropped`` (alerts followed by a look without),
    ``alerted_last``, and at the last look ``n_cases``, ``n_risk``, ``estimate``.
    """
    rows = []
    for method in ("maxsprt", "repeated"):
        column = f"alert_{method}"
        if column not in looks.columns:
            continue
        for (exposure, outcome), part in looks.sort_values("look").groupby(["exposure", "outcome"], sort=True):
            alert = part[column].to_numpy(bool)
            if not alert.any():
                continue
            first = int(np.argmax(alert))
            last = part.iloc[-1]
            rows.append({"exposure": exposure, "outcome": outcome, "method": method,
                         "first_alert_look": int(part["look"].iloc[first]),
                         "first_alert_date": part["date"].iloc[first],
                         "n_looks_alerted": int(alert.sum()), "persistence": float(alert[first:].mean()),
                         "n_dropped": int(np.sum(alert[:-1] & ~alert[1:])), "alerted_last": bool(alert[-1]),
                         "n_cases": int(last["n_cases"]), "n_risk": int(last["n_risk"]),
                         "estimate": float(last["estimate"])})
    columns = ["exposure", "outcome", "method", "first_alert_look", "first_alert_date", "n_looks_alerted",
               "persistence", "n_dropped", "alerted_last", "n_cases", "n_risk", "estimate"]
    return pd.DataFrame(rows, columns=columns)


def plot_timeline(looks: pd.DataFrame, exposure: str, outcome: str, path: str | Path | None = None, *,
                  ax: object = None) -> object:
    """Timeline of one pair: estimate (and SCCS interval) by look, and the sequential LLR against its threshold.

    matplotlib is optional (``pathways[plot]``): drawn with :mod:`pathways.plots` helpers on the caller's two axes
    (``ax=``: estimate, LLR) or a new Agg figure (no pyplot), written atomically when ``path`` is given. Returns
    the figure.
    """
    from pathways.plots import _panels, _save

    part = looks[(looks["exposure"] == exposure) & (looks["outcome"] == outcome)].sort_values("date")
    if part.empty:
        raise PathwaysInputError("plot_timeline: the pair is not in the surveillance table")
    fig, (top, bottom) = _panels(ax, 2, 7, 2.75, max_cols=1)
    if ax is None:
        bottom.sharex(top)
        top.tick_params(labelbottom=False)  # the shared date axis is labelled once, below
    dates = part["date"].to_numpy()
    top.plot(dates, part["estimate"], "o-", label="SCRI incidence ratio")
    if "sccs_estimate" in part:
        low, high = part["sccs_ci_low"].to_numpy(float), part["sccs_ci_high"].to_numpy(float)
        est = part["sccs_estimate"].to_numpy(float)
        top.errorbar(dates, est, yerr=[np.clip(est - low, 0, None), np.clip(high - est, 0, None)], fmt="s",
                     capsize=3, label="SCCS (calibrated interval)")
    top.axhline(1.0, color="grey", lw=1)
    top.set_yscale("log")
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    top.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 0.5, 1, 2, 5 rather than 10^0 only
    top.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    top.yaxis.set_minor_formatter(NullFormatter())
    top.set_ylabel("relative incidence")
    top.legend(fontsize=8)
    top.set_title(f"{exposure} -> {outcome}")
    bottom.plot(dates, part["llr"], "o-", label="log-likelihood ratio")
    bottom.step(dates, part["llr_threshold"], where="mid", color="red", label="alert threshold")
    bottom.set_ylabel("LLR")
    bottom.legend(fontsize=8)
    for label in bottom.get_xticklabels():  # dates, slanted (autofmt_xdate would also touch foreign axes)
        label.set_rotation(30)
        label.set_horizontalalignment("right")
    _save(fig, path, dpi=110)
    return fig
