"""``cloud-service outcomes tail``: records and late labels as they arrive, read-only."""

from __future__ import annotations

import asyncio
import json

import pytest

from cloud_service.cli import main
from cloud_service.ops.outcomes_tail import OutcomeTail
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.labels import LabelWriter, LateLabel
from cloud_service.outcomes.writer import OutcomeWriter
from cloud_service.redis_client import connect
from confroute.contract.enums import Label, LabelSource
from tests.cloud_service.redis_server import RedisServer
from tests.factories import COHORT, EDGE, escalated, outcome, outcomes

pytestmark = pytest.mark.timeout(60)


def test_tail_once_prints_the_newest_records_and_labels(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async def log() -> None:
        client = connect(redis_server.url, connect_timeout_s=1.0, command_timeout_s=10.0)
        config = OutcomeLogConfig(url=redis_server.url)
        try:
            await OutcomeWriter(client, config).write([*outcomes(4, prefix="old"), escalated("esc-1")])
            # entries of two streams in one millisecond have no order between them (their ids' sequence
            # numbers are per stream): the label comes a millisecond later, as it would from the judge
            await asyncio.sleep(0.005)
            await LabelWriter(client, config).write(LateLabel(outcome("old-3"), Label.CORRECT, LabelSource.CLOUD_JUDGE))
        finally:
            await client.aclose()

    asyncio.run(log())

    assert main(["outcomes", "tail", "--once", "--last", "2", "--json", "--redis-url", redis_server.url]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["kind"], e["query_id"]) for e in events] == [("outcome", "old-3"), ("outcome", "esc-1"),
                                                           ("label", "old-3")]
    assert events[1] | {"entry_id": ""} == {
        "entry_id": "", "kind": "outcome", "edge_model_version": EDGE.version, "cohort": COHORT, "query_id": "esc-1",
        "origin": "device", "device_id": "device-7", "mode": "post", "decision": "escalated", "answered_by": "cloud",
        "label": "unknown", "label_source": "none", "policy_version": "p-3"}
    assert (events[2]["label"], events[2]["label_source"]) == ("correct", "cloud_judge")
    assert main(["outcomes", "tail", "--once", "--last", "1", "--redis-url", redis_server.url]) == 0
    assert "label    " in capsys.readouterr().out


def test_tail_follows_what_arrives_after_it_started_including_new_partitions(redis_server: RedisServer) -> None:
    async def scenario() -> list[str]:
        client = connect(redis_server.url, connect_timeout_s=1.0, command_timeout_s=10.0)
        config = OutcomeLogConfig(url=redis_server.url)
        writer = OutcomeWriter(client, config)
        try:
            await writer.write(outcomes(3, prefix="before"))
            tail = OutcomeTail(client, config)
            assert await tail.start(0) == []
            await writer.write([outcome("after-1"), outcome("new-cohort", cohort="gamma")])
            first = await tail.poll()
            second = await tail.poll()
        finally:
            await client.aclose()
        assert second == []
        return [f"{event.cohort}:{event.query_id}" for event in first]

    assert sorted(asyncio.run(scenario())) == [f"{COHORT}:after-1", "gamma:new-cohort"]
