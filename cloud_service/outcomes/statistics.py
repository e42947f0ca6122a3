"""Sufficient statistics of the outcome log: score histograms per partition and routing mode, by label.

Recalibration needs, per (edge model version, cohort), the distribution of the routing scores and, for
the labelled records, how often the edge was right at each score. Both fit in fixed histograms, kept up
to date by the same Lua script that appends an entry (``cloud_service.outcomes.writer``), so a
recalibration reads a few dozen small strings instead of re-reading millions of stream entries.

For each partition, routing mode and score ``sig`` (``post``: the raw sequence confidence the policy's
calibration map is fitted on; ``pre``: the TBG probe), with ``BINS`` bins of equal width over [0, 1]
(bin ``b`` holds scores in [b/BINS, (b+1)/BINS), a score of 1 the last bin), under the stats prefix
``<prefix>:{<version>|<cohort>}:stats:<mode>`` (see ``cloud_service.outcomes.config``):

    <stats>:<sig>:n          records per bin (every device record, unweighted: the traffic's scores)
    <stats>:<sig>:w:<lab>    per bin, the sum of inverse propensities 1/p of the records labelled ``lab``
    <stats>:<sig>:t          totals per label: records, sum of 1/p, sum of 1/p^2 (the effective sample size)
    <stats>:meta             a hash: ``model``, the edge model's id (the partition names its version)
    <base>:arm:<policy>      totals per label of the records routed by one policy version (all modes and
                             scores together): what a canary is judged on against its control

Each histogram is one string of signed 64-bit big-endian integers (``BITFIELD ... INCRBY i64 #<b>``):
one command updates every bin a batch touches (a field per bin cost one command each, which made the
statistics the larger part of the append script), and a reader turns each into a numpy array without
parsing thousands of fields. Weights are integers in millionths (``WEIGHT_SCALE``), so moving a label's
weight is exact and never leaves rounding residue. Totals are laid out as ``[N_c, N_w, N_u, W_c, W_w,
W_u, W2_c, W2_w, W2_u]``.

``lab`` is ``c`` (edge answer correct), ``w`` (wrong) or ``u`` (unlabelled). A label that arrives later
(judge, gold answer) moves the record's weight from ``u`` to its label once per query id (the marker
``labelled:<qid>`` makes it idempotent; see ``cloud_service.outcomes.labels``). Only the device's own
record of a query is counted: the service's record of an escalation (origin ``service``) is the same
query seen from the cloud. The scripts derive these keys from the stats prefix they are given: all
share its hash tag, hence its slot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from confroute.contract.enums import Label
from confroute.contract.outcome import OutcomeRecord

BINS = 1000
SIGNALS = ("post", "pre")
LABELS = ("c", "w", "u")
WEIGHT_SCALE = 1_000_000  # weights are stored as integers in millionths
# Propensities below this count as this (docs/identity.md): one record weighs at most 1/0.01 = 100 honest
# ones, so a device cannot move a threshold with a few records of propensity 1e-6 (a weight of a million),
# and a record's weight^2 (1e10 millionths at most) cannot wrap the int64 totals (that takes ~9e8 records).
PROPENSITY_FLOOR = 0.01
LABEL_CODES = {Label.CORRECT: "c", Label.INCORRECT: "w", Label.UNKNOWN: "u"}
CODE_LABELS = {code: label for label, code in LABEL_CODES.items()}
FOLDED_FIELD = "st"  # present (value "1") on entries whose statistics were kept at ingest

PROBE_TBG = "probe_tbg"
PROBE_SLT = "probe_slt"
LOGPROB_MEAN = "logprob_mean"

# Lua: ``fold`` one record under the stats prefix ``stats`` and into the totals ``arm`` of the policy version
# it was routed with; ``spec`` = {label, weight, weight^2 (both
# integers in millionths), model, sig, bin, sig, bin, ...}; ``late``: a label written before the record
# arrived (``labelled:<qid>``), which wins over ``u``. Folds add up in a table; ``flush()`` (once, at the
# end of the script) sends one BITFIELD per histogram touched. ``bump`` is shared with the label mover.
FOLD_FUNCTION = """
local pending = {}
local seen_meta = {}
local label_index = {c = 0, w = 1, u = 2}
local function bump(key, offset, amount)
  local bins = pending[key]
  if not bins then
    bins = {}
    pending[key] = bins
  end
  bins[offset] = (bins[offset] or 0) + amount
