"""Reads a partition's score histograms (see ``cloud_service.outcomes.statistics``) into numpy form.

The hashes of the three routing modes are pooled: the scores mean the same whatever mode the record
was routed in, and one policy serves the partition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from redis.asyncio import Redis

from cloud_service.outcomes.config import PartitionKeys
from cloud_service.outcomes.redis_client import translated
from cloud_service.outcomes.statistics import BINS, SIGNALS
from confroute.calibration import ScoreHistogram
from confroute.contract.enums import RoutingMode

_ARRAYS = {"n": 0, "c": 1, "w": 2}


@dataclass(frozen=True, eq=False)
class PartitionStatistics:
    """One histogram per score that has any records, the edge model's id, and the records counted."""

    histograms: Mapping[str, ScoreHistogram] = field(default_factory=dict)
    model_id: str = ""
    records: int = 0


async def read_statistics(client: Redis, keys: PartitionKeys) -> PartitionStatistics:
    """The pooled histograms of ``keys``' partition (three ``HGETALL``, one round trip)."""
    pipe = client.pipeline(transaction=False)
    for mode in RoutingMode:
        pipe.hgetall(keys.stats(mode.value))
    with translated("reading outcome statistics"):
        hashes: list[dict[bytes, bytes]] = await pipe.execute()
    return pool(hashes)


def pool(hashes: list[dict[bytes, bytes]]) -> PartitionStatistics:
    """The statistics of several hashes (as ``HGETALL`` returns them) added together."""
    bins = {signal: np.zeros((3, BINS)) for signal in SIGNALS}
    totals: dict[str, np.ndarray] = {signal: np.zeros(3) for signal in SIGNALS}  # N, W, W2 of labelled
    model = ""
    for fields in hashes:
        for raw_name, raw_value in fields.items():
            name = raw_name.decode()
            if name == "model":
                model = raw_value.decode()
                continue
            _add(name, float(raw_value), bins, totals)
    histograms = {
        signal: _histogram(bins[signal], totals[signal]) for signal in SIGNALS if bins[signal][0].sum() > 0
    }
    records = max((round(float(h.counts.sum())) for h in histograms.values()), default=0)
    return PartitionStatistics(histograms, model, records)


def _add(name: str, value: float, bins: dict[str, np.ndarray], totals: dict[str, np.ndarray]) -> None:
    parts = name.split(":")
    kind, signal = parts[0], parts[1] if len(parts) > 1 else ""
    if signal not in bins:
        return
    if kind == "n" and len(parts) == 3:
        bins[signal][0, int(parts[2])] += value
    elif kind == "w" and len(parts) == 4 and parts[2] in ("c", "w"):
        bins[signal][_ARRAYS[parts[2]], int(parts[3])] += value
    elif kind in ("N", "W", "W2") and len(parts) == 3 and parts[2] in ("c", "w"):
        totals[signal][("N", "W", "W2").index(kind)] += value


def _histogram(arrays: np.ndarray, totals: np.ndarray) -> ScoreHistogram:
    return ScoreHistogram(
        counts=arrays[0],
        correct=arrays[1],
        wrong=arrays[2],
        labelled_count=float(totals[0]),
        labelled_weight=float(totals[1]),
        labelled_weight_sq=float(totals[2]),
    )
