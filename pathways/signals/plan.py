"""The surveillance plan: when to look at cumulative data and how each look decides (one home for its fields,
shared by the SCRI counts of :mod:`pathways.signals.scri` and the looks of :mod:`pathways.signals.surveillance`)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pathways.errors import PathwaysInputError

__all__ = ["SurveillancePlan"]


@dataclass
class SurveillancePlan:
    """When to look and how to decide.

    Parameters
    ----------
    start : date of the first day of surveillance; looks fall at the end of each period after it.
    period : ``"month"``, ``"quarter"``, ``"semester"``, ``"year"`` or a number of days.
    n_looks : planned number of looks (the repeated screen divides ``alpha`` by it).
    methods : ``"maxsprt"`` and/or ``"repeated"``.
    alpha : probability that a null pair ever alerts over the planned looks, per pair and method.
    risk_window, control_window : days after (risk) and before (control, negative) an incident dispensation.
    washout : days without the drug that make a dispensation incident.
    max_cases : planned total of risk + control cases per pair (the information at which all alpha is spent).
    spending : ``"power"`` (``alpha * t ** rho`` at information ``t = cases / max_cases``) or ``"flat"`` (the
        continuous binomial MaxSPRT critical value at every look).
    rho : exponent of power spending.
    min_cases : fewest cases that may signal (``M``).
    calendar_days : width (days) of the calendar bins of the outcome's background incidence (events over the
        person-time observed in the whole cohort, at each look). A case's null probability of falling in the risk
        window is then the background intensity integrated over the risk window over that integral over both
        windows, instead of ``1 / (1 + z)``: a change of the outcome's incidence over calendar time (a trend, a
        season, another drug's effect switching on) no longer lands on the later (risk) window. 0: no adjustment.
    comedication : adjust each case's null probability for the other drugs raised on the same outcome at the
        look (see :func:`scri_counts`); co-prescription would otherwise hand a harmful drug's excess to the drugs
        started with it.
    coexposure_days : an episode is dropped from the sequential count when another screened drug was dispensed
        from ``coexposure_days`` before its control window to the end of its risk window (so that no other drug's
        effect window overlaps it: co-medication would otherwise confound the self-controlled comparison); 0 keeps
        every episode. Exact, but where co-medication is dense it drops most episodes (30 days on the synthetic
        cohorts: RI 2 detected in 2 of 8 pairs): ``comedication`` adjusts instead.
    negative_controls : pairs for the repeated screen's calibration (default: the design's).
    """

    start: str = "2015-01-01"
    period: str | float = "quarter"
    n_looks: int = 12
    methods: Sequence[str] = ("maxsprt", "repeated")
    alpha: float = 0.05
    risk_window: tuple[float, float] = (0.0, 60.0)
    control_window: tuple[float, float] = (-120.0, -60.0)
    washout: float = 180.0
    max_cases: int = 200
    spending: str = "power"
    rho: float = 1.0
    min_cases: int = 3
    calendar_days: float = 30.0
    comedication: bool = True
    coexposure_days: float = 0.0
    negative_controls: Sequence[tuple[str, str]] = field(default_factory=list)

    @property
    def z(self) -> float:
        """Control-window length over risk-window length."""
        return (self.control_window[1] - self.control_window[0]) / (self.risk_window[1] - self.risk_window[0])

    def check(self) -> None:
        """Raise :class:`PathwaysInputError` on an inconsistent plan."""
        (r0, r1), (c0, c1) = self.risk_window, self.control_window
        if not (r1 > r0 >= 0 and c0 < c1 <= 0):
            raise PathwaysInputError("surveillance windows: need 0 <= risk start < risk end and control start < "
                                     f"control end <= 0 (days), got {self.risk_window}, {self.control_window}")
        if self.washout < -c0:
            raise PathwaysInputError(f"washout: {self.washout} days is shorter than the control window reach {-c0}")
        unknown = [m for m in self.methods if m not in ("maxsprt", "repeated")]
        if unknown or self.spending not in ("power", "flat") or self.n_looks < 1 or self.calendar_days < 0:
            raise PathwaysInputError(f"surveillance plan: methods {list(self.methods)} (maxsprt, repeated), "
                                     f"spending {self.spending!r} (power, flat), n_looks {self.n_looks} (>= 1), "
                                     f"calendar_days {self.calendar_days} (>= 0)")
