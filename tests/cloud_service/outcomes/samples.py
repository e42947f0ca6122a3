"""The outcome records the outcome-log tests use, and ways to look at the stream they end up in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import redis

from cloud_service.outcomes import codec
from cloud_service.outcomes.config import OutcomeLogConfig
from confroute.contract.enums import Label, LabelSource
from confroute.contract.outcome import OutcomeRecord
from tests import factories
from tests.factories import escalated

JUDGED_WITH_TEXTS = {
    "propensity": 0.9,
    "label": Label.CORRECT,
    "label_source": LabelSource.CLOUD_JUDGE,
    "prompt_text": "What is 2 + 2?",
    "answer_text": "4",
}


def outcome(query_id: str = "q-1", **changes: Any) -> OutcomeRecord:
    """An escalated query judged correct, with texts (``tests.factories.escalated``); ``changes`` override any
    field."""
    return escalated(query_id, **{**JUDGED_WITH_TEXTS, **changes})


def outcomes(count: int, prefix: str = "q", start: int = 0) -> list[OutcomeRecord]:
    """``count`` records with ids ``<prefix>-<start>``, ``<prefix>-<start + 1>``, ..."""
    return factories.outcomes(count, prefix, start, shape=outcome)


def stream_keys(config: OutcomeLogConfig) -> list[str]:
    """Every outcome stream under the config's prefix."""
    if config.single_slot:
        return [config.stream_key]
    with redis.Redis.from_url(config.url, decode_responses=True) as client:
        tags = sorted(client.smembers(config.partitions_key))
    return [config.partition_of_tag(tag).stream for tag in tags]


def _entries(config: OutcomeLogConfig, decode: bool) -> list[tuple[Any, Any]]:
    """Every entry of every outcome stream, oldest first."""
    with redis.Redis.from_url(config.url, decode_responses=decode) as client:
        entries = [entry for key in stream_keys(config) for entry in client.xrange(key)]
    def order(entry: tuple[Any, Any]) -> tuple[int, ...]:
        ident = entry[0] if isinstance(entry[0], str) else entry[0].decode()
        return tuple(int(part) for part in ident.split("-"))
    return sorted(entries, key=order)


def stream_fields(config: OutcomeLogConfig) -> list[dict[str, str]]:
    """Every entry of the outcome streams, as text fields, oldest first."""
    return [fields for _, fields in _entries(config, decode=True)]


def logged(config: OutcomeLogConfig) -> list[OutcomeRecord]:
    """Every record in the outcome streams, oldest first."""
    return [codec.decode(fields) for _, fields in _entries(config, decode=False)]


def logged_ids(config: OutcomeLogConfig) -> list[str]:
    """The query ids in the outcome streams, oldest first, repeats included."""
    return [fields["qid"] for fields in stream_fields(config)]


def stream_length(config: OutcomeLogConfig) -> int:
    with redis.Redis.from_url(config.url) as client:
        return sum(int(client.xlen(key)) for key in stream_keys(config))


async def eventually(condition: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    """Waits until ``condition()`` holds; fails the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout_s} s")
        await asyncio.sleep(0.01)
