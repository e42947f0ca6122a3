"""Scores of a router on the held-out questions: APGR, CPT(50%), accuracy at the policy's escalation rate."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from confroute.calibration import routing_curve

POLICY_PRE_THRESHOLD = 0.5  # the built-in policy's pre threshold (confroute.routing.default_policy)
RANDOM_DRAWS = 20


def cascade(edge: npt.NDArray[np.float64], cloud: npt.NDArray[np.float64],
            logits: npt.NDArray[np.float64]) -> dict[str, float]:
    """APGR and CPT(50%) of a router escalating the lowest keep-scores first, and the accuracy when it
    escalates what the policy's threshold escalates (keep-probability below 0.5: a logit below 0)."""
    curve = routing_curve(edge, cloud, -logits, n_bins=10)
    escalate = logits < np.log(POLICY_PRE_THRESHOLD / (1.0 - POLICY_PRE_THRESHOLD))
    accuracy = np.where(escalate, cloud, edge).mean()
    return {"apgr": round(curve.apgr(), 4), "cpt50": round(curve.cpt(0.5), 4),
            "escalation_rate": round(float(escalate.mean()), 4), "accuracy": round(float(accuracy), 4)}


def random_apgr(edge: npt.NDArray[np.float64], cloud: npt.NDArray[np.float64], seed: int) -> float:
    """The mean APGR of random routers (about 0.5 by construction)."""
    rng = np.random.default_rng(seed)
    draws = [routing_curve(edge, cloud, rng.random(len(edge)), n_bins=10).apgr() for _ in range(RANDOM_DRAWS)]
    return round(float(np.mean(draws)), 4)