end
local key_cache = {}
local function keys_of(stats, sig)
  local by_sig = key_cache[stats]
  if not by_sig then
    by_sig = {}
    key_cache[stats] = by_sig
  end
  local keys = by_sig[sig]
  if not keys then
    local prefix = stats .. ':' .. sig
    keys = {n = prefix .. ':n', t = prefix .. ':t',
            c = prefix .. ':w:c', w = prefix .. ':w:w', u = prefix .. ':w:u'}
    by_sig[sig] = keys
  end
  return keys
end
local function bump_totals(key, at, sign, w, w2)
  bump(key, at, sign)
  bump(key, 3 + at, w)
  bump(key, 6 + at, w2)
end
local function bump_record(stats, arm, spec, label, sign, count)
  local w, w2, at = sign * tonumber(spec[2]), sign * tonumber(spec[3]), label_index[label]
  for j = 5, #spec, 2 do
    local keys, bin = keys_of(stats, spec[j]), spec[j + 1]
    if count then bump(keys.n, bin, 1) end
    bump(keys[label], bin, w)
    bump_totals(keys.t, at, sign, w, w2)
  end
  bump_totals(arm, at, sign, w, w2)
end
local function fold(stats, arm, spec, late)
  local label = spec[1]
  if label == 'u' and late then label = late end
  if not seen_meta[stats] then
    redis.call('HSETNX', stats .. ':meta', 'model', spec[4])
    seen_meta[stats] = true
  end
  bump_record(stats, arm, spec, label, 1, true)
end
local function flush()
  for key, bins in pairs(pending) do
    local args, ops = {}, 0
    for offset, amount in pairs(bins) do
      if amount ~= 0 then
        args[#args + 1] = 'INCRBY'
        args[#args + 1] = 'i64'
        args[#args + 1] = '#' .. offset
        args[#args + 1] = string.format('%d', amount)
        ops = ops + 1
        if ops == 1000 then
          redis.call('BITFIELD', key, unpack(args))
          args, ops = {}, 0
        end
      end
    end
    if ops > 0 then redis.call('BITFIELD', key, unpack(args)) end
  end
end
"""


@dataclass(frozen=True)
class FoldSpec:
    """What one record adds to its partition's histograms: its label, weight 1/p and 1/p^2 (integers in
    millionths), model id and score bins."""

    label: str
    weight: int
    weight_sq: int
    model: str
    bins: tuple[tuple[str, int], ...]

    def to_lua(self) -> list[str | float | int]:
        """The ``spec`` array of ``FOLD_FUNCTION``."""
        flat: list[str | float | int] = [self.label, self.weight, self.weight_sq, self.model]
        for signal, index in self.bins:
            flat += [signal, index]
        return flat


def score_bin(score: float) -> int:
    """The bin of a score in [0, 1] (clipped; a score of 1 goes to the last bin)."""
    return min(BINS - 1, max(0, int(score * BINS)))


def scores(signals: Mapping[str, float]) -> dict[str, float]:
    """The routing scores a record's signals give, each in [0, 1]; non-finite signals are left out.

    ``post`` is the edge agent's raw post-generation score (``edge_agent.routing.raw_post_score``):
    exp(logprob_mean), averaged with the SLT probe when present. ``pre`` is the TBG probe.
    """
    found: dict[str, float] = {}
    logprob = _finite(signals.get(LOGPROB_MEAN))
    if logprob is not None:
        sequence = _clip(math.exp(min(logprob, 0.0)))
        slt = _finite(signals.get(PROBE_SLT))
        found["post"] = sequence if slt is None else (sequence + _clip(slt)) / 2.0
    tbg = _finite(signals.get(PROBE_TBG))
    if tbg is not None:
        found["pre"] = _clip(tbg)
    return found


def fold_spec(signals: Mapping[str, float], label: Label, propensity: float, model: str) -> FoldSpec:
    """The fold of one record from its signals, label, logged propensity in (0, 1] (clipped to
    :data:`PROPENSITY_FLOOR`) and edge model id."""
    weight = 1.0 / max(propensity, PROPENSITY_FLOOR) if 0.0 < propensity <= 1.0 else 1.0
    bins = tuple((name, score_bin(value)) for name, value in scores(signals).items())
    return FoldSpec(LABEL_CODES[label], round(weight * WEIGHT_SCALE), round(weight * weight * WEIGHT_SCALE), model,
                    bins)


def record_fold(record: OutcomeRecord) -> FoldSpec:
    """:func:`fold_spec` of a record."""
    return fold_spec(record.signals, record.label, record.propensity, record.edge_model.id)


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))
