"""Labels that arrive after their outcome (an LLM judge, a gold answer), written back once per query id.

A late label is appended to the partition's ``labels`` stream and moves the device record's weight in
the score histograms from ``u`` (unlabelled) to the label, in one Lua script, at most once per query
id: the marker ``labelled:<qid>`` (value: the label) is set with ``NX``, and a second label for the
same query changes nothing. If the device record is not in the log yet, the marker waits for it: the
script that folds the record later (at ingest, or the recalibration worker's fold) folds it under the
marker's label instead of ``u``. So a record is counted once, under one label, whatever the order.

Only unlabelled records take a late label: a record that arrived with a gold label keeps it.

Labels a device uploads (user feedback, ``OutcomesService.UploadLabels``) are written by
:meth:`LabelWriter.write_durably`: one pipeline per batch, ending with ``WAITAOF`` where the log's
acknowledgement policy asks for it, like uploaded records (``cloud_service.store.durability``).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from redis.exceptions import NoScriptError

from cloud_service.outcomes import codec, statistics
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.ports import StoreResult
from cloud_service.redis_client import RedisClient, translated
from cloud_service.store.scripts import script
from confroute.contract.enums import Label, LabelSource
from confroute.contract.outcome import OutcomeRecord
from confroute.errors import Unavailable


class LabelOutcome(enum.Enum):
    """What writing one late label did."""

    MOVED = "moved"  # the record's weight moved from unlabelled to the label
    WAITING = "waiting"  # the label is stored; the record's fold (still to come) will use it
    ALREADY_LABELLED = "already_labelled"  # a label for this query id was written before: nothing changed


_OUTCOMES = {1: LabelOutcome.MOVED, 2: LabelOutcome.WAITING, 0: LabelOutcome.ALREADY_LABELLED}


@dataclass(frozen=True)
class LateLabel:
    """A label for the query of ``record``: the device's record or the service's record of the same
    query (they carry the same signals, mode and propensity), as logged, unlabelled."""

    record: OutcomeRecord
    label: Label
    source: LabelSource

    def __post_init__(self) -> None:
        if self.label is Label.UNKNOWN or self.source is LabelSource.NONE:
            raise ValueError("a late label must be known and have a source")
        if self.record.label is not Label.UNKNOWN:
            raise ValueError(f"query {self.record.query_id} already has a label; late labels are for unlabelled ones")


def uploaded_label(record: OutcomeRecord) -> LateLabel:
    """The late label a device's labelled record carries (the record as first logged: unlabelled)."""
    return LateLabel(replace(record, label=Label.UNKNOWN, label_source=LabelSource.NONE), record.label,
                     record.label_source)


@runtime_checkable
class LabelLog(Protocol):
    """Where a device's late labels are stored durably (the Redis outcome log)."""

    async def label(self, labels: Sequence[LateLabel]) -> StoreResult:
        """Writes each label once per query id before returning: ``stored`` the first labels, ``duplicates``
        the queries labelled before; ``Unavailable`` when the log cannot be reached."""
        ...


def folded_marker(config: OutcomeLogConfig, record: OutcomeRecord) -> str:
    """The key the recalibration worker sets when it folds a record that was not folded at ingest."""
    return config.partition(record.edge_model.version, record.cohort).folded(record.query_id)


class LabelWriter:
    """Writes late labels into the outcome log and its statistics (see the module docstring)."""

    def __init__(self, client: RedisClient, config: OutcomeLogConfig) -> None:
        self._client = client
        self._config = config

    async def write(self, label: LateLabel) -> LabelOutcome:
        script_keys, args = self._call(label)
        with translated("writing a late label"):
            reply = await script("label_once").run(self._client, script_keys, args)
        return _OUTCOMES[int(reply)]

    async def write_durably(self, labels: Sequence[LateLabel], wait_aof_ms: int = 0) -> StoreResult:
        """Writes the labels in one pipeline; with ``wait_aof_ms`` > 0 returns only once Redis fsynced them
        to its AOF (``Unavailable`` if that took longer)."""
        if not labels:
            return StoreResult(stored=(), duplicates=())
        with translated("writing late labels"):
            try:
                replies = await self._pipeline(labels, wait_aof_ms)
            except NoScriptError:  # nothing ran: load the script and send the batch again
                await script("label_once").load(self._client)
                replies = await self._pipeline(labels, wait_aof_ms)
        outcomes = [_OUTCOMES[int(reply)] for reply in replies]
        stored = tuple(lb.record.query_id for lb, o in zip(labels, outcomes, strict=True)
                       if o is not LabelOutcome.ALREADY_LABELLED)
        duplicates = tuple(lb.record.query_id for lb, o in zip(labels, outcomes, strict=True)
                           if o is LabelOutcome.ALREADY_LABELLED)
        return StoreResult(stored=stored, duplicates=duplicates)

    async def _pipeline(self, labels: Sequence[LateLabel], wait_aof_ms: int) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for label in labels:
            script("label_once").queue(pipe, *self._call(label))
        if wait_aof_ms:
            pipe.execute_command("WAITAOF", 1, 0, wait_aof_ms)
        replies: list[Any] = await pipe.execute()
        if wait_aof_ms and int(replies.pop()[0]) < 1:
            raise Unavailable(f"Redis did not fsync the labels to its AOF within {wait_aof_ms} ms")
        return replies

    def _call(self, label: LateLabel) -> tuple[list[str], list[str | int]]:
        record = label.record
        keys = self._config.partition(record.edge_model.version, record.cohort)
        spec = statistics.record_fold(record).to_lua()
        script_keys = [keys.labelled(record.query_id), keys.labels, keys.seen(record.query_id, "device"),
                       keys.stats(record.mode._value_), folded_marker(self._config, record), keys.stream,
                       keys.arm(record.policy_version)]
        args: list[str | int] = [self._config.dedupe_ttl_s, statistics.LABEL_CODES[label.label], label.source._value_,
                                 record.query_id, codec.to_json(spec)]
        return script_keys, args
