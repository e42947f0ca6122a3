"""uvicorn's h11 protocol, with its one hand-made response (a request the HTTP parser rejects: malformed,
or headers over the size limit) in OpenAI's error shape like every other error of the API."""

from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from edge_agent.api.errors import status_reply
from edge_agent.api.wire import encode


class ApiProtocol(H11Protocol):
    """A malformed request gets ``400 {"error": {...}}`` and the connection closes (as uvicorn does)."""

    def send_400_response(self, msg: str) -> None:
        body = encode(status_reply(400, f"Invalid HTTP request: {msg}").body())
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body),
                      h11.EndOfMessage()):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()
