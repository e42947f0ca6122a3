"""The policy a device routes with before the cloud has sent one (first start, or offline with none saved).

Values, all on the confidence scale P(edge answer correct) of :mod:`confroute.routing.scores`:

* mode ``pre``, threshold 0.5: every query is decided after prefill by the TBG probe, and a local answer
  streams from its first token. The default bundle ships a TBG probe trained on the router's label
  (P(keeping the query loses nothing), ``docs/router-probe.md``), so 0.5 escalates where a cloud call is
  more likely than not to turn a wrong answer right. Chosen by measurement on held-out questions: ``pre``
  APGR 0.774 against 0.675 for the post-generation score, and at 0.5 it recovers 74% of the edge-cloud gap
  with 30% cloud calls; the best ``hybrid`` band was within one question of 108 of it while generating 6%
  of queries in full before deciding. Without a trained TBG probe ``pre`` behaves as ``post``;
* ``post`` 0.5: escalate when the local answer's geometric-mean token probability (no calibration yet)
  is below one half, i.e. mean log-probability below about -0.69: clearly unsure answers only;
* ``hybrid_low`` 0.5, ``hybrid_high`` 0.8 (the best band measured), used only if a policy says ``hybrid``;
* ``shadow_rate`` 0.02: a small unbiased sample of confident answers reaches the cloud, so that the
  first recalibration has labels for them (``confroute.calibration.ipw``);
* no calibration map, version ``builtin``, issued 2000-01-01 UTC: every policy the cloud issues is newer.
"""

from __future__ import annotations

from datetime import datetime, timezone

from confroute.contract import ModelRef, Policy, RoutingMode, Thresholds

BUILTIN_VERSION = "builtin"
BUILTIN_ISSUED_AT = datetime(2000, 1, 1, tzinfo=timezone.utc)
DEFAULT_THRESHOLDS = Thresholds(pre=0.5, post=0.5, hybrid_low=0.5, hybrid_high=0.8)
DEFAULT_SHADOW_RATE = 0.02


def default_policy(edge_model: ModelRef, cohort: str = "") -> Policy:
    """The built-in policy for this device's edge model build and cohort (see the module docstring)."""
    return Policy(
        policy_version=BUILTIN_VERSION,
        edge_model=edge_model,
        cohort=cohort,
        mode=RoutingMode.PRE,
        thresholds=DEFAULT_THRESHOLDS,
        issued_at=BUILTIN_ISSUED_AT,
        shadow_rate=DEFAULT_SHADOW_RATE,
    )
