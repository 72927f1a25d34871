"""SCCS with event-dependent observation periods: the outcome may end the observation (death).

The classic SCCS assumes that the end of a case's observation does not depend on its outcome. When the outcome
raises the risk of death, observation ends soon after it: outcomes crowd the end of observation, and exposures that
would have come after the death are never seen, which biases the relative incidence (an end-of-observation probe,
:func:`pathways.models.sccs.terms.add_end_of_observation`, flags it).

The modified SCCS of Farrington, Whitaker and Ghebremichael Weldeselassie (Biostatistics 2011, "Self-controlled case
series analysis with event-dependent observation periods"; chapter "Event-dependent observation periods" of their
book *Self-Controlled Case Series Studies*, 2018) models the time ``D`` from the (first) outcome to the end of
observation with a parametric law, fitted on the cases (right-censored when the observation ended without death).
Given the end of observation ``t_i`` of case ``i``, the outcome time ``x`` has the density
``lambda_i(x) w_i(x) / sum_s lambda_i(s) w_i(s)``: the SCCS likelihood with every observed bucket ``s`` weighted by

* ``w_i(s) = P(D in [k, k + 1) buckets)`` when the observation ended with death,
* ``w_i(s) = P(D >= k + 1 buckets)`` when it ended otherwise (the death would come after ``t_i``),

``k = t_i - s`` the buckets from ``s`` to the last observed bucket (``D`` discretised to buckets, so a death on
the outcome's own day, ``D = 0``, is an ordinary value). Only exposures up to ``t_i`` enter, as in the classic SCCS.
The method is derived for non-recurrent outcomes: the first outcome of each case is kept.

Laws of ``D`` (:data:`OBSERVATION_FAMILIES`): exponential, Weibull, gamma, and the mixtures of an exponential with
a Weibull or a gamma (a share of deaths soon after the outcome, the rest later), as in the R package SCCS
(``eventdepenobs``); ``"auto"`` keeps the law of smallest AIC. The law's parameters do not depend on covariates here
(the R package lets them depend on the age at the outcome). Fitted by maximum likelihood with
``scipy.optimize.minimize`` (L-BFGS-B on log parameters and the logit of the mixing share, a few starts), vectorised
over cases; the weighted likelihood is then maximised by the classic SCCS's Newton fitter
(:class:`pathways.models.sccs.SCCS` with ``event_dependent_observation=``), its weights held at the fitted law.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy import optimize, special

from pathways.encode.sccs import SCCSData
from pathways.errors import PathwaysDataWarning, PathwaysInputError
from pathways.models.sccs.design import LagDesign

__all__ = ["OBSERVATION_FAMILIES", "ObservationModel", "first_outcomes", "fit_observation_model",
           "observation_intervals", "weighted_design"]

#: Laws of the time from the outcome to the end of observation (see the module docstring).
OBSERVATION_FAMILIES = ("exponential", "weibull", "gamma", "exponential-weibull", "exponential-gamma")
_BOUND = 25.0  # |log parameter| and |logit share| stay below it (a death "the same day" is a rate of e^25)


def _survival(family: str, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Survival function ``P(D > t)`` of ``family`` at unconstrained parameters ``x`` (time in buckets)."""
    if family == "exponential":
        return np.exp(-np.exp(x[0]) * t)
    if family == "weibull":
        return np.exp(-np.power(t * np.exp(-x[1]), np.exp(x[0])))
    if family == "gamma":
        return special.gammaincc(np.exp(x[0]), t * np.exp(-x[1]))
    share = special.expit(x[0])  # mixtures: share of the exponential part
    return share * np.exp(-np.exp(x[1]) * t) + (1 - share) * _survival(family.split("-")[1], x[2:], t)


