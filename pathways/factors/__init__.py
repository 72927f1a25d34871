"""Factors that drive care trajectories: one table shape for every explaining model."""
from pathways.factors.table import FACTOR_COLUMNS, factors_frame, validate_factors

__all__ = ["FACTOR_COLUMNS", "factors_frame", "validate_factors"]
