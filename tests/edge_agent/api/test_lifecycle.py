"""Starting and stopping the server: free ports, idle connections, bound ports, config checks."""

from __future__ import annotations

import http.client
import time

import pytest

from confroute.errors import InvalidInput, Unavailable
from edge_agent.api import ApiConfig, serve_api
from tests.edge_agent.api.fake_answerer import FakeAnswerer
from tests.edge_agent.api.http_helpers import call


def test_port_zero_picks_a_free_port_and_health_answers(fake: FakeAnswerer) -> None:
    with serve_api(fake) as server:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}/v1"
        assert call(server, "GET", "/health")[::2] == (200, {"status": "ok", "models": list(fake.model_ids)})


def test_shutdown_closes_idle_keep_alive_connections_promptly(fake: FakeAnswerer) -> None:
    server = serve_api(fake, ApiConfig(request_timeout_s=60.0))
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request("GET", "/health")
        connection.getresponse().read()  # the connection now idles, kept alive
        started = time.monotonic()
        server.shutdown()
        server.shutdown()  # idempotent
        assert time.monotonic() - started < 2
    finally:
        connection.close()


def test_a_port_in_use_is_reported_as_unavailable(fake: FakeAnswerer) -> None:
    with serve_api(fake) as server, pytest.raises(Unavailable, match="cannot listen"):
        serve_api(fake, ApiConfig(port=server.port)).shutdown()


@pytest.mark.parametrize(("fields", "field"), [({"port": 70000}, "port"), ({"max_body_bytes": 0}, "max_body_bytes"),
                                               ({"request_timeout_s": 0}, "request_timeout_s")])
def test_a_bad_config_names_its_field(fields: dict[str, float], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        ApiConfig(**fields)  # type: ignore[arg-type]
    assert caught.value.field == field
