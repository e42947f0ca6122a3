"""uvicorn's h11 protocol, with its one hand-made response (a request the HTTP parser rejects: malformed,
or headers over the size limit) in OpenAI's error shape like every other error of the API, and a deadline
for a request's line and headers.

uvicorn bounds an idle keep-alive connection, but a client that sends its headers a byte at a time (slow
loris) resets that timer with every byte and would hold its connection for ever: here the line and headers of
each request must all arrive within the keep-alive timeout (the API's ``request_timeout_s``) of the
connection opening or the previous answer ending."""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from edge_agent.api.errors import status_reply
from edge_agent.api.wire import encode


class ApiProtocol(H11Protocol):
    """A malformed request gets ``400 {"error": {...}}`` and the connection closes (as uvicorn does); headers
    that take longer than the keep-alive timeout close it too."""

    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm_header_deadline()  # the headers are in; the body and the answer have their own bounds

    def on_response_complete(self) -> None:
        self._arm_header_deadline()  # before: a pipelined request handled below disarms it again
        super().on_response_complete()

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.timeout_keep_alive, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        body = encode(status_reply(400, f"Invalid HTTP request: {msg}").body())
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body),
                      h11.EndOfMessage()):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()
