"""The hybrid mode's band on the pre-generation score, recalibrated from binned statistics (pure).

In ``hybrid`` a query whose pre score is below ``hybrid_low`` escalates before any decoding, one at or
above ``hybrid_high`` is answered locally without a post check, and one in between is drafted and left to
the post stage. The band is anchored to what the post stage itself does under the policy's new post
threshold, on the same partition's labelled outcomes:

* ``hybrid_high`` is the lowest pre-score cut whose answers at or above it are wrong no more often than
  the answers the post stage keeps (``kept_error``): skipping the draft's check there keeps answers at
  least as good as the ones the post stage would keep.
* ``hybrid_low`` is the highest cut whose answers below it are right no more often than the answers the
  post stage escalates (``escalated_accuracy``): escalating those before decoding gives up nothing the
  post stage would not have given up, and saves the draft.

Cuts are the pre histogram's bin edges; each side must hold at least ``min_share`` of the labelled weight
(a handful of labels in the outermost bin does not move the band). With no cut that qualifies, the band
reaches the end of the score range on that side (``0``: never escalate before drafting; ``1``: only a
score of exactly 1 skips the check). Errors and accuracies are inverse-propensity weighted, as every
estimate in :mod:`.histograms`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from confroute.calibration._checks import FloatArray, finite_1d
from confroute.calibration.histograms import ScoreHistogram
from confroute.errors import InvalidInput

#: The smallest share of the labelled weight a side of the band must hold to move it.
DEFAULT_MIN_SHARE = 0.05


@dataclass(frozen=True)
class PostOutcomes:
    """What the post stage does on its labelled outcomes under a threshold: the weighted share of wrong
    answers among those it keeps, and of right answers among those it escalates."""

    kept_error: float
    escalated_accuracy: float


@dataclass(frozen=True)
class Band:
    """``low <= high``, both in [0, 1]."""

    low: float
    high: float


def post_outcomes(post: ScoreHistogram, confidence: npt.ArrayLike, threshold: float) -> PostOutcomes:
    """:class:`PostOutcomes` of escalating the post bins whose calibrated ``confidence`` is below
    ``threshold`` (0 for a side with no labelled weight)."""
    conf = finite_1d(confidence, "confidence")
    if conf.size != post.bins:
        raise InvalidInput(f"confidence has {conf.size} values for {post.bins} bins", field="confidence")
    kept = conf >= float(threshold)
    return PostOutcomes(
        kept_error=_share(post.wrong[kept], post.correct[kept]),
        escalated_accuracy=_share(post.correct[~kept], post.wrong[~kept]),
    )


def hybrid_band(pre: ScoreHistogram, outcomes: PostOutcomes, min_share: float = DEFAULT_MIN_SHARE) -> Band:
    """The band the module docstring defines, from the pre score's labelled bins."""
    if not 0.0 <= min_share < 1.0:
        raise InvalidInput(f"min_share must be in [0, 1), got {min_share!r}", field="min_share")
    labelled = pre.correct + pre.wrong
    total = float(labelled.sum())
    if total <= 0.0:
        raise InvalidInput("no labelled pre-generation outcomes to place the band with", field="correct")
    floor = min_share * total
    high = _high_cut(pre, labelled, floor, outcomes.kept_error)
    low = _low_cut(pre, labelled, floor, outcomes.escalated_accuracy)
    return Band(low=min(low, high), high=high)


def _high_cut(pre: ScoreHistogram, labelled: FloatArray, floor: float, kept_error: float) -> float:
    """The lowest edge ``i / bins`` whose bins ``i..`` hold ``floor`` labelled weight and err at most
    ``kept_error``; 1.0 when none does."""
    weight_above = np.cumsum(labelled[::-1])[::-1]  # [i] = weight of bins i..
    wrong_above = np.cumsum(pre.wrong[::-1])[::-1]
    ok = (weight_above >= max(floor, np.finfo(float).tiny)) & (wrong_above <= kept_error * weight_above)
    hits = np.flatnonzero(ok)
    return float(hits[0]) / pre.bins if hits.size else 1.0


def _low_cut(pre: ScoreHistogram, labelled: FloatArray, floor: float, escalated_accuracy: float) -> float:
    """The highest edge ``i / bins`` whose bins ``..i-1`` hold ``floor`` labelled weight and are right at
    most ``escalated_accuracy`` of the time; 0.0 when none does."""
    weight_below = np.cumsum(labelled)  # [i] = weight of bins ..i, i.e. below edge i + 1
    correct_below = np.cumsum(pre.correct)
    ok = (weight_below >= max(floor, np.finfo(float).tiny)) & (correct_below <= escalated_accuracy * weight_below)
    hits = np.flatnonzero(ok)
    return float(hits[-1] + 1) / pre.bins if hits.size else 0.0


def _share(part: FloatArray, rest: FloatArray) -> float:
    whole = float(part.sum() + rest.sum())
    return float(part.sum()) / whole if whole > 0.0 else 0.0
