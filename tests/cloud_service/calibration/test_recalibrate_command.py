"""``cloud-service recalibrate --once`` against a real redis-server."""

from __future__ import annotations

import asyncio
import json

import pytest

from cloud_service.cli import main
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


def test_recalibrate_once_prints_what_it_did_per_partition(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(ingest(redis_server.url, COHORT, 3000, seed=1))
    asyncio.run(ingest(redis_server.url, "tiny", 50, seed=2))

    code = main(["recalibrate", "--once", "--redis-url", redis_server.url, "--target", "rate", "--target-rate", "0.25"])

    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_status = {line["status"]: line for line in lines}
    assert by_status["published"]["cohort"] == COHORT
    assert by_status["published"]["edge_model_version"] == EDGE.version
    assert by_status["published"]["after"]["escalation_rate"] == pytest.approx(0.25, abs=0.01)
    assert "fewer than the minimum" in by_status["refused"]["reason"]


def test_a_bad_target_is_refused_as_bad_input(redis_server: RedisServer) -> None:
    assert main(["recalibrate", "--once", "--redis-url", redis_server.url, "--alpha", "1.5"]) == 2
