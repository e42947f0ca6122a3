"""The one table from confroute's exception tree to gRPC status codes.

The most specific class wins: ``InvalidPolicy`` is an ``InvalidInput``. ``RuntimeFailure`` (the cloud
model failed on a valid request) is INTERNAL like a bug, but reported with its message and not logged
as one. Anything not in the table is a bug: INTERNAL, logged once by the interceptor.
"""

from __future__ import annotations

import asyncio

import grpc

from confroute.errors import (
    ConfrouteError,
    DeadlineExceeded,
    InvalidInput,
    Overloaded,
    PermissionDenied,
    RuntimeFailure,
    Unauthenticated,
    Unavailable,
)

STATUS_FOR: dict[type[ConfrouteError], grpc.StatusCode] = {
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    RuntimeFailure: grpc.StatusCode.INTERNAL,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
}


def status_for(exc: BaseException) -> grpc.StatusCode | None:
    """The status a domain error is answered with; None for anything the table does not know."""
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        return grpc.StatusCode.CANCELLED
    for cls in type(exc).__mro__:
        code = STATUS_FOR.get(cls)
        if code is not None:
            return code
    return None


def details_for(exc: ConfrouteError) -> str:
    """The message sent to the caller; for bad input it always names the field."""
    message = str(exc)
    field = exc.field if isinstance(exc, InvalidInput) else None
    if field and field not in message:
        return f"{field}: {message}"
    return message
