"""The device API's optional key, and inputs that used to crash it (500) refused with a 400."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edge_agent.api import ApiConfig, ApiServer, serve_api
from tests.edge_agent.api.fake_answerer import FakeAnswerer
from tests.edge_agent.api.http_helpers import assert_openai_error, assert_still_serving, call, chat_body

CHAT = "/v1/chat/completions"
KEY = "k-0123456789"


@pytest.fixture
def keyed(fake: FakeAnswerer) -> Iterator[ApiServer]:
    with serve_api(fake, ApiConfig(request_timeout_s=5.0, api_key=KEY)) as running:
        yield running


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {KEY}", KEY])
def test_with_a_key_configured_a_request_without_it_is_a_401(keyed: ApiServer, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    status, reply_headers, body = call(keyed, "POST", CHAT, chat_body(), headers)

    assert status == 401
    assert reply_headers["WWW-Authenticate"] == "Bearer"
    assert_openai_error(body, code="invalid_api_key")


def test_with_the_key_requests_are_served_and_health_needs_none(keyed: ApiServer) -> None:
    status, _, body = call(keyed, "POST", CHAT, chat_body(), {"Authorization": f"Bearer {KEY}"})
    health, _, _ = call(keyed, "GET", "/health")

    assert status == 200, body
    assert health == 200


@pytest.mark.parametrize(("fields", "param"), [
    ({"seed": -1}, "seed"),
    ({"seed": 2**64}, "seed"),
    ({"seed": 2**63}, "seed"),
    ({"messages": [{"role": "user", "content": "\ud800"}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "a\udfffb"}]}]}, "messages[0].content"),
    ({"stop": ["\ud800"]}, "stop"),
])
def test_inputs_that_crashed_the_device_are_a_400(server: ApiServer, fields: dict[str, object], param: str) -> None:
    status, _, body = call(server, "POST", CHAT, _json(chat_body(**fields)), {"Content-Type": "application/json"})

    assert status == 400, body
    assert_openai_error(body, param=param)
    assert_still_serving(server)


def _json(body: dict[str, object]) -> bytes:
    import json

    return json.dumps(body).encode()  # ensure_ascii: lone surrogates travel as \ud800 escapes


def test_a_slow_loris_client_is_hung_up_on_within_the_request_timeout(fake: FakeAnswerer) -> None:
    import socket
    import time

    with serve_api(fake, ApiConfig(request_timeout_s=1.0)) as running, \
            socket.create_connection((running.host, running.port), timeout=5) as raw:
        started = time.monotonic()
        with pytest.raises(OSError):  # the hang-up shows on some send or on the final read
            for byte in b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 100:
                raw.sendall(bytes([byte]))
                time.sleep(0.2)
            if not raw.recv(1):
                raise ConnectionResetError("closed")
        assert time.monotonic() - started < 3.0
        assert_still_serving(running)
