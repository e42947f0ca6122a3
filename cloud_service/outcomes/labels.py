"""Labels that arrive after their outcome (an LLM judge, a gold answer), written back once per query id.

A late label is appended to the partition's ``labels`` stream and moves the device record's weight in
the score histograms from ``u`` (unlabelled) to the label, in one Lua script, at most once per query
id: the marker ``labelled:<qid>`` (value: the label) is set with ``NX``, and a second label for the
same query changes nothing. If the device record is not in the log yet, the marker waits for it: the
script that folds the record later (at ingest, or the recalibration worker's fold) folds it under the
marker's label instead of ``u``. So a record is counted once, under one label, whatever the order.

Only unlabelled records take a late label: a record that arrived with a gold label keeps it.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from redis.exceptions import NoScriptError

from cloud_service.outcomes import codec, statistics
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.redis_client import RedisClient, translated
from confroute.contract.enums import Label, LabelSource
from confroute.contract.outcome import OutcomeRecord

# KEYS: [1] labelled marker, [2] labels stream, [3] the device record's dedupe key (value: its entry id),
# [4] its statistics prefix, [5] its worker-fold marker, [6] the outcome stream, [7] its policy version's
# totals. ARGV: [1] TTL (s),
# [2] label code, [3] label source, [4] query id, [5] the record's fold as folded (label u).
# Returns 1 moved, 2 waiting for the record's fold, 0 labelled before.
LABEL_ONCE = statistics.FOLD_FUNCTION + """
if not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('XADD', KEYS[2], '*', 'qid', ARGV[4], 'label', ARGV[2], 'source', ARGV[3])
local id = redis.call('GET', KEYS[3])
if not id then return 2 end
local folded = redis.call('EXISTS', KEYS[5]) == 1
if not folded then
  local entry = redis.call('XRANGE', KEYS[6], id, id)[1]
  if not entry then return 2 end
  local fields = entry[2]
  for j = 1, #fields, 2 do
    if fields[j] == 'st' then folded = true end
  end
end
if not folded then return 2 end
local spec = cjson.decode(ARGV[5])
bump_record(KEYS[4], KEYS[7], spec, 'u', -1, false)
bump_record(KEYS[4], KEYS[7], spec, ARGV[2], 1, false)
flush()
return 1
"""
_SHA = hashlib.sha1(LABEL_ONCE.encode()).hexdigest()


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


def folded_marker(config: OutcomeLogConfig, record: OutcomeRecord) -> str:
    """The key the recalibration worker sets when it folds a record that was not folded at ingest."""
    return f"{config.partition(record.edge_model.version, record.cohort).base}:folded:{record.query_id}"


class LabelWriter:
    """Writes late labels into the outcome log and its statistics (see the module docstring)."""

    def __init__(self, client: RedisClient, config: OutcomeLogConfig) -> None:
        self._client = client
        self._config = config

    async def write(self, label: LateLabel) -> LabelOutcome:
        record = label.record
        keys = self._config.partition(record.edge_model.version, record.cohort)
        spec = statistics.record_fold(record).to_lua()
        script_keys = [keys.labelled(record.query_id), keys.labels, keys.seen(record.query_id, "device"),
                       keys.stats(record.mode._value_), folded_marker(self._config, record), keys.stream,
                       keys.arm(record.policy_version)]
        args: list[str | int] = [self._config.dedupe_ttl_s, statistics.LABEL_CODES[label.label], label.source._value_,
                record.query_id, codec.to_json(spec)]
        with translated("writing a late label"):
            try:
                reply = await self._client.evalsha(_SHA, len(script_keys), *script_keys, *args)
            except NoScriptError:
                await self._client.script_load(LABEL_ONCE)
                reply = await self._client.evalsha(_SHA, len(script_keys), *script_keys, *args)
        return _OUTCOMES[int(reply)]
