"""Weak signals: SCCS and ConvSCCS, disproportionality, empirical calibration, the signal table, anomalies."""
from pathways.signals.anomalies import count_anomaly_scores, model_anomaly_scores
from pathways.signals.calibration import SystematicErrorNull, fit_null
from pathways.signals.detect import StudyDesign, detect, negative_control_pairs
from pathways.signals.disproportionality import contingency_tables, disproportionality, exposure_event_matrix
from pathways.models.sccs import SCCS, ConvSCCS, ConvSCCSCV
from pathways.signals.table import SIGNAL_COLUMNS, STATUSES, benjamini_hochberg, pair_summary, signal_table

__all__ = [
    "ConvSCCS", "ConvSCCSCV", "SCCS", "SIGNAL_COLUMNS", "StudyDesign", "SystematicErrorNull", "benjamini_hochberg",
    "contingency_tables", "count_anomaly_scores", "detect", "disproportionality", "exposure_event_matrix",
    "STATUSES", "fit_null", "model_anomaly_scores", "negative_control_pairs", "pair_summary", "signal_table",
]
