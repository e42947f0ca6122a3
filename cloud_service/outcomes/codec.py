"""How one :class:`OutcomeRecord` is laid out as the fields of one Redis Stream entry, and back.

One field per attribute keeps the log readable with ``XRANGE`` and lets readers fetch only what they
need; signals are one compact JSON object. Optional values that are absent (no cloud model, no cloud
latency, texts not retained) have no field at all. Timestamps are ISO 8601 in UTC, floats their
shortest exact ``repr``. ``v`` is the layout's version, for readers of old entries.

This runs once per record on the write path, so it is written for speed: JSON by rapidjson (the same
text as the standard library's compact encoder, but for the case of ``\\u`` escapes' hex digits),
enum values read from ``_value_`` (``Enum.value`` is a Python-level descriptor).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import rapidjson

from confroute.contract.common import ModelRef
from confroute.contract.enums import AnsweredBy, Decision, Label, LabelSource, RoutingMode
from confroute.contract.outcome import Latency, OutcomeRecord

LAYOUT_VERSION = "1"
_to_json_slowly = json.JSONEncoder(separators=(",", ":")).encode


def to_json(value: Any) -> str:
    """Compact JSON, ASCII only (non-ASCII as ``\\u`` escapes, which Redis's Lua cjson decodes too)."""
    try:
        return rapidjson.dumps(value)
    except UnicodeEncodeError:  # a lone surrogate, which only the standard library escapes
        return _to_json_slowly(value)


def encode(record: OutcomeRecord, *, retain_text: bool) -> dict[str, str]:
    """The entry's fields; prompt, answer and edge draft texts only with ``retain_text``."""
    pairs = encode_pairs(record, retain_text=retain_text)
    return dict(zip(pairs[::2], pairs[1::2], strict=True))


def encode_pairs(record: OutcomeRecord, *, retain_text: bool) -> list[str]:
    """The entry's fields as ``[field, value, field, value, ...]``, the form ``XADD`` takes (and the
    fastest to build: this runs once per record on the write path)."""
    latency = record.latency
    pairs = [
        "v", LAYOUT_VERSION,
        "qid", record.query_id,
        "device", record.device_id,
        "cohort", record.cohort,
        "edge_model", record.edge_model.id,
        "edge_version", record.edge_model.version,
        "mode", record.mode._value_,
        "decision", record.decision._value_,
        "answered_by", record.answered_by._value_,
        "shadow", "1" if record.shadow else "0",
        "propensity", repr(record.propensity),
        "edge_ms", repr(latency.edge_ms),
        "total_ms", repr(latency.total_ms),
        "label", record.label._value_,
        "label_source", record.label_source._value_,
        "policy", record.policy_version,
        "started_at", _utc(record.started_at).isoformat(),
        "finished_at", _utc(record.finished_at).isoformat(),
        "signals", to_json(dict(record.signals)),
    ]  # fmt: skip
    if record.cloud_model is not None:
        pairs += ("cloud_model", record.cloud_model.id, "cloud_version", record.cloud_model.version)
    if latency.cloud_ms is not None:
        pairs += ("cloud_ms", repr(latency.cloud_ms))
    if retain_text:
        if record.prompt_text is not None:
            pairs += ("prompt", record.prompt_text)
        if record.answer_text is not None:
            pairs += ("answer", record.answer_text)
        if record.edge_draft_text is not None:
            pairs += ("draft", record.edge_draft_text)
    return pairs


def decode(raw: Mapping[bytes, bytes]) -> OutcomeRecord:
    """The record an entry holds (as redis-py returns it, undecoded); ``KeyError`` if a field is missing."""
    fields = {key.decode(): value.decode() for key, value in raw.items()}
    cloud_ms = fields.get("cloud_ms")
    return OutcomeRecord(
        query_id=fields["qid"],
        device_id=fields["device"],
        cohort=fields["cohort"],
        edge_model=ModelRef(fields["edge_model"], fields["edge_version"]),
        cloud_model=ModelRef(fields["cloud_model"], fields["cloud_version"]) if "cloud_model" in fields else None,
        mode=RoutingMode(fields["mode"]),
        decision=Decision(fields["decision"]),
        answered_by=AnsweredBy(fields["answered_by"]),
        shadow=fields["shadow"] == "1",
        propensity=float(fields["propensity"]),
        latency=Latency(
            edge_ms=float(fields["edge_ms"]),
            total_ms=float(fields["total_ms"]),
            cloud_ms=float(cloud_ms) if cloud_ms is not None else None,
        ),
        label=Label(fields["label"]),
        label_source=LabelSource(fields["label_source"]),
        policy_version=fields["policy"],
        started_at=datetime.fromisoformat(fields["started_at"]),
        finished_at=datetime.fromisoformat(fields["finished_at"]),
        signals=json.loads(fields["signals"]),
        prompt_text=fields.get("prompt"),
        answer_text=fields.get("answer"),
        edge_draft_text=fields.get("draft"),
    )


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("outcome timestamps must be timezone-aware")
    return moment if moment.tzinfo is timezone.utc else moment.astimezone(timezone.utc)
