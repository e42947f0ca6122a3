"""The device's one table of gRPC status codes, for every call it makes to the cloud (escalations, the
policy watch, outcome uploads): the confroute exception each becomes (by code, never by message text),
whether the same call is worth sending again, and whether it counts against the circuit breaker.

    code                            error             retry  breaker failure
    UNAVAILABLE                     Unavailable       yes    yes
    RESOURCE_EXHAUSTED              Overloaded        yes    yes
    DEADLINE_EXCEEDED               DeadlineExceeded  yes    yes
    INTERNAL, UNKNOWN, DATA_LOSS    RuntimeFailure    no     yes
    INVALID_ARGUMENT, OUT_OF_RANGE  InvalidInput      no     no
    anything else                   Unavailable       no     no   (UNAUTHENTICATED, PERMISSION_DENIED,
                                                                   UNIMPLEMENTED, NOT_FOUND, CANCELLED, ...:
                                                                   the cloud will not serve this device now)

INTERNAL is a bug in the cloud (the cloud answers its own failures with the other codes; gRPC servers
answer an unhandled exception with UNKNOWN). Sending the same request again at once meets the same bug
and adds load to a server that is already failing, so it is not retried within a call; it counts against
the breaker, so that a cloud failing every call is left alone for a while like one that is down. What
the device keeps is unaffected: an escalation is answered locally, and an outcome batch stays queued and
is sent again in a later upload round, after that loop's backoff, when the cloud may have been fixed.

Retries are still bounded by each caller: an escalation's attempts share one deadline budget (each
attempt gets the rest of it, so a DEADLINE_EXCEEDED there leaves nothing to retry with), an upload
retries a few times per round. Codes that are not breaker failures prove the cloud is up and answering,
so they count as successes.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from confroute.errors import ConfrouteError, DeadlineExceeded, InvalidInput, Overloaded, RuntimeFailure, Unavailable

_Code = grpc.StatusCode


@dataclass(frozen=True)
class Meaning:
    """What a status code means to the device."""

    error: type[ConfrouteError]
    retry: bool  # the same call may succeed if sent again soon
    breaker_failure: bool  # the cloud is down or failing, not merely refusing this request


_TRANSIENT = {
    _Code.UNAVAILABLE: Meaning(Unavailable, retry=True, breaker_failure=True),
    _Code.RESOURCE_EXHAUSTED: Meaning(Overloaded, retry=True, breaker_failure=True),
    _Code.DEADLINE_EXCEEDED: Meaning(DeadlineExceeded, retry=True, breaker_failure=True),
}
_BUG = Meaning(RuntimeFailure, retry=False, breaker_failure=True)
_REFUSED = Meaning(InvalidInput, retry=False, breaker_failure=False)
OTHER = Meaning(Unavailable, retry=False, breaker_failure=False)

MEANINGS: dict[grpc.StatusCode, Meaning] = {
    **_TRANSIENT,
    _Code.INTERNAL: _BUG,
    _Code.UNKNOWN: _BUG,
    _Code.DATA_LOSS: _BUG,
    _Code.INVALID_ARGUMENT: _REFUSED,
    _Code.OUT_OF_RANGE: _REFUSED,
}


def meaning(code: grpc.StatusCode) -> Meaning:
    """The row of ``code``; ``OTHER`` for codes the table does not name."""
    return MEANINGS.get(code, OTHER)


def status_code(exc: grpc.RpcError) -> grpc.StatusCode:
    """The call's status code; UNKNOWN for an RpcError that carries none."""
    code = getattr(exc, "code", None)
    value = code() if callable(code) else None
    return value if isinstance(value, grpc.StatusCode) else _Code.UNKNOWN


def translate(exc: grpc.RpcError, what: str, *, field: str | None = None) -> ConfrouteError:
    """The domain error for a failed call; raise it ``from exc``. ``field`` names the refused input."""
    code = status_code(exc)
    details = getattr(exc, "details", None)
    text = details() if callable(details) else None
    message = f"{what} failed with {code.name}: {text or 'no details'}"
    error = meaning(code).error
    return InvalidInput(message, field=field) if error is InvalidInput else error(message)
