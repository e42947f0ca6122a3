"""Late labels (judge, gold) move a record's weight once, whatever the order in which label and record arrive."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from cloud_service.calibration import RecalibrationConfig
from cloud_service.calibration.fold import StreamFolder
from cloud_service.calibration.statistics_reader import PartitionStatistics, read_statistics
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.labels import LabelOutcome, LabelWriter, LateLabel
from cloud_service.outcomes.writer import OutcomeWriter
from cloud_service.redis_client import connect
from confroute.contract.enums import Label, LabelSource
from tests.cloud_service.redis_server import RedisServer
from tests.factories import COHORT, EDGE, routed

pytestmark = pytest.mark.timeout(60)
T = TypeVar("T")


def run(scenario: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(scenario)


def totals(server: RedisServer, log: OutcomeLogConfig) -> dict[str, float]:
    """Records per label in the post-score statistics."""
    async def read() -> PartitionStatistics:
        client = connect(server.url, connect_timeout_s=1.0, command_timeout_s=5.0)
        try:
            return await read_statistics(client, log.partition(EDGE.version, COHORT))
        finally:
            await client.aclose()

    counts = run(read()).totals["post"][0]
    return {label: float(counts[i]) for i, label in enumerate(("c", "w", "u"))}


async def scenario(log: OutcomeLogConfig, label_first: bool, fold_by_worker: bool = False) -> list[LabelOutcome]:
    [record] = routed(1, threshold=0.0, labelled=False)
    client = connect(log.url, connect_timeout_s=1.0, command_timeout_s=5.0)
    labels = LabelWriter(client, log)
    late = LateLabel(record, Label.INCORRECT, LabelSource.CLOUD_JUDGE)
    try:
        written = [await labels.write(late)] if label_first else []
        await OutcomeWriter(client, log).write([record])
        written += [await labels.write(late), await labels.write(late)]
        if fold_by_worker:
            await StreamFolder(client, log, RecalibrationConfig()).fold_all(log.partition(EDGE.version, COHORT).stream)
        return written
    finally:
        await client.aclose()


def test_a_label_after_the_record_moves_its_weight_once(redis_server: RedisServer) -> None:
    log = OutcomeLogConfig(url=redis_server.url)

    written = run(scenario(log, label_first=False))

    assert written == [LabelOutcome.MOVED, LabelOutcome.ALREADY_LABELLED]
    assert totals(redis_server, log) == {"u": 0.0, "c": 0.0, "w": 1.0}


def test_a_label_before_the_record_waits_and_the_record_is_counted_under_it(redis_server: RedisServer) -> None:
    log = OutcomeLogConfig(url=redis_server.url)

    written = run(scenario(log, label_first=True))

    assert written == [LabelOutcome.WAITING, LabelOutcome.ALREADY_LABELLED, LabelOutcome.ALREADY_LABELLED]
    assert totals(redis_server, log) == {"u": 0.0, "c": 0.0, "w": 1.0}


def test_a_label_before_the_workers_fold_is_applied_by_the_fold(redis_server: RedisServer) -> None:
    log = OutcomeLogConfig(url=redis_server.url, statistics=False)

    written = run(scenario(log, label_first=False, fold_by_worker=True))

    assert written == [LabelOutcome.WAITING, LabelOutcome.ALREADY_LABELLED]
    assert totals(redis_server, log) == {"u": 0.0, "c": 0.0, "w": 1.0}


def test_a_record_that_arrived_labelled_takes_no_late_label() -> None:
    [record] = routed(1, threshold=1.0)  # escalated, so labelled

    with pytest.raises(ValueError, match="already has a label"):
        LateLabel(record, Label.CORRECT, LabelSource.CLOUD_JUDGE)
