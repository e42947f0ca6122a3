"""Calibration maths for confroute: pure numpy functions, no I/O.

* :mod:`.metrics` - AUROC, AURAC, ECE and reliability diagrams, risk at coverage.
* :mod:`.routing_curves` - RouteLLM-style PGR / APGR / CPT curves, with random and oracle baselines.
* :mod:`.thresholds` - escalation thresholds for a target rate, a quality-cost trade-off or a risk bound.
* :mod:`.isotonic` - a monotone score -> P(correct) map (``confroute.contract.CalibrationMap``) fitted by
  pool-adjacent-violators.
* :mod:`.ipw` - inverse-propensity weights for the biased labels that escalation produces.
* :mod:`.histograms` - the same thresholds and isotonic fit from binned sufficient statistics.

Convention: a confidence score is higher when the edge answer is more likely right, and a query is
escalated when its confidence is below the threshold. Bad input raises ``confroute.errors.InvalidInput``.
"""

from confroute.calibration.histograms import (
    Estimates,
    ScoreHistogram,
    calibrated_bins,
    fit_histogram_isotonic,
    histogram_estimates,
    histogram_threshold_for_rate,
    histogram_threshold_for_risk,
    histogram_threshold_for_tradeoff,
)
from confroute.calibration.ipw import (
    WeightedLabels,
    effective_sample_size,
    inverse_propensity_weights,
    label_propensity,
    weighted_labels,
)
from confroute.calibration.isotonic import fit_isotonic
from confroute.calibration.metrics import (
    ReliabilityDiagram,
    aurac,
    auroc,
    ece,
    reliability_diagram,
    risk_at_coverage,
)
from confroute.calibration.routing_curves import (
    RoutingCurve,
    oracle_router_curve,
    random_router_curve,
    routing_curve,
)
from confroute.calibration.thresholds import (
    threshold_for_rate,
    threshold_for_risk,
    threshold_for_tradeoff,
)

__all__ = [
    "Estimates",
    "ReliabilityDiagram",
    "RoutingCurve",
    "ScoreHistogram",
    "WeightedLabels",
    "aurac",
    "auroc",
    "calibrated_bins",
    "ece",
    "effective_sample_size",
    "fit_histogram_isotonic",
    "fit_isotonic",
    "histogram_estimates",
    "histogram_threshold_for_rate",
    "histogram_threshold_for_risk",
    "histogram_threshold_for_tradeoff",
    "inverse_propensity_weights",
    "label_propensity",
    "oracle_router_curve",
    "random_router_curve",
    "reliability_diagram",
    "risk_at_coverage",
    "routing_curve",
    "threshold_for_rate",
    "threshold_for_risk",
    "threshold_for_tradeoff",
    "weighted_labels",
]
