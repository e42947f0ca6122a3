"""Texts held only until the judge is done with them: the one place the service keeps prompt and answer text.

With ``retain_text`` the service's record of a **judgeable** escalation (a shadow query, or an
escalation that carries the edge's draft: both answers and the question are in hand) is written twice:
to the outcome stream *without* its texts, like every record, and whole (texts included) to one key,
``held:<query id>``, set with ``EX text_ttl_s`` in the same command, while its query id is appended
to the partition's ``to-judge`` stream (ids only). The judge worker reads that stream, judges,
and deletes the held key as soon as it is done (whatever the verdict); the TTL is the backstop for
queries it never reaches. The outcome stream, the labels, the statistics and the ``to-judge`` stream
never hold text, so after the TTL no text of any query remains in Redis.

Texts on other records (a device's uploaded record, a service record of a query that cannot be judged)
are never stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cloud_service.outcomes import codec
from confroute.contract.enums import Decision, Label
from confroute.contract.outcome import OutcomeRecord


def judgeable(record: OutcomeRecord) -> bool:
    """Whether the service's record of an escalation carries what a judgement needs: the question, the
    edge's answer (a shadow query's, or the draft of a post-mode escalation) and the cloud's, unlabelled."""
    return (bool(record.prompt_text and record.edge_draft_text and record.answer_text)
            and (record.shadow or record.decision is Decision.ESCALATED) and record.label is Label.UNKNOWN)


def hold_value(record: OutcomeRecord) -> str:
    """The held key's value: the whole record, texts included, as one JSON object of the stream fields."""
    return codec.to_json(codec.encode(record, retain_text=True))


def from_hold(value: bytes | str) -> OutcomeRecord:
    """The record a held value holds; ``ValueError`` (or ``KeyError``) when it is not one."""
    fields: Mapping[str, str] = json.loads(value)
    return codec.decode({key.encode(): str(text).encode() for key, text in fields.items()})
