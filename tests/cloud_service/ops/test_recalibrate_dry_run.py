"""``cloud-service recalibrate --dry-run``: what each policy would change and why, with nothing changed."""

from __future__ import annotations

import asyncio
import json

import pytest

from cloud_service.cli import main
from cloud_service.ops.stream_lag import group_lag
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.writer import OutcomeWriter
from cloud_service.redis_client import connect
from tests.cloud_service.redis_server import RedisServer
from tests.factories import COHORT, EDGE, routed

pytestmark = pytest.mark.timeout(60)


async def ingest(url: str, cohort: str, n: int, seed: int) -> None:
    client = connect(url, connect_timeout_s=1.0, command_timeout_s=10.0)
    try:
        await OutcomeWriter(client, OutcomeLogConfig(url=url)).write(routed(n, cohort=cohort, seed=seed, prefix=cohort))
    finally:
        await client.aclose()


async def lag(url: str) -> float:
    client = connect(url, connect_timeout_s=1.0, command_timeout_s=10.0)
    try:
        return (await group_lag(client, OutcomeLogConfig(url=url), "recalibrate")).lag
    finally:
        await client.aclose()


def test_a_dry_run_shows_each_change_and_changes_nothing(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(ingest(redis_server.url, COHORT, 3000, seed=1))
    asyncio.run(ingest(redis_server.url, "tiny", 50, seed=2))
    flags = ["--redis-url", redis_server.url, "--target", "rate", "--target-rate", "0.25"]

    assert main(["recalibrate", "--dry-run", *flags]) == 0
    table = capsys.readouterr().out
    assert main(["recalibrate", "--dry-run", "--json", *flags]) == 0
    changes = {line["cohort"]: line for line in map(json.loads, capsys.readouterr().out.splitlines())}

    assert "would publish a candidate" in table and "keeps the current policy: " in table
    assert changes[COHORT]["would_publish"] and changes[COHORT]["current_version"] is None
    assert changes[COHORT]["estimates_new"]["escalation_rate"] == pytest.approx(0.25, abs=0.01)
    assert not changes["tiny"]["would_publish"] and "fewer than the minimum" in changes["tiny"]["reason"]
    assert main(["policy", "get", "--redis-url", redis_server.url, "--edge-model-version", EDGE.version,
                 "--cohort", COHORT]) == 1  # nothing published
    assert asyncio.run(lag(redis_server.url)) == 3050  # nothing read as the group


def test_a_dry_run_takes_no_interval(redis_server: RedisServer) -> None:
    assert main(["recalibrate", "--dry-run", "--interval", "5", "--redis-url", redis_server.url]) == 2
