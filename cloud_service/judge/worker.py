"""The judge worker: labels shadow and escalated queries from the texts the service holds for it, then
lets the texts go.

The service holds the texts of each judgeable escalation (a shadow query, or a post-mode escalation
with the edge's draft) under a TTL and queues its id on the partition's ``to-judge`` stream
(:mod:`cloud_service.outcomes.held`). This worker reads those streams as a consumer of its own group
(``judge``), and per query: reads the held texts (gone: ``text_expired``), judges the edge's answer
against the cloud's with the same prompts and strict parsing, writes the label through
:class:`cloud_service.outcomes.labels.LabelWriter` (once per query id), hands the texts to the
``after`` hooks (the feature extraction of the retrain loop), and deletes them. A query outside the
judged ``share``, or labelled already, has its texts deleted unjudged. A failed or unparseable
judgement leaves the query unlabelled (and its texts deleted): it is not retried. A Redis failure
leaves the batch unacknowledged and the texts in place: the next pass takes it again, until the TTL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

from cloud_service.judge.config import JudgeConfig
from cloud_service.judge.judge import Judge
from cloud_service.outcomes import held
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.consumer import GroupConsumer, GroupSettings
from cloud_service.outcomes.labels import LabelOutcome, LabelWriter, LateLabel
from cloud_service.redis_client import RedisClient, StreamEntry, translated
from cloud_service.store.schema import PartitionKeys
from confroute.contract.enums import LabelSource
from confroute.contract.outcome import OutcomeRecord
from confroute.errors import Unavailable

logger = logging.getLogger(__name__)

#: Called with each judged query's record, texts included, before the texts are deleted.
AfterJudging = Callable[[OutcomeRecord], Awaitable[None]]


def in_share(query_id: str, share: float) -> bool:
    """Whether ``query_id`` is among the judged ``share`` (the same answer in every worker)."""
    digest = hashlib.blake2b(query_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


def without_text(record: OutcomeRecord) -> OutcomeRecord:
    return dataclasses.replace(record, prompt_text=None, answer_text=None, edge_draft_text=None)


class JudgeWorker:
    """Judges the queries whose texts are held (see the module docstring)."""

    def __init__(self, client: RedisClient, log_config: OutcomeLogConfig, judge: Judge, config: JudgeConfig,
                 after: Sequence[AfterJudging] = ()) -> None:
        self._client = client
        self._log = log_config
        self._judge = judge
        self._config = config
        self._after = tuple(after)
        self._labels = LabelWriter(client, log_config)
        settings = GroupSettings(config.group, config.consumer, config.batch_size, config.claim_idle_s)
        self._consumer = GroupConsumer(client, settings)

    async def run_once(self) -> Counter[str]:
        """Judges everything queued on every partition; returns how many queries ended how."""
        outcomes: Counter[str] = Counter()
        with translated("listing outcome partitions"):
            tags = await self._client.smembers(self._log.partitions_key)
        for keys in sorted((self._log.partition_of_tag(_text(tag)) for tag in tags), key=lambda k: k.to_judge):
            async for entries in self._consumer.batches(keys.to_judge):
                outcomes.update(await self._judge_batch(keys, entries))
                await self._consumer.ack(keys.to_judge, [ident for ident, _ in entries])
        logger.info("judge pass: %s", dict(outcomes))
        return outcomes

    async def run_forever(self, interval_s: float) -> None:
        """``run_once()`` every ``interval_s``; a Redis outage is logged and waited out."""
        while True:
            try:
                await self.run_once()
            except Unavailable as exc:
                logger.warning("judge pass skipped, Redis unavailable: %s", exc)
            await asyncio.sleep(interval_s)

    async def _judge_batch(self, keys: PartitionKeys, entries: Sequence[StreamEntry]) -> list[str]:
        """Judges the batch's queries concurrently (the budget bounds the calls), each query once."""
        query_ids = list(dict.fromkeys(_text(fields.get(b"qid", b"")) for _, fields in entries))
        outcomes = await asyncio.gather(*(self._judge_query(keys, query_id) for query_id in query_ids))
        return [*outcomes, *["same_query_in_batch"] * (len(entries) - len(query_ids))]

    async def _judge_query(self, keys: PartitionKeys, query_id: str) -> str:
        """What became of one query: ``labelled``, ``unlabelled`` (no verdict), or why it was not judged."""
        with translated("reading held texts"):
            value = await self._client.get(keys.held(query_id))
        if value is None:
            return "text_expired"
        try:
            record = held.from_hold(value)
        except (KeyError, ValueError):
            return await self._release(keys, query_id, "not_eligible")
        if not held.judgeable(record):
            return await self._release(keys, query_id, "not_eligible")
        if not in_share(query_id, self._config.share):
            return await self._release(keys, query_id, "outside_share")
        with translated("reading a label marker"):
            if await self._client.exists(keys.labelled(query_id)):
                return await self._release(keys, query_id, "already_labelled")
        outcome = await self._label(record)
        for hook in self._after:
            await hook(record)
        return await self._release(keys, query_id, outcome)

    async def _label(self, record: OutcomeRecord) -> str:
        assert record.prompt_text and record.edge_draft_text and record.answer_text  # judgeable
        verdict = await self._judge.verdict(record.query_id, record.prompt_text, record.edge_draft_text,
                                            record.answer_text)
        if verdict.label is None:
            logger.info("query %s left unlabelled: %s", record.query_id, verdict.reason)
            return "unlabelled"
        written = await self._labels.write(LateLabel(without_text(record), verdict.label, LabelSource.CLOUD_JUDGE))
        return "already_labelled" if written is LabelOutcome.ALREADY_LABELLED else "labelled"

    async def _release(self, keys: PartitionKeys, query_id: str, outcome: str) -> str:
        """Deletes the query's held texts: nothing readable of it stays once it is judged."""
        with translated("deleting held texts"):
            await self._client.delete(keys.held(query_id))
        return outcome


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

