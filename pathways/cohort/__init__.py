"""Cohorts and study design: set operations and flowcharts, follow-up, exposures, outcomes and eras.

Everything is vectorised over flat event arrays (sorting, cumulative maxima, ``reduceat``); no loop runs per
patient or per event.
"""
from pathways.cohort.cohort import Cohort, Flowchart
from pathways.cohort.exposures import condition_eras, drug_eras, eras, limited_exposures, unlimited_exposures
from pathways.cohort.followup import END_REASONS, follow_up
from pathways.cohort.intervals import Intervals, clip_intervals, merge_intervals
from pathways.cohort.codes import event_mask, match_codes
from pathways.cohort.outcomes import exclude_prior, outcomes

__all__ = [
    "Cohort", "Flowchart", "follow_up", "END_REASONS", "limited_exposures", "unlimited_exposures", "eras",
    "drug_eras", "condition_eras", "outcomes", "exclude_prior", "match_codes", "event_mask", "merge_intervals",
    "clip_intervals", "Intervals",
]
