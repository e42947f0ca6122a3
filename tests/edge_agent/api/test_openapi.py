"""The OpenAPI document describes every route the server dispatches, and the live server keeps to it:
schemathesis fuzzes a real uvicorn over the tiny model (thousands of requests, valid and invalid), and no
request gets a 5xx or an answer the document does not describe; the server still serves after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, CheckContext, GenerationMode, Response
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from edge_agent.api import ApiConfig, ApiServer, serve_api
from edge_agent.api.asgi import MODEL_ROUTE, ROUTES
from edge_agent.api.spec import OPERATIONS, openapi_document
from edge_agent.model import EdgeModel
from edge_agent.outbox import OutcomeQueue, QueueConfig
from edge_agent.outbox.feedback import FeedbackDesk
from tests.edge_agent.api.edge_answerer import EdgeOnlyAnswerer
from tests.edge_agent.api.fake_answerer import FakeAnswerer
from tests.edge_agent.api.http_helpers import call

TINY = "tiny-random-llama"


def test_every_route_is_described_and_every_description_is_a_route() -> None:
    served = {(method, path) for path, methods in ROUTES.items() for method in methods} | {("GET", MODEL_ROUTE)}
    described = {(op.method, op.path) for op in OPERATIONS}
    assert served == described
    assert len({op.operation_id for op in OPERATIONS}) == len(OPERATIONS)


def test_the_server_publishes_its_document_with_its_model_ids(server: ApiServer, fake: FakeAnswerer) -> None:
    status, headers, body = call(server, "GET", "/openapi.json")
    assert status == 200 and headers["content-type"] == "application/json"
    assert body["openapi"].startswith("3.1")
    assert body["components"]["schemas"]["ChatCompletionRequest"]["properties"]["model"]["enum"] == list(fake.model_ids)
    assert set(body["paths"]) == {op.path for op in OPERATIONS}
    assert body == openapi_document(fake.model_ids, body["info"]["version"])


@pytest.fixture(scope="module")
def tiny_server(tiny_bundles: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    model = EdgeModel(tiny_bundles["llama"])
    state = tmp_path_factory.mktemp("outbox")
    answerer = EdgeOnlyAnswerer(model)
    try:
        with OutcomeQueue(QueueConfig(state / "outbox.db")) as outbox, \
                OutcomeQueue(QueueConfig(state / "feedback.db", remember=0)) as labels:
            answerer.feedback = FeedbackDesk(outbox, labels)  # POST /v1/feedback answers as on a device
            with serve_api(answerer, ApiConfig(request_timeout_s=10.0)) as running:
                yield running
    finally:
        model.close()


#: Examples per operation and mode: about 1,550 valid requests and 1,400 invalid ones in all (the routes
#: without parameters have one request each to send).
EXAMPLES = {"createChatCompletion": 1400}
DEFAULT_EXAMPLES = 150


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzed_requests_get_documented_answers_and_never_a_server_error(tiny_server: ApiServer,
                                                                         mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{_origin(tiny_server)}/openapi.json")
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and "requestBody" not in operation.definition.raw:
            continue  # nothing to get wrong: no body, and any path segment is a string
        examples = EXAMPLES.get(operation.definition.raw.get("operationId", ""), DEFAULT_EXAMPLES)

        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,  # the same cases in CI
                  suppress_health_check=list(HealthCheck))
        @given(operation.as_strategy(generation_mode=mode))
        def check(case: Case[Any]) -> None:
            case.call_and_validate(base_url=_origin(tiny_server), timeout=30,
                                   excluded_checks=[positive_data_acceptance],
                                   additional_checks=[accepted_unless_too_long])

        check()


def accepted_unless_too_long(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """schemathesis's positive_data_acceptance, except a prompt too long for this model's context (what
    no schema can say: it depends on the tokenizer and the context length)."""
    if response.status_code == 400 and b"context_length_exceeded" in response.content:
        return None
    return positive_data_acceptance(ctx, response, case)


def _origin(server: ApiServer) -> str:
    return server.url.removesuffix("/v1")


@pytest.mark.slow
def test_the_server_still_serves_after_the_fuzzing(tiny_server: ApiServer) -> None:
    status, _, body = call(tiny_server, "POST", "/v1/chat/completions",
                           {"model": TINY, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})
    assert status == 200, body
    assert body["usage"]["completion_tokens"] >= 1
