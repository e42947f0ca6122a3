"""gRPC status codes seen by the device: which are retried, which count against the breaker, and the
one table that translates them into confroute's exceptions (by code, never by message text).

    UNAVAILABLE                         -> Unavailable       retried, breaker failure
    RESOURCE_EXHAUSTED                  -> Overloaded        retried, breaker failure
    DEADLINE_EXCEEDED                   -> DeadlineExceeded  breaker failure (the budget is spent)
    INTERNAL, UNKNOWN, DATA_LOSS        -> RuntimeFailure    breaker failure
    INVALID_ARGUMENT, OUT_OF_RANGE      -> InvalidInput
    anything else (UNAUTHENTICATED, PERMISSION_DENIED, UNIMPLEMENTED, NOT_FOUND, CANCELLED, ...)
                                        -> Unavailable: the cloud will not answer this device now

Codes that are not breaker failures prove the cloud is up and answering, so they count as successes.
"""

from __future__ import annotations

import grpc

from confroute.errors import (
    ConfrouteError,
    DeadlineExceeded,
    InvalidInput,
    Overloaded,
    RuntimeFailure,
    Unavailable,
)

_Code = grpc.StatusCode

ERROR_FOR: dict[grpc.StatusCode, type[ConfrouteError]] = {
    _Code.UNAVAILABLE: Unavailable,
    _Code.RESOURCE_EXHAUSTED: Overloaded,
    _Code.DEADLINE_EXCEEDED: DeadlineExceeded,
    _Code.INTERNAL: RuntimeFailure,
    _Code.UNKNOWN: RuntimeFailure,
    _Code.DATA_LOSS: RuntimeFailure,
    _Code.INVALID_ARGUMENT: InvalidInput,
    _Code.OUT_OF_RANGE: InvalidInput,
}
RETRYABLE = frozenset({_Code.UNAVAILABLE, _Code.RESOURCE_EXHAUSTED})
BREAKER_FAILURES = RETRYABLE | {_Code.DEADLINE_EXCEEDED, _Code.INTERNAL, _Code.UNKNOWN, _Code.DATA_LOSS}


def status_code(exc: grpc.RpcError) -> grpc.StatusCode:
    """The call's status code; UNKNOWN for an RpcError that carries none."""
    code = getattr(exc, "code", None)
    value = code() if callable(code) else None
    return value if isinstance(value, grpc.StatusCode) else _Code.UNKNOWN


def translate(exc: grpc.RpcError, what: str) -> ConfrouteError:
    """The domain error for a failed call; raise it ``from exc``."""
    code = status_code(exc)
    details = getattr(exc, "details", None)
    text = details() if callable(details) else None
    return ERROR_FOR.get(code, Unavailable)(f"{what} failed with {code.name}: {text or 'no details'}")
