"""Synthetic data with known ground truth."""
from pathways.synthetic.cohort import Truth, simulate_cohort
from pathways.synthetic.hawkes import KernelComponent, kernel_components, simulate_hawkes
from pathways.synthetic.sccs import cohort_sccs_expected, simulate_sccs

__all__ = ["KernelComponent", "kernel_components", "simulate_hawkes", "Truth", "simulate_cohort", "simulate_sccs",
           "cohort_sccs_expected"]
