"""The routing contract: one definition of what the device routes on and the cloud calibrates on.

* :mod:`.signals` - the names of the signals routing reads (``probe_tbg``, ``probe_slt``, ``logprob_mean``).
* :mod:`.scores` - the score of each stage: :func:`pre_score` (TBG probe), :func:`raw_post_score` and
  :func:`post_score` (through the policy's ``CalibrationMap``), :func:`stage_score` for a policy's mode,
  and :func:`logged_scores`, the raw scores the cloud's statistics bin.
* :mod:`.decision` - the pure rule :func:`decide` (from signals) / :func:`decide_score` (from a score):
  thresholds per mode, the hybrid band, shadow sampling and the privacy veto.
* :mod:`.defaults` - :func:`default_policy`, what a device routes with before the cloud sent one.

The calibration map itself is ``confroute.contract.CalibrationMap`` (it travels in the policy message);
its one interpolation is its ``__call__``. Everything here is a pure function of its arguments (no I/O,
no clock, no global random state). The edge agent routes with it; the cloud's outcome statistics,
recalibration and tests read the same functions, so a threshold set in the cloud means the same on the device.
"""

from confroute.contract.calibration_map import CalibrationMap
from confroute.routing.decision import Action, Decision, decide, decide_score
from confroute.routing.defaults import BUILTIN_VERSION, default_policy
from confroute.routing.scores import (
    Stage,
    logged_scores,
    post_score,
    pre_score,
    raw_post_score,
    stage_score,
)
from confroute.routing.signals import LOGPROB_MEAN, PROBE_SLT, PROBE_TBG

__all__ = [
    "BUILTIN_VERSION",
    "LOGPROB_MEAN",
    "PROBE_SLT",
    "PROBE_TBG",
    "Action",
    "CalibrationMap",
    "Decision",
    "Stage",
    "decide",
    "decide_score",
    "default_policy",
    "logged_scores",
    "post_score",
    "pre_score",
    "raw_post_score",
    "stage_score",
]
