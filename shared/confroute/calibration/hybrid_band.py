"""The hybrid band from a partition's pre-generation statistics: where the pre-probe cannot decide.

In ``hybrid`` mode a query whose pre score is below ``hybrid_low`` escalates at once, one at or above
``hybrid_high`` is answered locally, and one in between is generated and decided by the post score
(docs/routing-contract.md). The band should therefore hold the scores where the pre-probe's verdict is
not trustworthy, and no more: every score in it costs a local generation before the decision.

The rule (:func:`hybrid_band`), on the labelled records of a :class:`ScoreHistogram` of pre scores:

1. P(edge correct | pre score) is fitted by isotonic regression; its flat blocks are the groups of
   scores the data cannot tell apart.
2. The decision level ``p*`` is the fitted value at the pre ``threshold`` (what the target chose): the
   midpoint of the fitted values just below and just above the cut.
3. A block is *uncertain* when a two-sided Hoeffding interval at level 1 - ``delta`` around its mean
   contains ``p*``: the data cannot say whether its queries are less or more likely right than those at
   the threshold. The block's sample size is the partition's Kish effective size shared in proportion to
   the block's labelled weight (exact when the weights are equal).
4. The band spans the uncertain blocks (and the threshold): blocks below it are significantly worse
   than ``p*`` and escalate at once, blocks above are significantly better and stay local. With no
   uncertain block (a probe that separates cleanly at the threshold) the band is empty: ``[t, t]``.

Few labels give wide intervals, so a wide band (most queries checked after generation, as ``post`` does);
more labels narrow it towards the threshold. Scaling every count up never widens the band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from confroute.calibration._checks import FloatArray, fraction
from confroute.calibration.histograms import ScoreHistogram
from confroute.calibration.isotonic import fit_isotonic
from confroute.errors import InvalidInput


@dataclass(frozen=True)
class HybridBand:
    """``low`` <= ``threshold`` <= ``high`` in [0, 1]; ``level`` is P(edge correct) fitted at the threshold."""

    low: float
    high: float
    level: float


def hybrid_band(histogram: ScoreHistogram, threshold: float, delta: float) -> HybridBand:
    """The band of pre scores whose P(edge correct) is not significantly different (at 1 - ``delta``)
    from that at ``threshold``; see the module's docstring for the rule."""
    t = float(threshold)
    if not math.isfinite(t) or not 0.0 <= t <= 1.0:
        raise InvalidInput(f"threshold must be in [0, 1], got {threshold!r}", field="threshold")
    confidence = fraction(delta, "delta", open_low=True, open_high=True)
    labelled = histogram.correct + histogram.wrong
    keep = labelled > 0.0
    if not keep.any():
        raise InvalidInput("no labelled outcomes to place the hybrid band with", field="correct")
    centres, weight = histogram.centres[keep], labelled[keep]
    fitted = fit_isotonic(centres, np.clip(histogram.correct[keep] / weight, 0.0, 1.0), weight)(centres)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(fitted) > 0.0) + 1))
    means = fitted[starts]
    size = histogram.effective_size or float(weight.sum())
    block_size = size * np.add.reduceat(weight, starts) / float(weight.sum())
    slack = np.sqrt(math.log(2.0 / confidence) / (2.0 * block_size))
    level = _level_at(fitted, int(np.searchsorted(centres, t, side="left")))
    uncertain = np.flatnonzero(np.abs(means - level) <= slack + 1e-12)
    if uncertain.size == 0:
        return HybridBand(low=t, high=t, level=level)
    first, last = int(uncertain[0]), int(uncertain[-1])
    low = 0.0 if first == 0 else float(centres[starts[first]])
    high = 1.0 if last == starts.size - 1 else float(centres[starts[last + 1]])
    return HybridBand(low=min(low, t), high=max(high, t), level=level)


def _level_at(fitted: FloatArray, cut: int) -> float:
    """P(correct) at the threshold: the midpoint of the fitted values on either side of the cut (bins
    ``[:cut]`` escalate), or the one side's value when the threshold is beyond every labelled score."""
    sides = [float(fitted[i]) for i in (cut - 1, cut) if 0 <= i < fitted.size]
    return sum(sides) / len(sides)
