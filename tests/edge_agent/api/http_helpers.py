"""Raw HTTP for the API tests (what an OpenAI client would never send)."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

from edge_agent.api import ApiServer

MODEL = "confroute-edge"


def chat_body(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": "hello"}], **fields}


def call(server: ApiServer, method: str, path: str, body: bytes | dict[str, Any] | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, Any]:
    """One request on a fresh connection: status, headers, and the body parsed as JSON (else text)."""
    payload = json.dumps(body).encode() if isinstance(body, dict) else body
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request(method, path, body=payload, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        return response.status, response.headers, json.loads(raw)
    except ValueError:
        return response.status, response.headers, raw.decode()


def raw_exchange(server: ApiServer, data: bytes) -> bytes:
    """Sends raw bytes and reads until the server closes the connection."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def parse_response(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), {k.lower(): v for k, v in headers.items()}, json.loads(body)


def assert_openai_error(body: Any, *, kind: str = "invalid_request_error", param: str | None = None,
                        code: str | None = None) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    assert body["error"]["type"] == kind
    assert body["error"]["param"] == param
    assert body["error"]["code"] == code


def assert_still_serving(server: ApiServer) -> None:
    status, _, body = call(server, "POST", "/v1/chat/completions", chat_body())
    assert status == 200, body
    assert body["choices"][0]["message"]["content"] == "You said: hello"
