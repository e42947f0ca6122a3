"""Reads a partition's score histograms (see ``cloud_service.outcomes.statistics``) into numpy form.

The histograms of the three routing modes are pooled: the scores mean the same whatever mode the record
was routed in, and one policy serves the partition. One pipelined round trip of ~30 ``GET``s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from cloud_service.outcomes.config import PartitionKeys
from cloud_service.outcomes.statistics import BINS, LABELS, SIGNALS, WEIGHT_SCALE
from cloud_service.redis_client import RedisClient, translated
from confroute.calibration import ScoreHistogram
from confroute.calibration.canary import ArmQuality
from confroute.contract.enums import RoutingMode

IntArray = npt.NDArray[np.int64]
_PARTS = ("n", "w:c", "w:w", "w:u", "t")
TOTALS = 9  # N, W, W2 for each of c, w, u


@dataclass(frozen=True, eq=False)
class PartitionStatistics:
    """One histogram per score that has any records, the label totals per score (``totals[sig]``: rows
    N, W, W2 (weights in units of 1/p), columns c, w, u), the edge model's id, and the records counted."""

    histograms: Mapping[str, ScoreHistogram] = field(default_factory=dict)
    totals: Mapping[str, npt.NDArray[np.float64]] = field(default_factory=dict)
    model_id: str = ""
    records: int = 0


async def read_statistics(client: RedisClient, keys: PartitionKeys) -> PartitionStatistics:
    """The pooled statistics of ``keys``' partition."""
    names = [(mode.value, signal, part) for mode in RoutingMode for signal in SIGNALS for part in _PARTS]
    pipe = client.pipeline(transaction=False)
    for mode, signal, part in names:
        pipe.get(keys.histogram(mode, signal, part))
    for routing in RoutingMode:
        pipe.hget(keys.stats_meta(routing.value), "model")
    with translated("reading outcome statistics"):
        replies: list[bytes | None] = await pipe.execute()
    arrays: dict[tuple[str, str], IntArray] = {}
    for (_, signal, part), raw in zip(names, replies, strict=False):
        size = TOTALS if part == "t" else BINS
        arrays[signal, part] = arrays.get((signal, part), np.zeros(size, dtype=np.int64)) + _ints(raw, size)
    models = [raw.decode() for raw in replies[len(names):] if raw]
    return pool(arrays, models[0] if models else "")


def pool(arrays: Mapping[tuple[str, str], IntArray], model: str) -> PartitionStatistics:
    """Histograms and totals from the integer arrays (weights in millionths)."""
    histograms: dict[str, ScoreHistogram] = {}
    totals: dict[str, npt.NDArray[np.float64]] = {}
    for signal in SIGNALS:
        counts = arrays[signal, "n"].astype(np.float64)
        table = arrays[signal, "t"].reshape(3, len(LABELS)).astype(np.float64)
        table[1:] /= WEIGHT_SCALE
        totals[signal] = table
        if counts.sum() <= 0:
            continue
        histograms[signal] = ScoreHistogram(
            counts=counts,
            correct=arrays[signal, "w:c"] / WEIGHT_SCALE,
            wrong=arrays[signal, "w:w"] / WEIGHT_SCALE,
            labelled_count=float(table[0, :2].sum()),
            labelled_weight=float(table[1, :2].sum()),
            labelled_weight_sq=float(table[2, :2].sum()),
        )
    records = max((round(float(h.counts.sum())) for h in histograms.values()), default=0)
    return PartitionStatistics(histograms, totals, model, records)


def _ints(raw: bytes | None, size: int) -> IntArray:
    """A BITFIELD string of i64 big-endian values, zero-padded to ``size``."""
    values = np.zeros(size, dtype=np.int64)
    if raw:
        usable = min(len(raw), size * 8) // 8 * 8
        stored = np.frombuffer(raw[:usable], dtype=">i8")
        values[: stored.size] = stored
    return values


async def read_arm(client: RedisClient, keys: PartitionKeys, policy_version: str) -> ArmQuality:
    """The labelled quality of the records ``policy_version`` routed: weighted share of correct edge
    answers among the labelled ones (the cloud answered the others: counted as good only via their own
    labels) and its Kish effective sample size (0 without labels)."""
    with translated("reading a policy version's outcome totals"):
        raw = await client.get(keys.arm(policy_version))
    return arm_quality(_ints(raw if isinstance(raw, bytes) else None, TOTALS))


def arm_quality(totals: IntArray) -> ArmQuality:
    """:func:`read_arm` from the 9 integer totals ``[N_c, N_w, N_u, W_c, W_w, W_u, W2_c, W2_w, W2_u]``."""
    weight = float(totals[3] + totals[4]) / WEIGHT_SCALE
    weight_sq = float(totals[6] + totals[7]) / WEIGHT_SCALE
    if weight <= 0.0 or weight_sq <= 0.0:
        return ArmQuality(0.0, 0.0)
    return ArmQuality(min(1.0, float(totals[3]) / WEIGHT_SCALE / weight), weight * weight / weight_sq)
