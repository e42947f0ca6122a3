"""RouteLLM-style evaluation of a router: quality against escalation rate, PGR, APGR and CPT.

Inputs are per-query quality of the edge (weak) and cloud (strong) answers, binary or graded, and a
router's escalation score (higher = send to the cloud; pass ``-confidence`` for a confidence score).

* escalation rate c = cloud calls / N; Q(c) = mean quality when the top-scored c share is escalated.
* PGR(c) = (Q(c) - Q_edge) / (Q_cloud - Q_edge), so PGR(0) = 0 and PGR(1) = 1 for any router.
* APGR = trapezoid area under PGR over c. RouteLLM (routellm/evals/benchmarks.py) takes the 11 edges of
  10 equal-count quantile bins of the scores as thresholds (escalate score >= edge; the last edge uses
  ``>`` so it escalates nothing), which pins the endpoints c = 1 and c = 0; :func:`routing_curve` does
  the same with ``n_bins=10``, or uses every achievable cut with ``n_bins=None``.
* CPT(x) = the smallest c at which the piecewise-linear PGR curve reaches x.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from confroute.calibration._checks import (
    FloatArray,
    finite_1d,
    fraction,
    positive_int,
    same_length,
    trapezoid,
)
from confroute.errors import InvalidInput

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class RoutingCurve:
    """Quality and PGR at increasing escalation rates (``rates`` sorted ascending, from 0 to 1)."""

    rates: FloatArray
    quality: FloatArray
    pgr: FloatArray

    def apgr(self) -> float:
        """Average performance gap recovered: trapezoid area under PGR over the escalation rate."""
        return trapezoid(self.pgr, self.rates)

    def cpt(self, x: float) -> float:
        """Call-performance threshold: the smallest escalation rate at which PGR reaches ``x``.

        Linear interpolation between curve points. ``x`` must lie in [0, 1]; every curve built here ends
        at PGR(1) >= 1, so the answer always exists.
        """
        target = fraction(x, "x")
        reached = np.flatnonzero(self.pgr >= target)
        if reached.size == 0:
            return float("inf")
        i = int(reached[0])
        if i == 0:
            return float(self.rates[0])
        r0, r1, p0, p1 = self.rates[i - 1], self.rates[i], self.pgr[i - 1], self.pgr[i]
        return float(r0 + (target - p0) * (r1 - r0) / (p1 - p0))


def routing_curve(
    quality_edge: npt.ArrayLike,
    quality_cloud: npt.ArrayLike,
    escalation_score: npt.ArrayLike,
    n_bins: int | None = 10,
) -> RoutingCurve:
    """The curve of a router that escalates the queries with the highest ``escalation_score``.

    ``n_bins=10`` reproduces RouteLLM's 11 quantile thresholds; ``None`` gives the exact curve over every
    achievable cut (tied scores are escalated together). Raises ``InvalidInput`` when the edge and cloud
    mean qualities are equal (PGR undefined).
    """
    edge, cloud = _qualities(quality_edge, quality_cloud)
    score = finite_1d(escalation_score, "escalation_score")
    same_length(quality_edge=edge, escalation_score=score)
    order = np.argsort(-score, kind="stable")
    counts = _escalation_counts(score, n_bins)
    return _curve_from_gains(edge, (cloud - edge)[order], counts)


def oracle_router_curve(
    quality_edge: npt.ArrayLike, quality_cloud: npt.ArrayLike, n_points: int = 11
) -> RoutingCurve:
    """Upper bound: at each rate, escalate the queries where the cloud gains most (never a loss).

    Mirrors RouteLLM's ``get_optimal_accuracy``. PGR can exceed 1 when the edge beats the cloud on
    some queries. Rates are ``round(linspace(0, 1, n_points) * N) / N``.
    """
    edge, cloud = _qualities(quality_edge, quality_cloud)
    points = positive_int(n_points, "n_points")
    gains = np.sort(np.maximum(cloud - edge, 0.0))[::-1]
    counts = np.unique(np.rint(np.linspace(0.0, 1.0, max(points, 2)) * edge.size).astype(np.int64))
    return _curve_from_gains(edge, gains, counts, normaliser=cloud - edge)


def random_router_curve(
    quality_edge: npt.ArrayLike, quality_cloud: npt.ArrayLike, n_points: int = 11
) -> RoutingCurve:
    """Expected curve of a router that escalates a random c share: PGR(c) = c, APGR = 0.5."""
    edge, cloud = _qualities(quality_edge, quality_cloud)
    q_edge, q_cloud = float(edge.mean()), float(cloud.mean())
    _require_gap(q_edge, q_cloud)
    rates = np.linspace(0.0, 1.0, max(positive_int(n_points, "n_points"), 2))
    return RoutingCurve(rates=rates, quality=q_edge + rates * (q_cloud - q_edge), pgr=rates.copy())


def _qualities(quality_edge: npt.ArrayLike, quality_cloud: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    edge = finite_1d(quality_edge, "quality_edge")
    cloud = finite_1d(quality_cloud, "quality_cloud")
    same_length(quality_edge=edge, quality_cloud=cloud)
    return edge, cloud


def _require_gap(q_edge: float, q_cloud: float) -> None:
    if q_cloud == q_edge:
        message = f"edge and cloud have the same mean quality ({q_edge:.6g}); PGR is undefined"
        raise InvalidInput(message, field="quality_cloud")


def _escalation_counts(score: FloatArray, n_bins: int | None) -> IntArray:
    """How many queries each threshold escalates, ascending and deduplicated, always including 0 and N."""
    ascending = np.sort(score)
    if n_bins is None:
        edges = np.unique(ascending)
    else:
        # RouteLLM's last edge (the maximum) uses ">" and escalates nothing: the 0 added below.
        edges = np.quantile(ascending, np.linspace(0.0, 1.0, positive_int(n_bins, "n_bins") + 1))[:-1]
    at_or_above = score.size - np.searchsorted(ascending, edges, side="left")
    return np.unique(np.concatenate(([0, score.size], at_or_above)).astype(np.int64))


def _curve_from_gains(
    edge: FloatArray, ordered_gains: FloatArray, counts: IntArray, normaliser: FloatArray | None = None
) -> RoutingCurve:
    """Q(k) = (sum of edge quality + gains of the first k escalated) / N at each count k.

    The cloud mean is taken from the same cumulative sum as Q(N), so PGR(1) is exactly 1 for real
    routers; the oracle passes the unclipped gains as ``normaliser``.
    """
    n = edge.size
    base = float(edge.sum())
    cumulative = np.concatenate(([0.0], np.cumsum(ordered_gains)))
    gap_total = float(np.cumsum(normaliser)[-1]) if normaliser is not None else float(cumulative[-1])
    q_edge, q_cloud = base / n, (base + gap_total) / n
    _require_gap(q_edge, q_cloud)
    quality = (base + cumulative[counts]) / n
    return RoutingCurve(rates=counts / n, quality=quality, pgr=(quality - q_edge) / (q_cloud - q_edge))
