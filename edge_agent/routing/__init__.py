"""Routing on the device: confidence scores, the decision rule, the built-in policy and the privacy veto.

Everything here is a pure function of its arguments (no I/O, no clock, no global random state): the
agent passes the signals, the current policy and a uniform draw, and logs the :class:`Decision`.
"""

from edge_agent.routing.confidence import calibrate, confidence_post, confidence_pre, raw_post_score
from edge_agent.routing.decision import Action, Decision, Stage, decide
from edge_agent.routing.defaults import BUILTIN_VERSION, default_policy
from edge_agent.routing.privacy import PrivacyRules

__all__ = [
    "BUILTIN_VERSION",
    "Action",
    "Decision",
    "PrivacyRules",
    "Stage",
    "calibrate",
    "confidence_post",
    "confidence_pre",
    "decide",
    "default_policy",
    "raw_post_score",
]
