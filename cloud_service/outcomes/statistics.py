"""Sufficient statistics of the outcome log: score histograms per partition and routing mode, by label.

Recalibration needs, per (edge model version, cohort), the distribution of the routing scores and, for
the labelled records, how often the edge was right at each score. Both fit in fixed histograms, kept up
to date by the same Lua script that appends an entry (``cloud_service.outcomes.writer``), so a
recalibration reads a few dozen small strings instead of re-reading millions of stream entries.

For each partition, routing mode and score ``sig`` (``confroute.routing.logged_scores``: ``post``, the
raw sequence confidence the policy's calibration map is fitted on; ``pre``, the TBG probe), with ``BINS``
bins of equal width over [0, 1] (bin ``b`` holds scores in [b/BINS, (b+1)/BINS), a score of 1 the last
bin), under the stats prefix ``<prefix>:{<version>|<cohort>}:stats:<mode>`` (see ``cloud_service.outcomes.config``):

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

from collections.abc import Mapping
from dataclasses import dataclass

from confroute.contract.enums import Label
from confroute.contract.outcome import OutcomeRecord
from confroute.routing import Stage, logged_scores

BINS = 1000
SIGNALS = tuple(stage.value for stage in (Stage.POST, Stage.PRE))
LABELS = ("c", "w", "u")
WEIGHT_SCALE = 1_000_000  # weights are stored as integers in millionths
# Propensities below this count as this (docs/identity.md): one record weighs at most 1/0.01 = 100 honest
# ones, so a device cannot move a threshold with a few records of propensity 1e-6 (a weight of a million),
# and a record's weight^2 (1e10 millionths at most) cannot wrap the int64 totals (that takes ~9e8 records).
PROPENSITY_FLOOR = 0.01
LABEL_CODES = {Label.CORRECT: "c", Label.INCORRECT: "w", Label.UNKNOWN: "u"}
CODE_LABELS = {code: label for label, code in LABEL_CODES.items()}
FOLDED_FIELD = "st"  # present (value "1") on entries whose statistics were kept at ingest


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
        """The ``spec`` array of ``fold`` (``cloud_service/store/lua/fold.lua``)."""
        flat: list[str | float | int] = [self.label, self.weight, self.weight_sq, self.model]
        for signal, index in self.bins:
            flat += [signal, index]
        return flat


def score_bin(score: float) -> int:
    """The bin of a score in [0, 1] (clipped; a score of 1 goes to the last bin)."""
    return min(BINS - 1, max(0, int(score * BINS)))


def fold_spec(signals: Mapping[str, float], label: Label, propensity: float, model: str) -> FoldSpec:
    """The fold of one record from its signals, label, logged propensity in (0, 1] (clipped to
    :data:`PROPENSITY_FLOOR`) and edge model id.

    The scores binned are the routing contract's raw scores (:func:`confroute.routing.logged_scores`).
    """
    weight = 1.0 / max(propensity, PROPENSITY_FLOOR) if 0.0 < propensity <= 1.0 else 1.0
    bins = tuple((name, score_bin(value)) for name, value in logged_scores(signals).items())
    return FoldSpec(LABEL_CODES[label], round(weight * WEIGHT_SCALE), round(weight * weight * WEIGHT_SCALE), model,
                    bins)


def record_fold(record: OutcomeRecord) -> FoldSpec:
    """:func:`fold_spec` of a record."""
    return fold_spec(record.signals, record.label, record.propensity, record.edge_model.id)