@dataclass(frozen=True)
class ObservationModel:
    """Fitted law of the time ``D`` from the outcome to the end of observation, in buckets.

    Attributes
    ----------
    family : one of :data:`OBSERVATION_FAMILIES`.
    params : dict of the law's parameters (``rate`` per bucket; ``shape``, ``scale`` in buckets; ``share`` of the
        exponential part of a mixture).
    log_likelihood, aic : of the fit; ``n_cases``, ``n_deaths`` : cases used, observations ended by death.
    candidates : AIC of every family tried (``"auto"``), else of ``family`` only.
    """

    family: str
    x: np.ndarray
    log_likelihood: float
    aic: float
    n_cases: int
    n_deaths: int
    candidates: dict

    @property
    def params(self) -> dict:
        """The law's parameters on their natural scale."""
        x, fam = self.x, self.family
        if fam == "exponential":
            return {"rate": float(np.exp(x[0]))}
        if fam in ("weibull", "gamma"):
            return {"shape": float(np.exp(x[0])), "scale": float(np.exp(x[1]))}
        return {"share": float(special.expit(x[0])), "rate": float(np.exp(x[1])), "shape": float(np.exp(x[2])),
                "scale": float(np.exp(x[3]))}

    def survival(self, buckets: np.ndarray) -> np.ndarray:
        """``P(D > buckets)``."""
        with np.errstate(over="ignore", under="ignore"):
            return _survival(self.family, self.x, np.asarray(buckets, dtype=np.float64))

    def weights(self, k: np.ndarray, died: np.ndarray) -> np.ndarray:
        """Likelihood weight of a bucket ``k`` buckets before the end of observation: ``P(k <= D < k + 1)`` when
        death ended the observation, ``P(D >= k + 1)`` otherwise."""
        k = np.asarray(k, dtype=np.float64)
        upper = self.survival(k + 1)
        return np.where(died, np.clip(self.survival(k) - upper, 0.0, None), upper)


def _negloglik(family: str, x: np.ndarray, k: np.ndarray, died: np.ndarray, count: np.ndarray) -> float:
    """Minus the log-likelihood of distinct (interval, death) pairs seen ``count`` times."""
    with np.errstate(over="ignore", under="ignore"):
        upper = _survival(family, x, k + 1)
        prob = np.where(died, _survival(family, x, k) - upper, upper)
    return -float(count @ np.log(np.clip(prob, 1e-300, None)))


def _starts(family: str, k: np.ndarray, died: np.ndarray) -> list[np.ndarray]:
    """A few starting points: the exponential MLE, and for mixtures an early-death share from the data."""
    rate = max(died.sum(), 1) / max(float((k + 1).sum()), 1.0)
    lr, early = np.log(rate), np.clip(np.mean(died & (k == 0)), 0.02, 0.98)
    base = {"exponential": [[lr]], "weibull": [[0.0, -lr], [np.log(0.3), -lr], [np.log(0.05), -lr]],
            "gamma": [[0.0, -lr], [np.log(0.3), -lr], [np.log(0.05), -lr]]}
    if family in base:
        return [np.array(s, dtype=float) for s in base[family]]
    other = base[family.split("-")[1]]
    return [np.array([special.logit(early), 3.0, *s], dtype=float) for s in other[:2]] + [
        np.array([special.logit(0.5), lr + 2.0, *other[0]], dtype=float)]


def fit_observation_model(k: np.ndarray, died: np.ndarray, family: str = "auto") -> ObservationModel:
    """Fit the law of ``D`` (buckets from the outcome to the end of observation) by maximum likelihood.

    Parameters
    ----------
    k : int array (n_cases,)
        Buckets from each case's first outcome to its last observed bucket (0: the outcome's bucket is the last).
    died : bool array (n_cases,)
        The observation ended with death (``D`` observed in ``[k, k + 1)``); otherwise ``D >= k + 1`` (censored).
    family : one of :data:`OBSERVATION_FAMILIES`, or ``"auto"`` (smallest AIC among them).

    Examples
    --------
    Deaths a mean 20 days after the outcome, observation through a last day 0-99 days after it:

    >>> g = np.random.default_rng(0)
    >>> d, last = g.exponential(20.0, 2000), g.integers(0, 100, 2000)
    >>> died = d < last + 1
    >>> model = fit_observation_model(np.where(died, np.floor(d), last).astype(int), died, "exponential")
    >>> round(1 / model.params["rate"])
    20
    """
    k = np.asarray(k, dtype=np.float64).reshape(-1)
    died = np.asarray(died, dtype=bool).reshape(-1)
    if k.size != died.size or k.size == 0 or np.any(k < 0) or not np.all(np.isfinite(k)):
        raise PathwaysInputError(f"observation intervals: need as many finite values >= 0 as death flags, got "
                                 f"{k.size} intervals for {died.size} flags")
    if family != "auto" and family not in OBSERVATION_FAMILIES:
        raise PathwaysInputError(f"event_dependent_observation: expected 'auto' or one of {OBSERVATION_FAMILIES}, "
                                 f"got {family!r}")
    if not died.any():
        raise PathwaysInputError("event-dependent observation: no case's observation ended with death, so the law "
                                 "of the time to death cannot be fitted (the classic SCCS applies)")
    # intervals are whole buckets: the likelihood only needs the distinct (interval, death) pairs and their counts
    pairs, count = np.unique(np.column_stack([k, died]), axis=0, return_counts=True)
    uk, udied, count = pairs[:, 0], pairs[:, 1].astype(bool), count.astype(np.float64)
    fits = {}
    for fam in (OBSERVATION_FAMILIES if family == "auto" else (family,)):
        best = None
        for x0 in _starts(fam, k, died):  # a handful of starts per family
            res = optimize.minimize(lambda x, f=fam: _negloglik(f, x, uk, udied, count), x0, method="L-BFGS-B",
                                    bounds=[(-_BOUND, _BOUND)] * x0.size)
            if best is None or res.fun < best.fun:
                best = res
        fits[fam] = (best.x, -float(best.fun), 2 * float(best.fun) + 2 * best.x.size)
    chosen = min(fits, key=lambda f: fits[f][2])
    x, ll, aic = fits[chosen]
    return ObservationModel(chosen, x, ll, aic, int(k.size), int(died.sum()),
                            {f: v[2] for f, v in fits.items()})


