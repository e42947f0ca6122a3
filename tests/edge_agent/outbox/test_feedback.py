"""User feedback on the device: a rating of a remembered query becomes its user_feedback label, once.

The queues are real SQLite files; the API is a real server on a loopback port, over a fake answerer that
holds a real feedback desk.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from confroute.contract.enums import AnsweredBy, Decision, Label, LabelSource
from confroute.errors import InvalidInput
from edge_agent.api import ApiConfig, ApiServer, serve_api
from edge_agent.outbox import OutcomeQueue, QueueConfig
from edge_agent.outbox.feedback import FeedbackDesk, Rated
from tests.edge_agent.api.fake_answerer import FakeAnswerer
from tests.factories import outcome

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def queues(tmp_path: Path) -> Iterator[tuple[OutcomeQueue, OutcomeQueue]]:
    with OutcomeQueue(QueueConfig(tmp_path / "outbox.db", remember=3)) as outbox, \
            OutcomeQueue(QueueConfig(tmp_path / "feedback.db", remember=0)) as labels:
        yield outbox, labels


@pytest.fixture
def desk(queues: tuple[OutcomeQueue, OutcomeQueue]) -> FeedbackDesk:
    return FeedbackDesk(*queues)


def queued_labels(labels: OutcomeQueue) -> dict[str, tuple[Label, LabelSource]]:
    return {entry.query_id: (entry.record().label, entry.record().label_source) for entry in labels.peek_batch(100)}


def test_a_rating_of_an_answered_query_is_queued_as_its_user_feedback_label(
        queues: tuple[OutcomeQueue, OutcomeQueue], desk: FeedbackDesk) -> None:
    outbox, labels = queues
    outbox.put(outcome("q1"))
    outbox.put(outcome("q2"))

    assert desk.rate("q1", "good") is Rated.RECORDED
    assert desk.rate("q2", "bad") is Rated.RECORDED

    assert queued_labels(labels) == {"q1": (Label.CORRECT, LabelSource.USER_FEEDBACK),
                                     "q2": (Label.INCORRECT, LabelSource.USER_FEEDBACK)}
    [entry] = [e for e in labels.peek_batch(100) if e.query_id == "q1"]
    assert entry.record().signals == outcome("q1").signals  # the record as answered, with its label


def test_the_query_stays_rateable_after_its_record_was_uploaded(
        queues: tuple[OutcomeQueue, OutcomeQueue], desk: FeedbackDesk) -> None:
    outbox, _labels = queues
    outbox.put(outcome("q1"))
    outbox.ack(["q1"])

    assert outbox.stats().queued == 0
    assert desk.rate("q1", "good") is Rated.RECORDED


def test_a_rating_of_the_clouds_answer_is_taken_but_is_no_label_of_the_edges(
        queues: tuple[OutcomeQueue, OutcomeQueue], desk: FeedbackDesk) -> None:
    outbox, labels = queues
    outbox.put(outcome("q1", decision=Decision.ESCALATED, answered_by=AnsweredBy.CLOUD))

    assert desk.rate("q1", "bad") is Rated.NOT_UPLOADED
    assert queued_labels(labels) == {}
    assert desk.rate("q1", "good") is Rated.ALREADY_RATED


def test_unknown_forgotten_and_twice_rated_queries_change_nothing(
        queues: tuple[OutcomeQueue, OutcomeQueue], desk: FeedbackDesk) -> None:
    outbox, labels = queues
    for i in range(5):
        outbox.put(outcome(f"q{i}"))  # remember=3: q0 and q1 are forgotten

    assert desk.rate("nope", "good") is Rated.UNKNOWN
    assert desk.rate("q0", "good") is Rated.UNKNOWN
    assert desk.rate("q4", "bad") is Rated.RECORDED
    assert desk.rate("q4", "good") is Rated.ALREADY_RATED
    assert queued_labels(labels) == {"q4": (Label.INCORRECT, LabelSource.USER_FEEDBACK)}
    with pytest.raises(InvalidInput):
        desk.rate("q3", "meh")


def test_a_version_1_queue_file_gains_the_answered_table(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE outbox (seq INTEGER PRIMARY KEY, query_id TEXT NOT NULL UNIQUE, payload BLOB "
                     "NOT NULL, size INTEGER NOT NULL, enqueued_at REAL NOT NULL, attempts INTEGER NOT NULL "
                     "DEFAULT 0)")
        conn.execute("PRAGMA user_version=1")
    with OutcomeQueue(QueueConfig(path)) as outbox:
        outbox.put(outcome("q1"))
        assert outbox.answered("q1") is not None


# -- over HTTP ----------------------------------------------------------------------------------------


class RatedAnswerer(FakeAnswerer):
    def __init__(self, feedback: FeedbackDesk | None) -> None:
        super().__init__()
        self.feedback = feedback


@pytest.fixture
def api(desk: FeedbackDesk) -> Iterator[ApiServer]:
    with serve_api(RatedAnswerer(desk), ApiConfig(request_timeout_s=5.0)) as running:
        yield running


def post(server: ApiServer, body: Any) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{server.url}/feedback", data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10.0) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_api_takes_a_rating_and_refuses_unknown_twice_rated_and_malformed_ones(
        queues: tuple[OutcomeQueue, OutcomeQueue], api: ApiServer) -> None:
    outbox, labels = queues
    outbox.put(outcome("q1"))

    assert post(api, {"id": "q1", "rating": "good"}) == (
        200, {"object": "feedback", "id": "q1", "rating": "good", "status": "recorded"})
    status, body = post(api, {"id": "q1", "rating": "bad"})
    assert (status, body["error"]["code"]) == (409, "already_rated")
    status, body = post(api, {"id": "someone-elses", "rating": "bad"})
    assert (status, body["error"]["code"], body["error"]["param"]) == (404, "query_not_found", "id")
    for bad, param in (({"id": "q1", "rating": 5}, "rating"), ({"rating": "good"}, "id"), (b"[1", None),
                       ({"id": "x" * 200, "rating": "good"}, "id")):
        status, body = post(api, bad)
        assert (status, body["error"]["param"]) == (400, param)
    assert queued_labels(labels) == {"q1": (Label.CORRECT, LabelSource.USER_FEEDBACK)}


def test_an_answerer_without_a_feedback_desk_answers_501() -> None:
    with serve_api(RatedAnswerer(None), ApiConfig(request_timeout_s=5.0)) as running:
        status, body = post(running, {"id": "q1", "rating": "good"})
    assert (status, body["error"]["code"]) == (501, "feedback_unsupported")
