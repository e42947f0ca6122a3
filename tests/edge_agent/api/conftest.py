"""Fixtures of the API tests: a fake answerer behind a real server on a loopback port, and an OpenAI client."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from edge_agent.api import ApiConfig, ApiServer, serve_api
from tests.edge_agent.api.fake_answerer import FakeAnswerer

MAX_BODY = 64 * 1024


@pytest.fixture
def fake() -> FakeAnswerer:
    return FakeAnswerer()


@pytest.fixture
def server(fake: FakeAnswerer) -> Iterator[ApiServer]:
    with serve_api(fake, ApiConfig(max_body_bytes=MAX_BODY, request_timeout_s=5.0)) as running:
        yield running


@pytest.fixture
def client(server: ApiServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url, api_key="dummy", max_retries=0, timeout=10.0) as opened:
        yield opened
