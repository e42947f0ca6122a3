"""A stream on the wire: chunked server-sent events as OpenAI frames them, and a client that hangs up."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import socket
import time

from edge_agent.api import ApiServer
from tests.edge_agent.api.fake_answerer import FakeAnswerer
from tests.edge_agent.api.http_helpers import MODEL, assert_still_serving, call, chat_body

CHAT = "/v1/chat/completions"


def test_a_stream_is_chunked_sse_ending_with_done(server: ApiServer) -> None:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request("POST", CHAT, body=json.dumps(chat_body(stream=True)).encode())
        response = connection.getresponse()
        raw = response.read().decode()
        headers = response.headers
    finally:
        connection.close()

    assert headers["Transfer-Encoding"] == "chunked" and headers["Cache-Control"] == "no-cache"
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-2]]
    assert all(event.startswith("data: ") for event in events[:-1])
    assert [c["object"] for c in chunks] == ["chat.completion.chunk"] * len(chunks)
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * (len(chunks) - 1) + ["stop"]
    assert "confroute" in chunks[-1] and all("confroute" not in c for c in chunks[:-1])
    assert all("usage" not in c for c in chunks)


def test_a_client_that_hangs_up_mid_stream_stops_the_generation(server: ApiServer, fake: FakeAnswerer) -> None:
    body = json.dumps(chat_body(stream=True, messages=[{"role": "user", "content": "slow " + "word " * 200}]))
    request = (f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(request)
        assert b"data: " in sock.recv(65536) + sock.recv(65536)

    deadline = time.monotonic() + 3
    while fake.closed_streams == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.closed_streams == 1  # well before the 4 s the whole answer would take
    assert_still_serving(server)


def test_concurrent_requests_are_all_answered(server: ApiServer) -> None:
    def ask(i: int) -> str:
        status, _, reply = call(server, "POST", CHAT,
                                {"model": MODEL, "messages": [{"role": "user", "content": f"n{i}"}]})
        assert status == 200
        return str(reply["choices"][0]["message"]["content"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(ask, range(16))) == sorted(f"You said: n{i}" for i in range(16))
