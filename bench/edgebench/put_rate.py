"""How many outcome records per second one thread can put into the outbox queue (for ``bench.edge_agent``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from confroute.contract import Latency, OutcomeRecord, RoutingMode
from edge_agent.outbox.queue import OutcomeQueue, QueueConfig, Synchronous
from tests.factories import T0, escalated


@dataclass(frozen=True)
class PutRate:
    """``puts`` durable puts took ``seconds``; the file was synced as ``synchronous`` says."""

    puts: int
    seconds: float
    synchronous: Synchronous

    @property
    def per_s(self) -> float:
        return self.puts / self.seconds if self.seconds > 0 else float("inf")


def measure_put_rate(path: Path, puts: int = 2000, synchronous: Synchronous = "NORMAL") -> PutRate:
    """Puts ``puts`` typical records into a fresh queue at ``path`` (which must not exist) and times it."""
    if path.exists():
        raise FileExistsError(path)
    records = [_typical_record(f"bench-{i}") for i in range(puts)]  # built before the clock starts
    with OutcomeQueue(QueueConfig(path, max_records=puts + 1, synchronous=synchronous)) as queue:
        started = time.perf_counter()
        for record in records:
            queue.put(record)
        seconds = time.perf_counter() - started
    return PutRate(puts, seconds, synchronous)


def _typical_record(query_id: str) -> OutcomeRecord:
    """An escalated query with its signals and latencies, without texts (about 250 bytes)."""
    return escalated(query_id, device_id="bench-device", mode=RoutingMode.HYBRID,
                     latency=Latency(edge_ms=85.0, cloud_ms=420.0, total_ms=510.0),
                     finished_at=T0 + timedelta(milliseconds=510),
                     signals={"probe_tbg": 0.41, "probe_slt": 0.38, "entropy_mean": 1.9, "max_prob_min": 0.12},
                     policy_version="bench-policy")
