"""The judge worker: labels shadow and escalated outcomes by comparing the edge answer with the cloud's.

It reads the outcome streams as a consumer of its own group (``judge``; the recalibration worker's
group reads the same entries independently). A query is judged when it is one of two kinds (see
:mod:`cloud_service.judge.eligibility`): a **shadow** query (the device's record says the edge
answered, the service's record holds the cloud answer to the shadow request), or an **escalated**
query whose edge decoded a draft before escalating (``post``/``hybrid``-post; the draft is the
record's ``edge_draft_text``, the cloud answer the service record's or the device record's
``answer_text``). In both cases the question and both answers must have been retained, no label may
be known yet, and the query must fall in the judged ``share``. The judge compares the edge's answer
(the shadowed answer, or the draft) with the cloud's using the same prompts and strict parsing, so
the label says whether the edge was right. Whichever of the two records arrives last triggers the
judgement.
The label goes through :class:`cloud_service.outcomes.labels.LabelWriter` (once per query id). A batch
is acknowledged after its labels are written; a failed or unparseable judgement leaves the query
unlabelled and is not retried.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from collections.abc import Mapping, Sequence

from cloud_service.judge.config import JudgeConfig
from cloud_service.judge.eligibility import comparison, consistent, judgeable
from cloud_service.judge.judge import Judge
from cloud_service.outcomes import codec
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.consumer import GroupConsumer, GroupSettings
from cloud_service.outcomes.labels import LabelOutcome, LabelWriter, LateLabel
from cloud_service.redis_client import RedisClient, StreamEntry, stream_entries, translated
from confroute.contract.enums import LabelSource
from confroute.contract.outcome import OutcomeRecord
from confroute.errors import Unavailable

logger = logging.getLogger(__name__)


def in_share(query_id: str, share: float) -> bool:
    """Whether ``query_id`` is among the judged ``share`` (the same answer in every worker)."""
    digest = hashlib.blake2b(query_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


class JudgeWorker:
    """Judges the outcome streams' eligible queries (see the module docstring)."""

    def __init__(self, client: RedisClient, log_config: OutcomeLogConfig, judge: Judge, config: JudgeConfig) -> None:
        self._client = client
        self._log = log_config
        self._judge = judge
        self._config = config
        self._labels = LabelWriter(client, log_config)
        settings = GroupSettings(config.group, config.consumer, config.batch_size, config.claim_idle_s)
        self._consumer = GroupConsumer(client, settings)

    async def run_once(self) -> Counter[str]:
        """Judges everything new on every stream; returns how many queries ended how."""
        outcomes: Counter[str] = Counter()
        with translated("listing outcome partitions"):
            tags = await self._client.smembers(self._log.partitions_key)
        streams = sorted({self._log.partition_of_tag(_text(tag)).stream for tag in tags})
        for stream in streams:
            async for entries in self._consumer.batches(stream):
                outcomes.update(await self._judge_batch(stream, entries))
                await self._consumer.ack(stream, [ident for ident, _ in entries])
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

    async def _judge_batch(self, stream: str, entries: Sequence[StreamEntry]) -> list[str]:
        """Judges the batch's queries concurrently (the budget bounds the calls), each query once: its
        device and service records may both be in the batch."""
        by_query: dict[bytes, Mapping[bytes, bytes]] = {}
        for _, fields in entries:
            by_query.setdefault(fields.get(b"qid", b""), fields)
        outcomes = await asyncio.gather(*(self._judge_entry(stream, fields) for fields in by_query.values()))
        return [*outcomes, *["same_query_in_batch"] * (len(entries) - len(by_query))]

    async def _judge_entry(self, stream: str, fields: Mapping[bytes, bytes]) -> str:
        """What became of one entry's query: ``labelled``, ``unlabelled`` (the judge gave no verdict),
        or why it was not judged."""
        record = _record(fields)
        if record is None or not judgeable(record):
            return "not_eligible"
        if not in_share(record.query_id, self._config.share):
            return "outside_share"
        origin = fields.get(b"origin", b"device").decode()
        other = await self._counterpart(stream, record, "service" if origin == "device" else "device")
        if other is None:
            return "waiting_for_other_record"
        device, service = (record, other) if origin == "device" else (other, record)
        if not consistent(device):
            return "not_eligible"
        texts = comparison(device, service)
        if isinstance(texts, str):
            return texts
        keys = self._log.partition(record.edge_model.version, record.cohort)
        if await self._client.exists(keys.labelled(record.query_id)):
            return "already_labelled"
        verdict = await self._judge.verdict(record.query_id, texts.question, texts.edge_answer, texts.cloud_answer)
        if verdict.label is None:
            logger.info("query %s left unlabelled: %s", record.query_id, verdict.reason)
            return "unlabelled"
        written = await self._labels.write(LateLabel(device, verdict.label, LabelSource.CLOUD_JUDGE))
        return "already_labelled" if written is LabelOutcome.ALREADY_LABELLED else "labelled"

    async def _counterpart(self, stream: str, record: OutcomeRecord, origin: str) -> OutcomeRecord | None:
        """The other origin's record of the same query, if logged."""
        keys = self._log.partition(record.edge_model.version, record.cohort)
        with translated("reading an outcome entry"):
            entry_id = await self._client.get(keys.seen(record.query_id, origin))
            if entry_id is None:
                return None
            entries = stream_entries(await self._client.xrange(stream, entry_id, entry_id))
        return _record(entries[0][1]) if entries else None


def _record(fields: Mapping[bytes, bytes]) -> OutcomeRecord | None:
    try:
        return codec.decode(fields) if fields else None
    except (KeyError, ValueError):
        return None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
