"""Durable writes with ``store()``: fields, text retention, idempotency, the length bound, outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any, TypeVar

import pytest
from redis.crc import key_slot

from cloud_service.outcomes import OutcomeLogConfig, RedisOutcomeLog, held
from cloud_service.outcomes.writer import OutcomeWriter
from cloud_service.ports import StoreResult
from cloud_service.redis_client import connect
from confroute.contract.enums import AnsweredBy, Decision, Label, LabelSource
from confroute.contract.outcome import Latency
from confroute.errors import Unavailable
from tests.cloud_service.outcomes.samples import logged, logged_ids, outcome, outcomes, stream_fields, stream_length
from tests.cloud_service.redis_server import RedisServer

pytestmark = pytest.mark.timeout(60)
T = TypeVar("T")


def run(scenario: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(scenario, 30))


async def store(config: OutcomeLogConfig, *batches: list[Any]) -> list[StoreResult]:
    async with RedisOutcomeLog(config) as log:
        return [await log.store(batch) for batch in batches]


def test_a_stored_record_appears_in_the_stream_with_its_fields(redis_server: RedisServer) -> None:
    config = OutcomeLogConfig(url=redis_server.url)
    record = outcome("q-1")

    run(store(config, [record]))

    [fields] = stream_fields(config)
    assert fields == {
        "v": "1",
        "qid": "q-1",
        "device": "device-7",
        "cohort": "beta",
        "edge_model": "smollm2-135m",
        "edge_version": "2026.01",
        "cloud_model": "qwen2.5-7b",
        "cloud_version": "3",
        "mode": "post",
        "decision": "escalated",
        "answered_by": "cloud",
        "shadow": "0",
        "propensity": "0.9",
        "edge_ms": "41.5",
        "cloud_ms": "320.0",
        "total_ms": "380.25",
        "label": "correct",
        "label_source": "cloud_judge",
        "policy": "p-3",
        "started_at": "2026-01-05T09:30:00+00:00",
        "finished_at": "2026-01-05T09:30:00.380000+00:00",
        "signals": '{"seq_conf":0.42,"probe":0.37}',
        "origin": "device",
        "st": "1",  # its statistics were kept in the same script
    }
    assert logged(config) == [outcome("q-1", prompt_text=None, answer_text=None)]


def test_no_entry_holds_text_whether_retention_is_on_or_not(redis_server: RedisServer) -> None:
    drafted = outcome("q-1", edge_draft_text="2 + 2 = 5")
    run(store(OutcomeLogConfig(url=redis_server.url), [drafted]))
    run(store(OutcomeLogConfig(url=redis_server.url, key_prefix="retained:{outcomes}", retain_text=True), [drafted]))

    for prefix in ("confroute:outcomes", "retained:{outcomes}"):
        [fields] = stream_fields(OutcomeLogConfig(url=redis_server.url, key_prefix=prefix))
        assert not {"prompt", "answer", "draft"} & set(fields)
        assert logged(OutcomeLogConfig(url=redis_server.url, key_prefix=prefix)) == [
            replace(drafted, prompt_text=None, answer_text=None, edge_draft_text=None)]


def test_texts_in_any_script_survive_the_round_trip_through_the_held_key(redis_server: RedisServer) -> None:
    config = OutcomeLogConfig(url=redis_server.url, retain_text=True)
    record = outcome("q-ü", cohort="béta", prompt_text="Wie viel ist 2 + 2? 🤔 \"zitat\"\n\u0000", answer_text="四",
                     edge_draft_text="vier", label=Label.UNKNOWN, label_source=LabelSource.NONE)

    async def hold() -> Any:
        async with RedisOutcomeLog(config) as log:
            log.record(record)  # the service's own record
        client = connect(config.url, connect_timeout_s=1.0, command_timeout_s=5.0)
        try:
            keys = config.partition(record.edge_model.version, record.cohort)
            return await client.get(keys.held(record.query_id)), await client.ttl(keys.held(record.query_id))
        finally:
            await client.aclose()

    value, ttl = run(hold())

    assert held.from_hold(value) == record
    assert 0 < ttl <= config.text_ttl_s


def test_absent_optional_values_have_no_fields_and_read_back_as_absent(redis_server: RedisServer) -> None:
    config = OutcomeLogConfig(url=redis_server.url, retain_text=True)
    local = outcome(
        "q-1",
        decision=Decision.LOCAL,
        answered_by=AnsweredBy.EDGE,
        cloud_model=None,
        latency=Latency(edge_ms=40.0, total_ms=40.0),
        prompt_text=None,
        answer_text=None,
    )

    run(store(config, [local]))

    [fields] = stream_fields(config)
    assert not {"cloud_model", "cloud_version", "cloud_ms", "prompt", "answer", "draft"} & fields.keys()
    assert logged(config) == [local]


def test_a_query_id_stored_twice_is_logged_once(redis_server: RedisServer) -> None:
    config = OutcomeLogConfig(url=redis_server.url)

    first, second = run(store(config, [outcome("q-1")], [outcome("q-1"), outcome("q-2")]))

    assert first == StoreResult(stored=("q-1",), duplicates=())
    assert second == StoreResult(stored=("q-2",), duplicates=("q-1",))
    assert logged_ids(config) == ["q-1", "q-2"]


def test_a_query_id_repeated_within_one_batch_is_logged_once(redis_server: RedisServer) -> None:
    config = OutcomeLogConfig(url=redis_server.url)

    [result] = run(store(config, [outcome("q-1"), outcome("q-2"), outcome("q-1")]))

    assert result == StoreResult(stored=("q-1", "q-2"), duplicates=("q-1",))
    assert logged_ids(config) == ["q-1", "q-2"]


def test_a_large_batch_is_stored_whole_and_counted(redis_server: RedisServer) -> None:
    config = OutcomeLogConfig(url=redis_server.url)

    async def scenario() -> tuple[StoreResult, int]:
        async with RedisOutcomeLog(config) as log:
            result = await log.store(outcomes(2500))
            return result, log.stats().written

    result, written = run(scenario())

    assert len(result.stored) == written == stream_length(config) == 2500
    assert logged_ids(config) == [f"q-{i}" for i in range(2500)]


def test_the_stream_stays_near_its_maxlen(redis_server: RedisServer) -> None:
    config = OutcomeLogConfig(url=redis_server.url, maxlen=100)

    run(store(config, *[outcomes(100, start=i) for i in range(0, 1000, 100)]))

    # MAXLEN ~ trims whole stream nodes (100 entries each by default), never below the bound.
    assert 100 <= stream_length(config) <= 200
    assert logged_ids(config)[-1] == "q-999"


def test_the_stream_and_its_dedupe_keys_share_one_cluster_slot() -> None:
    config = OutcomeLogConfig(url="redis://127.0.0.1:6379/0", key_prefix="tenant-a:{outcomes}")

    assert key_slot(config.stream_key.encode()) == key_slot(config.seen_key("q-1").encode())
    assert key_slot(config.stream_key.encode()) == key_slot(config.seen_key("q-1", "service").encode())
    assert key_slot(config.stream_key.encode()) == key_slot(b"{outcomes}")


def test_store_raises_unavailable_promptly_while_redis_is_down(redis_server: RedisServer) -> None:
    config = OutcomeLogConfig(url=redis_server.url)
    redis_server.stop()

    async def scenario() -> tuple[float, int]:
        async with RedisOutcomeLog(config) as log:
            started = time.monotonic()
            with pytest.raises(Unavailable, match="Redis failed while"):  # checking persistence, first
                await log.store([outcome("q-1")])
            return time.monotonic() - started, log.stats().write_errors

    elapsed, write_errors = run(scenario())

    assert elapsed < 1.0
    assert write_errors == 1


def test_store_works_after_redis_comes_back(redis_server: RedisServer) -> None:
    config = OutcomeLogConfig(url=redis_server.url)

    async def scenario() -> StoreResult:
        async with RedisOutcomeLog(config) as log:
            await log.store([outcome("q-1")])
            redis_server.restart()  # back from its AOF with the data, without the script
            return await log.store([outcome("q-2")])

    assert run(scenario()) == StoreResult(stored=("q-2",), duplicates=())
    assert logged_ids(config) == ["q-1", "q-2"]


def test_a_password_in_the_url_authenticates() -> None:
    with RedisServer(password="s3cret") as server:
        config = OutcomeLogConfig(url=server.url)
        [result] = run(store(config, [outcome("q-1")]))
        assert result.stored == ("q-1",)


def test_a_wrong_password_is_unavailable_without_echoing_it() -> None:
    with RedisServer(password="s3cret") as server:
        config = OutcomeLogConfig(url=server.url.replace("s3cret", "wrong-one"))
        with pytest.raises(Unavailable) as caught:
            run(store(config, [outcome("q-1")]))
    assert "wrong-one" not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:6379", "127.0.0.1:6379", "redis://", "redis://host:port", "redis://host/zero"]
)
def test_an_invalid_url_is_refused_with_a_clear_message(url: str) -> None:
    with pytest.raises(ValueError, match=r"outcome log url .*redis://"):
        OutcomeLogConfig(url=url)


def test_an_invalid_url_message_hides_the_password() -> None:
    with pytest.raises(ValueError) as caught:
        OutcomeLogConfig(url="http://user:topsecret@127.0.0.1:6379")
    assert "topsecret" not in str(caught.value)
    assert "user:***@127.0.0.1:6379" in str(caught.value)


def test_a_key_prefix_with_a_broken_hash_tag_is_refused() -> None:
    with pytest.raises(ValueError, match="hash tag"):
        OutcomeLogConfig(url="redis://127.0.0.1:6379/0", key_prefix="confroute:{outcomes")


def test_each_partition_keeps_its_stream_and_keys_in_one_slot_of_its_own() -> None:
    config = OutcomeLogConfig(url="redis://127.0.0.1:6379/0")
    beta, gamma = config.partition("2026.01", "beta"), config.partition("2026.01", "gamma")
    slots = {key_slot(key.encode()) for key in (beta.stream, beta.seen("q-1", "device"), beta.stats("post"),
                                                 beta.labelled("q-1"), beta.labels, beta.recalibrations)}
    assert slots == {key_slot(b"2026.01|beta")}
    assert key_slot(gamma.stream.encode()) != key_slot(beta.stream.encode())
    assert config.partition_of_tag(beta.tag) == beta


def test_a_cohort_cannot_break_out_of_its_hash_tag() -> None:
    config = OutcomeLogConfig(url="redis://127.0.0.1:6379/0")
    assert config.partition("1", "a}b{c").stream == "confroute:outcomes:{1|a%7Db%7Bc}:stream"


@pytest.mark.parametrize("held_connection", [True, False], ids=["held-connection", "redis-py-pipeline"])
def test_the_service_writer_logs_each_query_once_on_either_connection(
    redis_server: RedisServer, held_connection: bool
) -> None:
    config = OutcomeLogConfig(url=redis_server.url, key_prefix=f"w{int(held_connection)}:{{outcomes}}")

    async def write() -> list[StoreResult]:
        client = connect(config.url, connect_timeout_s=1.0, command_timeout_s=5.0)
        try:
            writer = OutcomeWriter(client, config, held=held_connection)
            await client.script_flush()  # the first batch meets NOSCRIPT, loads the script and is sent again
            return [await writer.write([outcome("q-1")], origin="service"),
                    await writer.write([outcome("q-1"), outcome("q-2", cohort="beta")], origin="service")]
        finally:
            await client.aclose()

    first, second = run(write())

    assert first == StoreResult(stored=("q-1",), duplicates=())
    assert second == StoreResult(stored=("q-2",), duplicates=("q-1",))
