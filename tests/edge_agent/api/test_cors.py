"""CORS: pages of the configured origins may call the API from a browser; other origins get nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from confroute.errors import InvalidInput
from edge_agent.api import ApiConfig, ApiServer, serve_api
from tests.edge_agent.api.fake_answerer import FakeAnswerer
from tests.edge_agent.api.http_helpers import call, chat_body

APP = "https://app.example"


@pytest.fixture
def cors_server(fake: FakeAnswerer) -> Iterator[ApiServer]:
    with serve_api(fake, ApiConfig(cors_origins=(APP, "http://localhost:3000"))) as running:
        yield running


def test_an_allowed_origin_gets_the_answer_and_the_routing_headers(cors_server: ApiServer) -> None:
    status, headers, _ = call(cors_server, "POST", "/v1/chat/completions", chat_body(), {"Origin": APP})
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == APP
    assert headers["Vary"] == "Origin"
    assert "X-Confroute-Side" in headers["Access-Control-Expose-Headers"]


def test_errors_carry_the_cors_headers_too(cors_server: ApiServer) -> None:
    status, headers, _ = call(cors_server, "POST", "/v1/chat/completions", b"{", {"Origin": APP})
    assert status == 400
    assert headers["Access-Control-Allow-Origin"] == APP


def test_a_preflight_on_a_route_lists_its_methods_and_the_requested_headers(cors_server: ApiServer) -> None:
    status, headers, body = call(cors_server, "OPTIONS", "/v1/chat/completions", None, {
        "Origin": APP, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os"})
    assert (status, body) == (204, "")
    assert headers["Access-Control-Allow-Origin"] == APP
    assert headers["Access-Control-Allow-Methods"] == "OPTIONS, POST"
    assert headers["Access-Control-Allow-Headers"] == "authorization, content-type, x-stainless-os"
    assert int(headers["Access-Control-Max-Age"]) > 0


def test_another_origin_gets_no_cors_headers_and_no_preflight(cors_server: ApiServer) -> None:
    status, headers, _ = call(cors_server, "GET", "/v1/models", None, {"Origin": "https://evil.example"})
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    status, headers, _ = call(cors_server, "OPTIONS", "/v1/chat/completions", None, {
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert status == 405 and "Access-Control-Allow-Origin" not in headers


@pytest.mark.parametrize("origin", [{"Origin": "https://evil.example"}, {}])
def test_with_a_list_every_answer_varies_by_origin(cors_server: ApiServer, origin: dict[str, str]) -> None:
    status, headers, _ = call(cors_server, "GET", "/v1/models", None, origin)
    assert status == 200 and headers["Vary"] == "Origin"


def test_without_configured_origins_nothing_changes(server: ApiServer) -> None:
    status, headers, _ = call(server, "GET", "/v1/models", None, {"Origin": APP})
    assert status == 200 and "Access-Control-Allow-Origin" not in headers


def test_a_wildcard_allows_any_origin(fake: FakeAnswerer) -> None:
    with serve_api(fake, ApiConfig(cors_origins=("*",))) as running:
        status, headers, _ = call(running, "GET", "/health", None, {"Origin": "https://anything.example"})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
    assert "Vary" not in headers


def test_an_unknown_route_stays_a_404_even_for_a_preflight(cors_server: ApiServer) -> None:
    status, headers, _ = call(cors_server, "OPTIONS", "/v1/nowhere", None, {
        "Origin": APP, "Access-Control-Request-Method": "GET"})
    assert status == 404 and headers["Access-Control-Allow-Origin"] == APP


@pytest.mark.parametrize("origin", ["app.example", "https://app.example/", "https://app.example/path", "ftp://app.example",
                                    "https://", ""])
def test_a_malformed_origin_is_refused_by_name(origin: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        ApiConfig(cors_origins=(origin,))
    assert caught.value.field == "cors_origins"
