"""``EscalationClient``: the device's synchronous gRPC client for escalations, whole or streamed.

Every escalation has one time budget (``CloudConfig.deadline_s``), retries and backoff included.
Attempts that fail with a retryable code (UNAVAILABLE, RESOURCE_EXHAUSTED) are retried, at most
``retries`` times, after a jittered exponential backoff, and only while the budget still covers the
wait; other codes are not retried (DEADLINE_EXCEEDED means the budget is spent). A circuit breaker
refuses calls at once while the cloud keeps failing. Every grpc error is translated here, by status
code, into confroute's exceptions (:mod:`edge_agent.cloud.status`), so the agent can answer locally on
any ``ConfrouteError``. The request's ``query_id`` is its idempotency key, so retries are safe.

A stream is retried only until its first event arrives; once events were delivered, a broken stream
raises the domain error for its status (or ``Unavailable`` if it ended without a final answer).
An answer that fails the contract's checks is the cloud's fault, not the caller's: ``RuntimeFailure``
(never ``InvalidInput``, which the agent's local API would report as the user's bad request).

A refusal that carries ``retry-after-ms`` trailing metadata (the cloud's per-device rate limit) is
honoured: no attempt is made before that delay, neither a retry nor the next escalation, which fails
at once with ``Overloaded`` (the agent answers locally) until the delay has passed.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, TypeVar

import grpc

from confroute.contract import EscalationRequest, EscalationResponse
from confroute.contract.answer import StreamEvent, stream_event_from_pb
from confroute.contract.metadata import RETRY_AFTER_KEY
from confroute.errors import DeadlineExceeded, InvalidInput, Overloaded, RuntimeFailure, Unavailable
from confroute.v1 import escalation_pb2, escalation_pb2_grpc
from edge_agent.cloud.breaker import CircuitBreaker, Clock
from edge_agent.cloud.channel import call_metadata, open_channel
from edge_agent.cloud.config import CloudConfig
from edge_agent.cloud.status import meaning, status_code, translate

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_RETRY_AFTER_S = 3600.0
Attempt = Callable[[float], T]  # one try, given the seconds left of the budget


class EscalationClient:
    """Escalates queries to the cloud. Thread-safe; close it (or use ``with``) to release its channel.

    ``channel`` may be shared with other clients (the caller then closes it); ``breaker``, ``rng``,
    ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        config: CloudConfig,
        *,
        channel: grpc.Channel | None = None,
        breaker: CircuitBreaker | None = None,
        rng: random.Random | None = None,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._config = config
        self._owns_channel = channel is None
        self._channel = open_channel(config) if channel is None else channel
        self._stub = escalation_pb2_grpc.EscalationServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._metadata = call_metadata(config)
        self.breaker = breaker if breaker is not None else CircuitBreaker(config.breaker, clock)
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._sleep = sleep
        self._held_until = 0.0  # the cloud asked for no call before this (retry-after-ms)

    def escalate(self, request: EscalationRequest) -> EscalationResponse:
        """The cloud's whole answer; raises a ``ConfrouteError`` when there is none within the budget."""
        message = escalation_pb2.EscalateRequest(escalation=_to_pb(request))

        def attempt(timeout: float) -> Any:
            return self._stub.Escalate(message, timeout=timeout, metadata=self._metadata)

        what = f"escalation {request.query_id}"
        reply = self._call(what, attempt, self._deadline())
        return _from_cloud(EscalationResponse.from_pb, reply.answer, what)

    def stream(self, request: EscalationRequest) -> Iterator[StreamEvent]:
        """Token deltas, then the final answer. Nothing is sent before the first event is asked for;
        closing the iterator early cancels the call."""
        message = escalation_pb2.EscalateStreamRequest(escalation=_to_pb(request))
        what = f"escalation stream {request.query_id}"

        def attempt(timeout: float) -> tuple[Any, Any]:
            call = self._stub.EscalateStream(message, timeout=timeout, metadata=self._metadata)
            return call, next(call, None)  # the first event, or None if the stream is empty

        call, first = self._call(what, attempt, self._deadline())
        try:
            yield from self._follow(call, first, what)
        finally:
            call.cancel()  # a no-op once the call is over; ends it if the consumer stopped early

    def close(self) -> None:
        """Closes the channel if this client opened it."""
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> EscalationClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _deadline(self) -> float:
        return self._clock() + self._config.deadline_s

    def _call(self, what: str, attempt: Attempt[T], deadline: float) -> T:
        """Runs ``attempt`` with retries within the budget; grpc errors leave as domain errors."""
        tries = 0
        while True:
            timeout = self._admit(what, deadline)
            try:
                result = attempt(timeout)
            except grpc.RpcError as exc:
                code = status_code(exc)
                self._record(code)
                delay = self._retry_delay(code, tries, deadline, self._hold(exc))
                if delay is None:
                    raise translate(exc, what) from exc
                tries += 1
                logger.info("%s: %s, retry %d of %d in %.3f s", what, code.name, tries, self._config.retries, delay)
                self._sleep(delay)
                continue
            self.breaker.record_success()
            return result

    def _admit(self, what: str, deadline: float) -> float:
        """The seconds left for the next attempt, unless the budget is spent or the breaker is open."""
        now = self._clock()
        if now < self._held_until:
            raise Overloaded(f"{what} not sent: the cloud asked for no call for {self._held_until - now:.2f} s more")
        remaining = deadline - now
        if remaining <= 0:
            raise DeadlineExceeded(f"{what}: the {self._config.deadline_s:g} s budget is spent")
        if not self.breaker.allow():
            wait = self.breaker.retry_after()
            raise Unavailable(f"{what} not sent: the cloud failed repeatedly; circuit open for {wait:.1f} s more")
        return remaining

    def _retry_delay(self, code: grpc.StatusCode, tries: int, deadline: float, hold: float) -> float | None:
        """The backoff before the next attempt (at least the cloud's ``hold``), or None when there must be none."""
        if not meaning(code).retry or tries >= self._config.retries:
            return None
        delay = max(hold, self._config.backoff.delay(tries, self._rng))
        return delay if self._clock() + delay < deadline else None

    def _hold(self, exc: grpc.RpcError) -> float:
        """The cloud's ``retry-after-ms``, remembered so that no call goes out before it; 0 when none."""
        hold = retry_after_s(exc)
        if hold > 0:
            self._held_until = max(self._held_until, self._clock() + hold)
        return hold

    def _record(self, code: grpc.StatusCode) -> None:
        if meaning(code).breaker_failure:
            self.breaker.record_failure()
        else:
            self.breaker.record_success()  # the cloud is up: it answered, if only to refuse

    def _follow(self, call: Any, first: Any, what: str) -> Iterator[StreamEvent]:
        """Events up to and including the final answer; a break or a premature end raises."""
        received, message = 0, first
        while message is not None:
            event: StreamEvent = _from_cloud(stream_event_from_pb, message, what)
            yield event
            received += 1
            if isinstance(event, EscalationResponse):
                return
            try:
                message = next(call, None)
            except grpc.RpcError as exc:
                self._record(status_code(exc))
                raise translate(exc, f"{what} (broken after {received} events)") from exc
        raise Unavailable(f"{what} ended after {received} events without a final answer")


def retry_after_s(exc: grpc.RpcError) -> float:
    """The delay a refusal asks for in its ``retry-after-ms`` trailing metadata (capped); 0 when none."""
    trailing = getattr(exc, "trailing_metadata", None)
    for key, value in (trailing() if callable(trailing) else None) or ():
        if key == RETRY_AFTER_KEY:
            try:
                return min(max(0.0, int(value) / 1000.0), MAX_RETRY_AFTER_S)
            except (TypeError, ValueError):
                return 0.0
    return 0.0


def _to_pb(request: EscalationRequest) -> escalation_pb2.Escalation:
    """The request's message; a value protobuf cannot carry (a seed past int64) is the caller's bad input."""
    try:
        return request.to_pb()
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"the escalation cannot be encoded: {exc}", field="params") from exc


def _from_cloud(decode: Callable[[Any], T], message: Any, what: str) -> T:
    """A reply decoded into the domain; a malformed one is the cloud's failure."""
    try:
        return decode(message)
    except InvalidInput as exc:
        raise RuntimeFailure(f"{what}: the cloud's answer is malformed: {exc}") from exc
