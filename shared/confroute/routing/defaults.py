"""The policy a device routes with before the cloud has sent one (first start, or offline with none saved).

Values, all on the confidence scale P(edge answer correct) of :mod:`confroute.routing.scores`:

* mode ``hybrid``: with a trained TBG probe only clear cases are decided before decoding
  (``hybrid_low`` 0.2, ``hybrid_high`` 0.8, a wide uncertain band); without one it behaves as ``post``;
* ``post`` 0.5: escalate when the local answer's geometric-mean token probability (no calibration yet)
  is below one half, i.e. mean log-probability below about -0.69: clearly unsure answers only;
* ``pre`` 0.5, used only if the agent is told to run ``pre``;
* ``shadow_rate`` 0.02: a small unbiased sample of confident answers reaches the cloud, so that the
  first recalibration has labels for them (``confroute.calibration.ipw``);
* no calibration map, version ``builtin``, issued 2000-01-01 UTC: every policy the cloud issues is newer.
"""

from __future__ import annotations

from datetime import datetime, timezone

from confroute.contract import ModelRef, Policy, RoutingMode, Thresholds

BUILTIN_VERSION = "builtin"
BUILTIN_ISSUED_AT = datetime(2000, 1, 1, tzinfo=timezone.utc)
DEFAULT_THRESHOLDS = Thresholds(pre=0.5, post=0.5, hybrid_low=0.2, hybrid_high=0.8)
DEFAULT_SHADOW_RATE = 0.02


def default_policy(edge_model: ModelRef, cohort: str = "") -> Policy:
    """The built-in policy for this device's edge model build and cohort (see the module docstring)."""
    return Policy(
        policy_version=BUILTIN_VERSION,
        edge_model=edge_model,
        cohort=cohort,
        mode=RoutingMode.HYBRID,
        thresholds=DEFAULT_THRESHOLDS,
        issued_at=BUILTIN_ISSUED_AT,
        shadow_rate=DEFAULT_SHADOW_RATE,
    )
