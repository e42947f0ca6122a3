"""Errors as the OpenAI-compatible API reports them: ``{"error": {"message", "type", "param", "code"}}``.

This module is the HTTP boundary's one translation table. confroute's exceptions map by type:

    InvalidInput          400 invalid_request_error   param = error.field
      PromptTooLong       400 invalid_request_error   code context_length_exceeded
    Overloaded            429 requests                code rate_limit_exceeded   (Retry-After: 1)
    Unavailable           503 server_error            code unavailable           (Retry-After: 1)
    DeadlineExceeded      504 server_error            code deadline_exceeded
    anything else         500 server_error            (logged here, once, with its traceback)

``HttpError`` is the API layer's own refusal (unknown route, wrong method, body too large, unknown
model): raised inside the request handler and turned into a response there, never raised past it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from confroute.errors import DeadlineExceeded, InvalidInput, Overloaded, PromptTooLong, Unavailable

logger = logging.getLogger(__name__)

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"

#: (error type, HTTP status, OpenAI error type, code, retry hint), most specific type first.
_TABLE: tuple[tuple[type[Exception], int, str, str | None, bool], ...] = (
    (PromptTooLong, 400, INVALID_REQUEST, "context_length_exceeded", False),
    (InvalidInput, 400, INVALID_REQUEST, None, False),
    (Overloaded, 429, "requests", "rate_limit_exceeded", True),
    (Unavailable, 503, SERVER_ERROR, "unavailable", True),
    (DeadlineExceeded, 504, SERVER_ERROR, "deadline_exceeded", False),
)


class HttpError(Exception):
    """A request the API refuses before it reaches the answerer (see the module docstring)."""

    def __init__(self, status: int, message: str, *, kind: str = INVALID_REQUEST, param: str | None = None,
                 code: str | None = None, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.param = param
        self.code = code
        self.headers = headers


@dataclasses.dataclass(frozen=True)
class ErrorReply:
    """An error response: status, extra headers and the OpenAI-shaped JSON body."""

    status: int
    message: str
    kind: str
    param: str | None = None
    code: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def body(self) -> dict[str, Any]:
        """``{"error": {...}}`` exactly as OpenAI's API sends it."""
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def reply_for(exc: BaseException) -> ErrorReply:
    """The response for ``exc``; an unexpected exception (a bug) is logged here and answered with a 500."""
    if isinstance(exc, HttpError):
        return ErrorReply(exc.status, str(exc), exc.kind, exc.param, exc.code, exc.headers)
    for error_type, status, kind, code, retry in _TABLE:
        if isinstance(exc, error_type):
            param = exc.field if isinstance(exc, InvalidInput) else None
            headers = (("Retry-After", "1"),) if retry else ()
            return ErrorReply(status, str(exc) or error_type.__name__, kind, param, code, headers)
    logger.error("internal error while answering a request", exc_info=exc)
    return ErrorReply(500, "The server had an error while processing your request.", SERVER_ERROR)


def status_reply(status: int, message: str) -> ErrorReply:
    """An error for a status the HTTP parser chose itself (malformed request line, headers too large)."""
    return ErrorReply(status, message, INVALID_REQUEST if status < 500 else SERVER_ERROR)
