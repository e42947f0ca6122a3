"""Recalibration over many logged outcomes: time from "recalibrate" to a published policy.

A real redis-server on a free loopback port is filled with ``n`` outcomes through the ingest path
(``OutcomeWriter``: the append script keeps the score histograms up to date as it logs each entry), in
large pipelined batches; the fill is not timed. Then the clock runs over what ``cloud-service
recalibrate`` does per (edge model version, cohort): read the statistics, fit the calibration, choose
the threshold (conformal risk control by default), publish the policy through the policy store (a
canary candidate), and record the provenance. The log's length does not enter that path.

``--with-fold`` also times the consumer group's pass over the same entries (reading and acknowledging
each, folding none: their statistics were kept at ingest): the cost a worker pays over time, as the
outcomes arrive, not at recalibration.

    python -m bench.fleetbench.recalibrate [--n 1000000] [--quick] [--json PATH] [--with-fold]

Target: <= 1 s for 1,000,000 outcomes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cloudbench.processes import RedisProcess
from cloud_service.calibration import RecalibrationConfig, RecalibrationWorker
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.writer import OutcomeWriter
from cloud_service.policies import PolicyStoreConfig, RedisPolicyStore
from cloud_service.redis_client import connect
from confroute.contract.common import ModelRef
from confroute.contract.outcome import OutcomeRecord
from tests.factories import routed

EDGE = ModelRef("bench-edge", "bench-recalibrate")
COHORT = "bench"
CHUNK = 5000  # records built, written and dropped at a time (1M records at once would take GBs)
WRITE_BATCH = 1000
WRITERS = 4  # concurrent batches: Python builds one while Redis runs another
TARGET_S = 1.0


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Result:
    outcomes: int
    fill_s: float
    recalibrate_s: float
    published: bool
    fold_s: float | None = None


def traffic(start: int, count: int, seed: int) -> list[OutcomeRecord]:
    """Routed device records from 1000 devices: the edge is right with probability = its score; scores below
    0.2 escalate (labelled), 10% of the rest are shadowed (labelled, propensity 0.1), the others stay
    unlabelled."""
    return routed(count, threshold=0.2, shadow_rate=0.1, seed=seed, start=start, cohort=COHORT, edge=EDGE,
                  devices=1000)


async def fill(log: OutcomeLogConfig, n: int) -> None:
    """Writes ``n`` outcomes through the ingest path, ``WRITERS`` batches at a time."""
    client = connect(log.url, connect_timeout_s=1.0, command_timeout_s=60.0)
    writer = OutcomeWriter(client, log)
    try:
        for start in range(0, n, CHUNK):
            records = traffic(start, min(CHUNK, n - start), seed=start)
            batches = [records[i : i + WRITE_BATCH] for i in range(0, len(records), WRITE_BATCH)]
            for i in range(0, len(batches), WRITERS):
                await asyncio.gather(*(writer.write(batch) for batch in batches[i : i + WRITERS]))
            if start and start % 100_000 == 0:
                _log(f"filled {start:,} outcomes")
    finally:
        await client.aclose()


async def recalibrate(url: str, log: OutcomeLogConfig, with_fold: bool) -> tuple[float, bool, float | None]:
    client = connect(url, connect_timeout_s=1.0, command_timeout_s=60.0)
    store = RedisPolicyStore(PolicyStoreConfig(url=url))
    worker = RecalibrationWorker(client, log, store, RecalibrationConfig(batch_size=5000))
    try:
        started = time.perf_counter()
        results = await worker.recalibrate()
        elapsed = time.perf_counter() - started
        fold_s = None
        if with_fold:
            started = time.perf_counter()
            await worker.fold()
            fold_s = time.perf_counter() - started
        return elapsed, all(result.policy is not None for result in results) and bool(results), fold_s
    finally:
        await store.close()
        await client.aclose()


def measure(n_outcomes: int, with_fold: bool = False) -> Result:
    with RedisProcess() as redis_process:
        log = OutcomeLogConfig(url=redis_process.url)
        started = time.perf_counter()
        asyncio.run(fill(log, n_outcomes))
        fill_s = time.perf_counter() - started
        _log(f"filled {n_outcomes:,} outcomes in {fill_s:.1f} s ({n_outcomes / fill_s:,.0f}/s)")
        seconds, published, fold_s = asyncio.run(recalibrate(redis_process.url, log, with_fold))
    return Result(n_outcomes, fill_s, seconds, published, fold_s)


def measure_recalibration(n_outcomes: int) -> float:
    """Seconds from "recalibrate" to a published policy over ``n_outcomes`` logged outcomes (for bench.fleet)."""
    result = measure(n_outcomes)
    if not result.published:
        raise RuntimeError("the recalibration published no policy")
    return result.recalibrate_s


def report(result: Result) -> dict[str, Any]:
    return {"outcomes": result.outcomes, "recalibrate_s": round(result.recalibrate_s, 4),
            "published": result.published, "fill_s": round(result.fill_s, 2),
            "fill_per_s": round(result.outcomes / result.fill_s) if result.fill_s > 0 else None,
            "fold_s": None if result.fold_s is None else round(result.fold_s, 3), "target_s": TARGET_S}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleetbench.recalibrate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="outcomes to log first (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="100,000 outcomes")
    parser.add_argument("--with-fold", action="store_true", help="also time the consumer group's pass")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = measure(100_000 if args.quick else args.n, with_fold=args.with_fold)
    print(f"{'outcomes':>10} {'fill s':>8} {'fill/s':>9} {'recalibrate s':>14} {'published':>10} {'fold s':>7} target")
    fold = "-" if result.fold_s is None else f"{result.fold_s:.2f}"
    print(f"{result.outcomes:>10,} {result.fill_s:>8.1f} {result.outcomes / result.fill_s:>9,.0f} "
          f"{result.recalibrate_s:>14.3f} {result.published!s:>10} {fold:>7} <= {TARGET_S:g} s")
    if args.json is not None:
        args.json.write_text(json.dumps(report(result), indent=2) + "\n")
    return 0 if result.published else 1


if __name__ == "__main__":
    sys.exit(main())
