"""``POST /v1/feedback``: the user's rating of an answer this device gave.

Body: ``{"id": "<query id>", "rating": "good" | "bad"}``; the query id is the answer's
``X-Confroute-Query-Id`` header (or ``confroute.query_id`` in its body or final stream chunk).
Answers: 200 ``{"object": "feedback", "id", "rating", "status": "recorded"}`` (``"recorded_not_uploaded"``
for an answer the cloud gave: its rating is no label of the edge model's answer); 400 for a malformed
body or an unknown rating; 404 (``query_not_found``) for a query this device did not answer or no
longer remembers; 409 (``already_rated``) when the query was rated before (the first rating counts);
501 when the agent takes no feedback. The rating travels to the cloud as the query's ``user_feedback``
label (:mod:`edge_agent.outbox.feedback`).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from starlette.requests import Request
from starlette.responses import Response

from edge_agent.api.errors import SERVER_ERROR, HttpError
from edge_agent.api.wire import encode
from edge_agent.outbox.feedback import FeedbackDesk, Rated

if TYPE_CHECKING:
    from edge_agent.api.asgi import ApiApp

MAX_ID_CHARS = 128


@runtime_checkable
class TakesFeedback(Protocol):
    """An answerer whose answers can be rated (the edge agent)."""

    feedback: FeedbackDesk | None


async def feedback(app: ApiApp, request: Request, started: float) -> Response:
    """Takes one rating (see the module docstring)."""
    query_id, rating = parse_feedback(await app._read_body(request))
    desk = app.answerer.feedback if isinstance(app.answerer, TakesFeedback) else None
    if desk is None:
        raise HttpError(501, "this agent takes no feedback", kind=SERVER_ERROR, code="feedback_unsupported")
    rated = await asyncio.to_thread(desk.rate, query_id, rating)
    if rated is Rated.UNKNOWN:
        raise HttpError(404, f"this device answered no query {query_id!r} (or no longer remembers it)",
                        param="id", code="query_not_found")
    if rated is Rated.ALREADY_RATED:
        raise HttpError(409, f"query {query_id!r} was rated before; the first rating counts", param="id",
                        code="already_rated")
    body = {"object": "feedback", "id": query_id, "rating": rating, "status": rated.value}
    return Response(encode(body), 200, media_type="application/json")


def parse_feedback(raw: bytes) -> tuple[str, str]:
    """The query id and rating of a feedback body; HttpError 400 naming the bad field otherwise."""
    try:
        body: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HttpError(400, f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise HttpError(400, "the body must be a JSON object {\"id\": ..., \"rating\": ...}")
    query_id, rating = body.get("id"), body.get("rating")
    if not isinstance(query_id, str) or not query_id.strip() or len(query_id) > MAX_ID_CHARS:
        raise HttpError(400, f"id must be the query id of an answer (a string of 1 to {MAX_ID_CHARS} characters)",
                        param="id")
    if rating not in ("good", "bad"):
        raise HttpError(400, f"rating must be \"good\" or \"bad\", got {rating!r}", param="rating")
    return query_id, rating
