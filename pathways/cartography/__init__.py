"""Medico-economic cartography: pathology groups per patient-year from YAML rules (ALD, PMSI diagnoses, tracer
drugs, acts, exclusions and priorities), costs by care category with an allocation of each patient's spending to
their groups, yearly tables (prevalence, incidence, allocated cost, volume / cost-per-patient decomposition) and
dynamics (transitions between pathology states, time to death). See ``docs/cartography.md``."""
from __future__ import annotations

from pathways.cartography.build import Cartography, build_cartography
from pathways.cartography.costs import Allocation, allocate, patient_year_costs
from pathways.cartography.identify import PatientYears, identify
from pathways.cartography.rules import RuleSet, load_rules, validate_rules
from pathways.cartography.tables import cartography_table, suppress

__all__ = ["Allocation", "Cartography", "PatientYears", "RuleSet", "allocate", "build_cartography",
           "cartography_table", "identify", "load_rules", "patient_year_costs", "suppress", "validate_rules"]