def first_outcomes(data: SCCSData) -> SCCSData:
    """``data`` with the first outcome of every case only (count 1): the modified SCCS is for non-recurrent
    outcomes."""
    if data.outcome_case.size == 0:
        return data
    _, first = np.unique(data.outcome_case, return_index=True)  # rows are sorted by case then bucket
    if first.size == data.outcome_case.size and np.all(data.outcome_count == 1):
        return data
    return replace(data, outcome_case=data.outcome_case[first], outcome_bucket=data.outcome_bucket[first],
                   outcome_count=np.ones(first.size, dtype=np.int64))


def observation_intervals(data: SCCSData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cases with an outcome, the buckets from their first outcome to their last observed bucket, death flags."""
    if data.case_death is None:
        raise PathwaysInputError("event-dependent observation needs to know whose observation ended with death "
                                 "(SCCSData.case_death): build the data with sccs_data from a log whose patients "
                                 "table has a 'death' column")
    cases, first = np.unique(data.outcome_case, return_index=True)
    k = data.censoring[cases] - 1 - data.outcome_bucket[first]
    return cases, k, data.case_death[cases]


def weighted_design(design: LagDesign, data: SCCSData, model: ObservationModel) -> LagDesign:
    """``design`` with every observed bucket weighted by ``model`` (see the module docstring): the rows get their
    weight, each case's zero rows the sum of theirs (from per-case cumulative sums, no loop over cases)."""
    died = np.zeros(data.n_cases, dtype=bool) if data.case_death is None else data.case_death
    k_all = np.arange(data.n_buckets)
    table = np.stack([model.weights(k_all, np.zeros(k_all.size, bool)), model.weights(k_all, np.ones(k_all.size,
                                                                                                      bool))])
    frac = np.ones(data.n_cases) if data.last_bucket_fraction is None else data.last_bucket_fraction
    # total weight of case i: sum over k < c_i of w(k), the last bucket (k = 0) at its time at risk
    cum = np.cumsum(table, axis=1)
    total = cum[died.astype(int), data.censoring - 1] - (1 - frac) * table[died.astype(int), 0]
    row_case = design.row_case.cpu().numpy()
    k_row = data.censoring[row_case] - 1 - design.row_bucket
    base = np.ones(row_case.size) if design.row_weight is None else design.row_weight.cpu().numpy()
    row_w = base * table[died[row_case].astype(int), k_row]
    n_free = np.clip(total - np.bincount(row_case, weights=row_w, minlength=data.n_cases), 0.0, None)
    if np.any(total <= 0):
        warnings.warn(f"event-dependent observation: {int((total <= 0).sum())} cases get zero weight under the "
                      f"fitted law and drop out", PathwaysDataWarning, stacklevel=2)
    as_t = (lambda a: torch.as_tensor(a, dtype=design.n_free.dtype, device=design.n_free.device))
    return replace(design, row_weight=as_t(row_w), n_free=as_t(n_free))
