"""Bad HTTP input gets a 4xx in OpenAI's error shape, and the server keeps serving afterwards."""

from __future__ import annotations

import http.client
import socket
import time
from typing import Any

import pytest

from edge_agent.api import ApiConfig, ApiServer, serve_api
from tests.edge_agent.api.fake_answerer import FakeAnswerer
from tests.edge_agent.api.http_helpers import (
    MODEL,
    assert_openai_error,
    assert_still_serving,
    call,
    chat_body,
    parse_response,
    raw_exchange,
)

CHAT = "/v1/chat/completions"


@pytest.mark.parametrize("body", [
    b"{not json",
    b'{"model": "confroute-edge", "messages": [',
    b"\xff\xfe\x00garbage",
    b"",
    b"[1, 2, 3]",
    b"[" * 30_000 + b"]" * 30_000,  # deeper than the JSON parser's recursion limit
])
def test_a_body_that_is_not_a_json_object_is_a_400(server: ApiServer, body: bytes) -> None:
    status, _, reply = call(server, "POST", CHAT, body, {"Content-Type": "application/json"})

    assert status == 400
    assert_openai_error(reply)
    assert_still_serving(server)


@pytest.mark.parametrize(("fields", "param"), [
    ({"messages": "hello"}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": None}, "messages"),
    ({"messages": ["hello"]}, "messages[0]"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "user"}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}, "messages[0].content"),
    ({"model": 7}, "model"),
    ({"model": None}, "model"),
    ({"temperature": "hot"}, "temperature"),
    ({"temperature": -1}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"top_p": True}, "top_p"),
    ({"max_tokens": 1.5}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_completion_tokens": -3}, "max_completion_tokens"),
    ({"seed": "42"}, "seed"),
    ({"stop": [1]}, "stop"),
    ({"stop": ""}, "stop"),
    ({"n": 2}, "n"),
    ({"stream": "yes"}, "stream"),
    ({"stream": True, "stream_options": {"include_usage": 1}}, "stream_options.include_usage"),
])
def test_a_field_of_the_wrong_type_or_value_is_a_400_naming_it(server: ApiServer, fields: dict[str, Any],
                                                               param: str) -> None:
    status, _, reply = call(server, "POST", CHAT, chat_body(**fields))

    assert status == 400, reply
    assert_openai_error(reply, param=param)
    assert_still_serving(server)


def test_a_missing_model_is_a_400_and_an_unknown_one_a_404(server: ApiServer) -> None:
    status, _, reply = call(server, "POST", CHAT, {"messages": [{"role": "user", "content": "hi"}]})
    assert (status, reply["error"]["param"]) == (400, "model")

    status, _, reply = call(server, "POST", CHAT, chat_body(model="gpt-4o"))
    assert status == 404
    assert_openai_error(reply, param="model", code="model_not_found")
    assert_still_serving(server)


def test_answerer_input_errors_name_their_field(server: ApiServer) -> None:
    status, _, reply = call(server, "POST", CHAT,
                            chat_body(messages=[{"role": "user", "content": "raise:PromptTooLong"}]))

    assert status == 400
    assert_openai_error(reply, param="messages", code="context_length_exceeded")


def test_overload_and_unavailability_tell_the_client_to_retry(server: ApiServer) -> None:
    for keyword, status, code in (("Overloaded", 429, "rate_limit_exceeded"), ("Unavailable", 503, "unavailable")):
        got, headers, reply = call(server, "POST", CHAT,
                                   chat_body(messages=[{"role": "user", "content": f"raise:{keyword}"}]))
        assert (got, headers["Retry-After"], reply["error"]["code"]) == (status, "1", code)


def test_a_bug_in_the_answerer_is_a_500_logged_once(server: ApiServer, caplog: pytest.LogCaptureFixture) -> None:
    status, _, reply = call(server, "POST", CHAT, chat_body(messages=[{"role": "user", "content": "raise:bug"}]))

    assert status == 500
    assert_openai_error(reply, kind="server_error")
    assert "a bug" not in reply["error"]["message"]  # internals stay in the log
    errors = [record for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert_still_serving(server)


def test_a_body_over_the_limit_is_refused_before_it_is_read(server: ApiServer) -> None:
    head = (f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {100 * 1024 * 1024}\r\n\r\n").encode()
    started = time.monotonic()
    status, headers, reply = parse_response(raw_exchange(server, head + b"{" * 1024))

    assert status == 413 and time.monotonic() - started < 3
    assert headers["connection"] == "close"
    assert_openai_error(reply, code="request_too_large")
    assert_still_serving(server)


def test_a_body_without_a_length_is_refused(server: ApiServer) -> None:
    request = f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    status, _, reply = parse_response(raw_exchange(server, request.encode()))

    assert status == 411
    assert_openai_error(reply, code="length_required")
    assert_still_serving(server)


def test_a_body_that_stops_arriving_times_out_with_408(fake: FakeAnswerer) -> None:
    with serve_api(fake, ApiConfig(request_timeout_s=0.3)) as server:
        head = f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n".encode()
        status, _, reply = parse_response(raw_exchange(server, head + b'{"model": '))
        assert status == 408
        assert_openai_error(reply, code="timeout")
        assert_still_serving(server)


def test_an_unknown_route_is_a_404_and_a_wrong_method_a_405(server: ApiServer) -> None:
    status, _, reply = call(server, "POST", "/v1/completions", chat_body())
    assert status == 404
    assert_openai_error(reply, code="unknown_url")

    status, headers, reply = call(server, "GET", CHAT)
    assert (status, headers["Allow"]) == (405, "POST")
    assert_openai_error(reply, code="method_not_allowed")

    status, headers, _ = call(server, "DELETE", "/v1/models")
    assert (status, headers["Allow"]) == (405, "GET")
    assert_still_serving(server)


def test_requests_the_http_parser_refuses_get_openai_style_errors(server: ApiServer) -> None:
    huge_header = b"GET /v1/models HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    status, headers, reply = parse_response(raw_exchange(server, huge_header))
    assert (status, headers["connection"]) == (400, "close")
    assert_openai_error(reply)

    status, _, reply = parse_response(raw_exchange(server, b"BREW /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert status == 501
    assert_openai_error(reply, kind="server_error")
    assert_still_serving(server)


def test_one_keep_alive_connection_survives_bad_requests(server: ApiServer) -> None:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        for body in (b"{oops", b'{"model": "confroute-edge", "messages": []}', b"[]"):
            connection.request("POST", CHAT, body=body)
            response = connection.getresponse()
            assert response.status == 400 and response.getheader("Connection") is None
            response.read()
        connection.request("POST", CHAT, body=b'{"model": "%s", "messages": [{"role": "user", "content": "hello"}]}'
                           % MODEL.encode())
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_a_client_that_hangs_up_mid_request_does_not_stop_the_server(server: ApiServer) -> None:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{{".encode())
    assert_still_serving(server)
