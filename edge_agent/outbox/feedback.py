"""User feedback: a rating for a query this device answered, carried to the cloud as a late label.

The user rates the answer they got (good: it was right, bad: it was wrong). The rating becomes the
query's label with source ``user_feedback``: the device's record of the query (remembered by the
outcome queue, see :meth:`OutcomeQueue.answered`) with its label set, put in a queue of its own (a
second :class:`OutcomeQueue` file) that an :class:`Uploader` drains through
``OutcomesService.UploadLabels``. The cloud writes it once per query id, whether or not the record
itself was uploaded yet.

Only queries this device answered, and still remembers, can be rated (others: ``UNKNOWN``); the first
rating of a query counts (a second: ``ALREADY_RATED``). A label says whether the *edge model's* answer was
right (what the statistics calibrate and the router learns from), so a rating of an answer the cloud gave
is taken, the query marked rated, and nothing uploaded (``NOT_UPLOADED``): it says nothing about the edge's answer.

The label is queued before the query is marked
rated, so a crash between the two leaves a rating that may be given again, never one that is lost.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

from confroute.contract import OutcomeRecord
from confroute.contract.enums import AnsweredBy, Label, LabelSource
from confroute.errors import InvalidInput
from edge_agent.outbox.queue import OutcomeQueue

#: The ratings a user may give, and the label each means for the answer they got.
RATINGS: dict[str, Label] = {"good": Label.CORRECT, "bad": Label.INCORRECT}


class Rated(enum.Enum):
    """What taking one rating did."""

    RECORDED = "recorded"  # queued for the cloud as the query's user_feedback label
    UNKNOWN = "unknown"  # this device answered no such query (or no longer remembers it)
    ALREADY_RATED = "already_rated"  # a rating for this query was taken before: nothing changed
    NOT_UPLOADED = "recorded_not_uploaded"  # the cloud gave the answer: its rating is no label of the edge's


def label_of(rating: str) -> Label:
    """The label a rating means; InvalidInput for anything but ``good`` or ``bad``."""
    label = RATINGS.get(rating)
    if label is None:
        raise InvalidInput(f"rating must be one of {', '.join(sorted(RATINGS))}, got {rating!r}", field="rating")
    return label


def labelled(record: OutcomeRecord, label: Label) -> OutcomeRecord:
    """The record carrying ``label`` as user feedback (what ``UploadLabels`` takes)."""
    return dataclasses.replace(record, label=label, label_source=LabelSource.USER_FEEDBACK)


class FeedbackDesk:
    """Takes ratings for the queries ``outbox`` remembers and queues them as labels in ``labels``.

    ``on_rated`` is called after each recorded rating (the label uploader's ``wake``)."""

    def __init__(self, outbox: OutcomeQueue, labels: OutcomeQueue,
                 on_rated: Callable[[], None] | None = None) -> None:
        self._outbox = outbox
        self._labels = labels
        self._on_rated = on_rated

    def rate(self, query_id: str, rating: str) -> Rated:
        """Takes a rating (``good``/``bad``) for ``query_id`` (see the module docstring)."""
        label = label_of(rating)
        found = self._outbox.answered(query_id)
        if found is None:
            return Rated.UNKNOWN
        record, rated = found
        if rated:
            return Rated.ALREADY_RATED
        if record.answered_by is not AnsweredBy.EDGE:
            return Rated.NOT_UPLOADED if self._outbox.mark_rated(query_id) else Rated.ALREADY_RATED
        if not self._labels.put(labelled(record, label)):
            return Rated.ALREADY_RATED  # a concurrent rating queued its label first
        self._outbox.mark_rated(query_id)
        if self._on_rated is not None:
            self._on_rated()
        return Rated.RECORDED
